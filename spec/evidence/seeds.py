"""Facts of the tutorials in shared/seeds that the corpus pins."""

from __future__ import annotations

from gradspec.spec.evidence import experiment


@experiment("LIFE-2", claim="seed 001: after grad(f, ..., create_graph=True, retain_graph=False), f.backward() raises")
def create_graph_without_retain_frees():
    import torch
    x = torch.tensor([[4.0]], dtype=torch.float64)
    w = torch.tensor([[3.0]], dtype=torch.float64, requires_grad=True)
    y = (x @ w) ** 2
    (f,) = torch.autograd.grad(y, w, create_graph=True, retain_graph=False)
    try:
        f.backward()
        outcome = "ok"
    except RuntimeError as error:
        outcome = "freed" if "second time" in str(error) else str(error)[:60]
    return [("f.backward() after grad(..., create_graph=True, retain_graph=False)", outcome, "freed")]


@experiment("MODE-5", "INPLACE-5", claim="seed 002: x.data is a tensor that carries no gradient")
def data_carries_no_gradient():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    d = x.data
    y = (d * x).sum()
    y.backward()
    return [("x.data requires grad", d.requires_grad, False), ("x.data is a leaf", d.is_leaf, True),
            ("d(x.data * x)/dx is x.data, no term through .data", x.grad.tolist(), [1.0, 2.0])]
