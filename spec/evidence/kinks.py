"""KINK-5, KINK-6: derivatives at clamp's bounds, with number and tensor bounds, and atan2's at the origin."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


@experiment("KINK-5", claim="clamp with number bounds has derivative 0 at its bounds (the subgradient of least norm)")
def clamp_at_number_bounds():
    import torch
    x = torch.tensor([-1.0, 0.0, 0.25, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (both,) = torch.autograd.grad(torch.clamp(x, 0.0, 1.0).sum(), x)
    (low,) = torch.autograd.grad(torch.clamp(x, min=0.0).sum(), x)
    (relu,) = torch.autograd.grad(torch.relu(x).sum(), x)
    return [("clamp(x, 0, 1)'", both.tolist(), [0.0, 0.0, 1.0, 0.0, 0.0]),
            ("clamp(x, min=0)'", low.tolist(), [0.0, 0.0, 1.0, 1.0, 1.0]),
            ("relu' (the same function as clamp(x, min=0))", relu.tolist(), [0.0, 0.0, 1.0, 1.0, 1.0])]


@experiment("KINK-6", claim="atan2 has derivative 0 with respect to both operands at the origin")
def atan2_at_origin():
    import torch
    a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    ga, gb = torch.autograd.grad(torch.atan2(a, b).sum(), (a, b))
    return [("d atan2 / da at (0, 0)", ga.tolist(), [0.0]), ("d atan2 / db at (0, 0)", gb.tolist(), [0.0])]
