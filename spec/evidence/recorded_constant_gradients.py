"""HIGHER-8, HIGHER-9: which constant-valued gradients PyTorch records under create_graph."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


def _requires(make, *values):
    import torch
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out = make(*tensors).sum()
    grads = torch.autograd.grad(out, tensors, create_graph=True, allow_unused=True)
    return [g is not None and g.requires_grad for g in grads]


@experiment("HIGHER-8", "HIGHER-9",
            claim="PyTorch records relu', abs', x**1; not the masks of clamp, maximum, where or the steps of "
                  "sign/floor; fmod and remainder record the divisor's")
def which_constant_gradients_are_recorded():
    import torch
    return [("relu", _requires(torch.relu, [0.5, -1.5]), [True]),
            ("abs", _requires(torch.abs, [0.5, -1.5]), [True]),
            ("x ** 1", _requires(lambda x: x ** 1, [0.5, -1.5]), [True]),
            ("clamp", _requires(lambda x: torch.clamp(x, -1.0, 1.0), [0.5, -1.5]), [False]),
            ("maximum", _requires(torch.maximum, [0.5, -1.5], [1.0, -2.0]), [False, False]),
            ("floor", _requires(torch.floor, [0.5, -1.5]), [False]),
            ("fmod (dividend, divisor)", _requires(torch.fmod, [5.5, -7.0], [2.0, 3.0]), [False, True]),
            ("remainder (dividend, divisor)", _requires(torch.remainder, [5.5, -7.0], [2.0, 3.0]), [False, True])]


@experiment("HIGHER-8", claim="differentiating a recorded constant gradient gives zeros, never another value")
def recorded_constants_differentiate_to_zero():
    import torch
    x = torch.tensor([5.5, -7.0], dtype=torch.float64, requires_grad=True)
    d = torch.tensor([2.0, 3.0], dtype=torch.float64, requires_grad=True)
    _, gd = torch.autograd.grad(torch.fmod(x, d).sum(), (x, d), create_graph=True)
    second = torch.autograd.grad(gd.sum(), (x, d), allow_unused=True, materialize_grads=True)
    return [("d/d(x, d) of fmod's divisor gradient", [v.tolist() for v in second], [[0.0, 0.0], [0.0, 0.0]])]
