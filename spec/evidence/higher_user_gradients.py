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


@experiment("HIGHER-3", claim="grad(y, y, v) and a leaf hook's result hand back the user's tensor, graph and all")
def identity_and_hook_results_pass_through():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)
    v = w * 2
    y = x * 1
    (gy,) = torch.autograd.grad(y, y, grad_outputs=v)
    replacement = w * 3
    x.register_hook(lambda grad: replacement)
    (gx,) = torch.autograd.grad((x * 2).sum(), x)
    return [("grad(y, y, v) is v", gy is v, True),
            ("a leaf hook's result that requires grad is what grad returns", gx is replacement, True),
            ("... and it requires grad without create_graph", gx.requires_grad, True)]


@experiment("HIGHER-3",
            claim="a view of the user's gradient made by a rule without create_graph requires grad but has no grad_fn")
def sum_expands_the_user_gradient():
    import torch
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    v = w * 1
    (g,) = torch.autograd.grad(x.sum(), x, grad_outputs=v)
    (h,) = torch.autograd.grad(x.mean(), x, grad_outputs=v)
    return [("grad(sum(x), x, v).requires_grad (an expand of v under no_grad)", g.requires_grad, True),
            ("grad(sum(x), x, v).grad_fn", g.grad_fn, None),
            ("grad(sum(x), x, v) shares v's storage", g.data_ptr() == v.data_ptr(), True),
            ("grad(mean(x), x, v).requires_grad (computed: a division)", h.requires_grad, False)]


@experiment("HIGHER-5", claim="under create_graph, a gradient that is the user's output gradient requires grad because that does")
def create_graph_identity_returns_the_user_gradient():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)
    v = w * 2
    (g,) = torch.autograd.grad(x + 1, x, grad_outputs=v, create_graph=True)
    (c,) = torch.autograd.grad((x * 3).sum(), x, create_graph=True)
    (dw,) = torch.autograd.grad(g.sum(), w)
    return [("grad(x + 1, x, v, create_graph) is v", g is v, True),
            ("... requires grad", g.requires_grad, True),
            ("... differentiates to v's own derivative (2 per element)", dw.tolist(), [2.0, 2.0]),
            ("grad(sum(3x), x, create_graph).requires_grad (nothing recorded)", c.requires_grad, False)]
