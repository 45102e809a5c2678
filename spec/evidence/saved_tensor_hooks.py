"""SAVED-2, SAVED-6, INPLACE-1: how often PyTorch unpacks, and what it checks of a packed value."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


@experiment("SAVED-2",
            claim="PyTorch unpacks on every read of the saved values: a custom backward that reads ctx.saved_tensors "
                  "twice unpacks twice in one pass")
def unpack_per_read():
    import torch
    unpacked = []

    class Twice(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            (b,) = ctx.saved_tensors
            return g * (a + b)

    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: unpacked.append(1) or t):
        y = Twice.apply(x)
    y.sum().backward()
    return [("unpack calls in one pass", len(unpacked), 2)]


@experiment("INPLACE-1", "SAVED-6",
            claim="PyTorch does not check versions of values saved through pack hooks: a change of what pack returned is used")
def packed_value_has_no_version_check():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    a = x * 1
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        y = (a * a).sum()
    with torch.no_grad():
        a.mul_(10)
    try:
        y.backward()
        outcome = x.grad.tolist()
    except RuntimeError:
        outcome = "raises"
    return [("backward after the packed source changed in place", outcome, [20.0, 40.0])]
