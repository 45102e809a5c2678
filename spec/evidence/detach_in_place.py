"""MODE-7, MODE-8: what detach_() does to a tensor, to its version counter and to nodes that saved it."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


def _outcome(run):
    try:
        run()
        return "ok"
    except RuntimeError as error:
        text = str(error)
        return "raises: detached in-place" if "detached in-place" in text else "raises: " + text[:80]


@experiment("MODE-7", "MODE-8",
            claim="detach_ makes a leaf in place; it moves no version; only a node that saved it as an input refuses")
def saved_input_and_saved_output():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    a = x * 1
    b = a * a  # saves a as an input
    version = a._version
    a.detach_()
    observations = [("is_leaf after detach_", a.is_leaf, True), ("requires_grad after detach_", a.requires_grad, False),
                    ("grad_fn after detach_", a.grad_fn, None), ("version moved by detach_", a._version != version, False),
                    ("backward through a node that saved it as an input", _outcome(lambda: b.sum().backward()),
                     "raises: detached in-place")]
    y = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    e = torch.exp(y)  # saves e as its output
    f = e * 3
    e.detach_()
    observations.append(("backward through exp, which saved it as its output", _outcome(lambda: f.sum().backward()), "ok"))
    observations.append(("... and the gradient is 3 exp(y)", [round(v, 12) for v in y.grad.tolist()],
                         [round(3 * 1.6487212707001282, 12), round(3 * 4.4816890703380645, 12)]))
    return observations
