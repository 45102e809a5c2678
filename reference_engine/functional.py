"""The functions PyTorch keeps in torch.nn.functional rather than on tensors, with the same signatures."""

from __future__ import annotations

from . import ops


def softplus(a): return ops.unary("softplus", a)
def silu(a): return ops.unary("silu", a)
def gelu(a, approximate="none"): return ops.unary("gelu", a, approximate=approximate)
def leaky_relu(a, negative_slope=0.01): return ops.unary("leaky_relu", a, negative_slope=negative_slope)
def elu(a, alpha=1.0): return ops.unary("elu", a, alpha=alpha)
