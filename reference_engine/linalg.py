"""The functions PyTorch keeps in torch.linalg, with the same signatures."""

from __future__ import annotations

from . import ops


def inv(a): return ops.unary("inv", a)
def det(a): return ops.unary("det", a)
def solve(a, b): return ops.binary("solve", a, b)
def vector_norm(a, ord=2, dim=None, keepdim=False): return a.norm(ord, dim, keepdim)
