"""Edges an independent audit of rule book 1.6 found, each rule corrected to what these experiments show (torch 2.13.0
and 2.14.1 agree): inference_mode under create_graph, views of user gradients, expand's writes, detach_ on leaves,
aliases outside the tensor API, zero tensors beyond abs, dtypes of output gradients, custom gradients' checks."""

from __future__ import annotations

from gradspec.spec.evidence import experiment, f64


@experiment("CUSTOM-10", "PASS-1", "MODE-9", claim="under inference_mode nothing is recorded, even by a pass with create_graph")
def create_graph_under_inference_mode():
    import torch

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * x
    x = f64([1.0, 2.0], True)
    s, b = Cube.apply(x).sum(), (x ** 3).sum()
    with torch.inference_mode():
        (g,) = torch.autograd.grad(s, x, create_graph=True, retain_graph=True)
        (h,) = torch.autograd.grad(b, x, create_graph=True, retain_graph=True)
    with torch.no_grad():
        (k,) = torch.autograd.grad(b, x, create_graph=True, retain_graph=True)
    return [("custom backward's gradient under inference_mode requires grad", g.requires_grad, False),
            ("built-in gradient under inference_mode requires grad", h.requires_grad, False),
            ("built-in gradient under no_grad requires grad (CUSTOM-10's rule)", k.requires_grad, True)]


@experiment("HIGHER-3", "HIGHER-10",
            claim="rules that only reshape hand back a view of the user's gradient: it requires grad, no grad_fn")
def views_of_the_user_gradient():
    import torch
    x = f64([[1.0, 2.0], [3.0, 4.0]], True)
    w = f64(2.0, True)
    observed = []
    for name, f in [("reshape", lambda t: t.reshape(4)), ("transpose", lambda t: t.t()), ("unsqueeze", lambda t: t.unsqueeze(0))]:
        out = f(x)
        (g,) = torch.autograd.grad(out, x, w * torch.ones_like(out))
        observed += [(f"{name}: requires grad", g.requires_grad, True), (f"{name}: grad_fn", g.grad_fn, None)]
    out = x * 1
    (g,) = torch.autograd.grad(out, x, w * torch.ones_like(out))
    return observed + [("x * 1 (computed): requires grad", g.requires_grad, False)]


@experiment("HIGHER-8", "HIGHER-9",
            claim="which constant gradients PyTorch records, beyond the first list: copysign and hardtanh yes; "
                  "masked_fill and the extreme reductions no")
def more_constant_gradients():
    import torch
    t = f64([0.5, -1.5, 3.0], True)
    one = f64(1.0)
    observed = []
    for name, f, recorded in [("hardtanh (= clamp(x, -1, 1))", torch.nn.functional.hardtanh, True),
                              ("copysign", lambda a: torch.copysign(a, one), True),
                              ("masked_fill", lambda a: a.masked_fill(a > 0, 0.0), False),
                              ("max()", lambda a: a.max(), False), ("amin", lambda a: a.amin(), False),
                              ("min along a dim", lambda a: a.min(0).values, False)]:
        (g,) = torch.autograd.grad(f(t).sum(), t, create_graph=True)
        observed.append((f"{name}: recorded", g.requires_grad, recorded))
    return observed


@experiment("VIEW-13",
            claim="arithmetic in place through an expand that broadcasts raises; fills and non-overlapping parts are allowed")
def expand_writes():

    def outcome(run):
        try:
            run()
            return "ok"
        except RuntimeError:
            return "raises"
    x = f64([1.0, 2.0, 3.0])
    return [("expand(2, 3).add_(1)", outcome(lambda: x.expand(2, 3).add_(1)), "raises"),
            ("expand(2, 3).mul_(2)", outcome(lambda: x.expand(2, 3).mul_(2)), "raises"),
            ("expand(2, 3).fill_(2)", outcome(lambda: x.expand(2, 3).fill_(2.0)), "ok"),
            ("expand(2, 3)[0] = values", outcome(lambda: x.expand(2, 3).__setitem__(0, f64([7.0, 8.0, 9.0]))), "ok"),
            ("expand(1, 3).add_(1): nothing broadcast", outcome(lambda: x.expand(1, 3).add_(1)), "ok")]


@experiment("MODE-8", claim="detach_ on a leaf saved as an input: the node runs; views made before keep their history")
def detach_in_place_of_a_leaf():
    import torch
    x = f64([1.0, 2.0], True)
    w = f64([3.0, 5.0], True)
    p = (x * w).sum()
    x.detach_()
    (gw,) = torch.autograd.grad(p, w)
    y = f64([1.0, 2.0, 3.0], True) * 2
    v = y[:2]
    y.detach_()
    try:
        v.mul_(2)
        through_view = "ok"
    except RuntimeError as error:
        through_view = "leaf_inplace" if "leaf Variable" in str(error) else str(error)[:60]
    return [("d/dw of sum(x * w) after x.detach_() (x a leaf)", gw.tolist(), [1.0, 2.0]),
            ("view made before detach_ requires grad", v.requires_grad, True),
            ("in place through that view", through_view, "leaf_inplace")]


@experiment("INPLACE-1", "INPLACE-5", claim="changes through memory shared outside the tensor API move no version counter")
def aliases_outside_the_tensor_api():
    import torch
    x = f64([1.0, 2.0], True)
    b = f64([3.0, 5.0])
    p = (x * b).sum()
    b.numpy()[:] = 100.0
    (g,) = torch.autograd.grad(p, x)
    return [("gradient after a change through .numpy()", g.tolist(), [100.0, 100.0]), ("version", b._version, 0)]


@experiment("SHAPE-5", claim="efficient zero tensors escape beyond abs: norm with p=1 (second derivative) and sgn")
def zero_tensors_beyond_abs():
    import torch
    x = f64([1.5, -2.0, 0.25], True)
    (g,) = torch.autograd.grad(torch.linalg.vector_norm(x, 1), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    (s,) = torch.autograd.grad(torch.sgn(x).sum(), x)

    def readable(t):
        try:
            t.numpy()
            return True
        except RuntimeError:
            return False
    return [("norm p=1 second derivative readable", readable(h), True), ("sgn's derivative readable", readable(s), True)]


@experiment("GRAD-13", "CUSTOM-3", "CUSTOM-4",
            claim="what is left open: integer output gradients are cast; a custom gradient for an input that does not "
                  "require grad is not checked")
def left_open():
    import torch
    x = f64([1.0, 2.0], True)
    (g,) = torch.autograd.grad((x * x).sum(), x, torch.tensor(2))

    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, c):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad, torch.ones(7)
    (h,) = torch.autograd.grad(F.apply(x, f64([3.0, 5.0])).sum(), x)
    return [("an int 0-d output gradient of 2, cast", g.tolist(), [4.0, 8.0]),
            ("a [7] gradient returned for a [2] input that does not require grad: ignored", h.tolist(), [1.0, 1.0])]
