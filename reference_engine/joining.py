"""cat and stack, made of recorded steps the engine already has.

Each operand is placed into zeros of the result's shape at its positions (the internal
`_put_add` op, whose gradient reads those positions back) and the placements are added.
The graph is a little larger than one node of n inputs, but every rule stays a rule
the engine already differentiates, so create_graph works through cat and stack too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import ops, views
from .tensor import Tensor


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The operands joined along an existing dim."""
    shapes = [tuple(t.shape) for t in tensors]
    dim = dim % len(shapes[0])
    sizes = [shape[dim] for shape in shapes]
    shape = shapes[0][:dim] + (sum(sizes),) + shapes[0][dim + 1:]
    everywhere = views.positions(shape)
    placed, start = [], 0
    for tensor, size in zip(tensors, sizes, strict=True):
        where = np.take(everywhere, np.arange(start, start + size), axis=dim)
        placed.append(ops.call("_put_add", tensor, index=where, shape=shape))
        start += size
    total = placed[0]
    for piece in placed[1:]:
        total = total + piece
    return total


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The operands joined along a new dim."""
    dim = dim % (len(tensors[0].shape) + 1)
    return cat([t.reshape(*(tuple(t.shape)[:dim] + (1,) + tuple(t.shape)[dim:])) for t in tensors], dim)
