"""CUSTOM-1, CUSTOM-3, CUSTOM-10: what PyTorch's autograd.Function does with the forward's grad mode, the number of
gradients a backward returns, and tensors a backward hands out as they are."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


@experiment("CUSTOM-3", claim="extra trailing None gradients are accepted; an extra tensor raises; non-tensor arguments count")
def gradient_count():
    import torch

    def make(returned):
        class F(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, *rest):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return returned(g)
        return F

    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def outcome(function, *args):
        try:
            function.apply(x, *args).sum().backward()
            return "ok"
        except RuntimeError as error:
            return "raises: " + ("count" if "incorrect number of gradients" in str(error) else str(error)[:60])
    return [("one input, returns (g, None)", outcome(make(lambda g: (g * 2, None))), "ok"),
            ("one input, returns (g, None, None)", outcome(make(lambda g: (g * 2, None, None))), "ok"),
            ("one input, returns (g, g)", outcome(make(lambda g: (g * 2, g))), "raises: count"),
            ("inputs (x, 3.0), returns g only", outcome(make(lambda g: g * 2), 3.0), "raises: count"),
            ("inputs (x, 3.0), returns (g, None)", outcome(make(lambda g: (g * 2, None)), 3.0), "ok")]


@experiment("CUSTOM-10",
            claim="without create_graph a backward's computed gradients do not require grad, but a saved tensor "
                  "returned as it is does")
def returned_saved_tensor_keeps_requires_grad():
    import torch

    class ReturnsSaved(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(w)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (w,) = ctx.saved_tensors
            return w, None

    class Computes(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(w)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (w,) = ctx.saved_tensors
            return g * w, None

    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)
    (a,) = torch.autograd.grad(ReturnsSaved.apply(x, w).sum(), x)
    (b,) = torch.autograd.grad(Computes.apply(x, w).sum(), x)
    return [("returned saved w requires grad", a.requires_grad, True),
            ("g * w computed in the backward requires grad", b.requires_grad, False)]


@experiment("CUSTOM-1", claim="the forward runs with grad mode off")
def forward_grad_mode():
    import torch
    seen = []

    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(torch.is_grad_enabled())
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2
    F.apply(torch.ones(2, requires_grad=True))
    return [("grad mode inside forward", seen, [False])]
