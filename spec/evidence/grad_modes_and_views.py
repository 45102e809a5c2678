"""MODE-1, LEAF-2, VIEW-9, VIEW-1: what no_grad makes of views, and which views take in-place operations."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


@experiment("MODE-1", "LEAF-2", "VIEW-9",
            claim="a new tensor made under no_grad does not require grad; a view of one that does, made under no_grad, "
                  "is a leaf that requires grad")
def no_grad_views():
    import torch
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        made = x * 2
        view = x[0:2]
        reshaped = x.view(3, 1)
    return [("x * 2 under no_grad requires grad", made.requires_grad, False),
            ("x * 2 under no_grad is a leaf", made.is_leaf, True),
            ("x[0:2] under no_grad requires grad", view.requires_grad, True),
            ("x[0:2] under no_grad is a leaf", view.is_leaf, True),
            ("x[0:2] under no_grad has a grad_fn", view.grad_fn is not None, False),
            ("x.view(3, 1) under no_grad requires grad", reshaped.requires_grad, True)]


def _refused(run):
    try:
        run()
        return False
    except RuntimeError:
        return True


@experiment("VIEW-1", "VIEW-9",
            claim="expand is a view (it reads its base's new values), but in-place operations through it are refused")
def expand_is_a_read_only_view():
    import torch
    base = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    wide = base.expand(2, 3)
    base.mul_(10)
    refused = _refused(lambda: wide.add_(1))
    plain = torch.tensor([[1.0], [2.0]], dtype=torch.float64).expand(2, 3)
    return [("expanded view reads the base's in-place update", wide.tolist(), [[10.0] * 3, [20.0] * 3]),
            ("in-place add through an expanded view is refused", refused, True),
            ("... also without any tensor requiring grad", _refused(lambda: plain.mul_(2)), True)]
