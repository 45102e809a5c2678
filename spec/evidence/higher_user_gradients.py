"""HIGHER-3, HIGHER-5: a gradient computed without create_graph has no graph, except where it *is* a value the user
supplied (an output gradient, a hook's result): rules that pass the output gradient on untouched hand that very
tensor back, requires_grad and grad_fn included."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


@experiment("HIGHER-3", claim="a user-supplied output gradient that requires grad passes through identity-like rules as itself")
def user_gradient_passes_through_addition():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)
    v = w * 2
    (g,) = torch.autograd.grad(x + 1, x, grad_outputs=v)
    (h,) = torch.autograd.grad(x * 3, x, grad_outputs=v)
    return [("grad(x + 1, x, v) is v", g is v, True),
            ("grad(x + 1, x, v).requires_grad", g.requires_grad, True),
            ("grad(x * 3, x, v).requires_grad (computed: no graph)", h.requires_grad, False),
            ("grad(x * 3, x, v).grad_fn", h.grad_fn, None)]
