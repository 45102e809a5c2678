"""How many elements an op's result can have, from its operands' shapes and its keywords alone.

The static checks evaluate a case's steps in numpy to check their shapes; before each op
runs, its result's size is bounded here, so that a small file asking for `outer` of two long
vectors, a `tile` by a million or a list index of a hundred thousand positions is refused by
the element limit instead of allocating gigabytes first. Every bound is exact for a valid
call and never smaller than what numpy would allocate for an invalid one (which numpy then
refuses). Python integers throughout: no product overflows.
"""

from __future__ import annotations

from math import prod
from typing import Any

from gradspec.language.expressions import python_index


def result_size(op: str, shapes: list[tuple[int, ...]], kwargs: dict) -> int:
    """An upper bound of the elements of `op`'s result (of its largest output, for unbind, split and chunk)."""
    rule = _GROWING.get(op)
    if rule is not None:
        return rule(shapes, kwargs)
    return prod(_broadcast_bound(shapes))


def _broadcast_bound(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Per dimension (aligned from the right, as numpy broadcasts), the largest size among the operands.

    Exact for operands that broadcast, and a bound for every op whose result is no larger than its operands
    broadcast: elementwise ops, reductions, views, matmul and solve (each result dimension is one of an operand's),
    gather and take (the index's shape), scatter (the operand's).
    """
    rank = max((len(shape) for shape in shapes), default=0)
    dims = [1] * rank
    for shape in shapes:
        for position, size in enumerate(shape, start=rank - len(shape)):
            dims[position] = max(dims[position], abs(int(size)))
    return tuple(dims)


def _size(shape: tuple[int, ...]) -> int:
    return prod(abs(int(n)) for n in shape)


def _outer(shapes, kwargs) -> int:
    return _size(shapes[0]) * _size(shapes[1])  # numpy flattens its operands; torch wants vectors


def _diag(shapes, kwargs) -> int:
    (shape,) = shapes
    if len(shape) == 1:  # a vector becomes a square matrix, larger by the offset
        return (abs(int(shape[0])) + abs(int(kwargs.get("diagonal") or 0))) ** 2
    return _size(shape)


def _tile(shapes, kwargs) -> int:
    reps = kwargs.get("reps", kwargs.get("repeats")) or ()
    return _size(shapes[0]) * _size(tuple(reps))


def _joined(shapes, kwargs) -> int:
    return sum(_size(shape) for shape in shapes)  # cat and stack hold every operand's elements


def _new_shape(shapes, kwargs) -> int:
    """reshape, view, expand and broadcast_to: the shape asked for, -1 standing for the operand's size there."""
    (shape,) = shapes
    wanted = tuple(kwargs.get("shape") or ())
    return max(_size(shape), prod(abs(int(n)) if int(n) != -1 else max(shape, default=1) for n in wanted))


def _index_select(shapes, kwargs) -> int:
    shape, index = shapes
    dim = kwargs.get("dim") or 0
    if not -len(shape) <= dim < len(shape):
        return _size(shape) * max(_size(index), 1)
    return _size(shape[:dim % len(shape)] + shape[dim % len(shape) + 1:]) * _size(index)


def _getitem(shapes, kwargs) -> int:
    """Slices keep their length, ints and None one position, and the integer lists together as many as the longest
    (they broadcast); `...` keeps every dimension the rest of the subscript does not name."""
    (shape,) = shapes
    index = python_index(kwargs["index"])
    named = sum(1 for part in index if part is not None and part is not Ellipsis)
    size, dim, longest = 1, 0, 1
    for part in index:
        if part is None:
            continue
        if part is Ellipsis:
            skipped = max(len(shape) - named, 0)
            size *= _size(shape[dim:dim + skipped])
            dim += skipped
            continue
        length = int(shape[dim]) if dim < len(shape) else 1
        if isinstance(part, slice):
            size *= len(range(*part.indices(length)))
        elif isinstance(part, list):
            longest = max(longest, len(part))
        dim += 1
    return size * longest * _size(shape[dim:])


_GROWING: dict[str, Any] = {
    "outer": _outer, "diag": _diag, "tile": _tile, "repeat": _tile, "cat": _joined, "stack": _joined,
    "reshape": _new_shape, "view": _new_shape, "expand": _new_shape, "broadcast_to": _new_shape,
    "index_select": _index_select, "getitem": _getitem,
}
