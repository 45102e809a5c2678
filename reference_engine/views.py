"""Views: tensors that share their base's values and version counter, and in-place updates through them.

How the design works, and how it maps to PyTorch's:

- A view op (slicing, `select`, `permute`, ... : `ops.VIEW_OPS`) returns a numpy view of its
  operand's array, so values are shared for free, and the result takes its base's version
  counter object (VIEW-1, VIEW-5). Its `ViewInfo` names the *root* base (views of views
  point at the first tensor that is not a view) and the chain of view steps that leads from
  the base to it, so the view can always be made again from the base.
- An in-place update of a view records the update out of place on a snapshot of the view,
  writes the values through the numpy view into the base's array, and gives the base a new
  node, `CopySlices` (PyTorch's name for the same idea): its gradient goes to the updated
  region through the update's node, and to the base's earlier history everywhere else
  (VIEW-3). The old view's own node still receives the gradient of the old view value, so it
  reaches the base's earlier history at the region; PyTorch instead folds the update's
  derivative into CopySlices and never runs the old view's node (whence VIEW-9's hooks).
- Every view remembers the version it last saw. When the counter has moved on (the base or
  another view was updated in place), the view's history is stale, and the next read of its
  `grad_fn` or `requires_grad` replays the view steps on the base's current history
  (VIEW-4). PyTorch does the same lazily, with view replay or an `as_strided` node.
- Gradients of view ops and of index ops use one pair of internal ops over *index maps*:
  the view steps applied to `arange(n)` say which base element sits at each position of the
  view; `_take` reads through such a map and `_put_add` scatters back, adding repeated
  positions (VIEW-11). Each is the other's derivative, so create_graph works through views.

All costs are linear in the number of elements: an index map is one pass over the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ViewInfo:
    """What a view knows of its base: the root base, the view steps from it, and the version it last saw."""

    base: Any  # the root base Tensor (never itself a view)
    steps: tuple  # ((op name, attrs), ...) applied to the base, in order
    seen: int  # the version counter's value when this view's history was last made
    multi_output: bool = False  # an output of unbind, split or chunk (VIEW-7)
    no_grad: bool = False  # made under no_grad: shares values, carries no gradient (VIEW-8)


def replay(value: Any, steps: tuple) -> Any:
    """Apply view steps to an array or a Tensor (through ops.call, so a Tensor records them)."""
    from . import ops
    for name, attrs in steps:
        value = ops.call(name, value, **attrs)
    return value


def positions(shape: tuple) -> np.ndarray:
    """An array of `shape` holding each element's own flat index: what an op reading elements reads of it is an
    index map (arange(6).reshape(2, 3)[:, 1] = [1, 4])."""
    return np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)


def index_map(shape: tuple, steps: tuple) -> np.ndarray:
    """For each position of the view that `steps` make of a base of `shape`, the flat index of its base element."""
    return np.asarray(replay(positions(shape), steps))


# -- numpy forwards of the view ops: each returns a view of its operand, never a copy ------------


def _writable(view: np.ndarray) -> np.ndarray:
    """numpy hands some views out read-only (diagonal); ours are written through, as PyTorch's are."""
    if not view.flags.writeable and view.base is not None and _owner(view).flags.writeable:
        view.flags.writeable = True
    return view


def _owner(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def getitem(a: np.ndarray, index: tuple) -> np.ndarray:
    """Basic indexing (ints, slices, None, Ellipsis) is a view; an integer list anywhere makes it a copy (VIEW-2)."""
    index = tuple(np.asarray(i, dtype=np.int64) if isinstance(i, (list, tuple)) else i for i in index)
    if any(isinstance(i, np.ndarray) for i in index):
        return np.array(a[index])
    return a[index + (Ellipsis,)] if Ellipsis not in index else a[index]  # a[0] of a 1-d array: 0-d view


def select(a, dim, index):
    return a[(slice(None),) * (dim % a.ndim) + (index, Ellipsis)]


def narrow(a, dim, start, length):
    return a[(slice(None),) * (dim % a.ndim) + (slice(start, start + length), Ellipsis)]


def unsqueeze(a, dim):
    return np.expand_dims(a, dim if dim >= 0 else dim + a.ndim + 1)


def squeeze(a, dim=None):
    if dim is None:
        return np.squeeze(a)
    return np.squeeze(a, axis=dim) if a.shape[dim] == 1 else a[...]  # PyTorch: a dim of size > 1 stays


def overlapping(array: np.ndarray) -> bool:
    """Whether several positions of `array` share one element (a stride of 0 over more than one position, expand's
    result): an in-place update through it has no one value to write (VIEW-13)."""
    return any(stride == 0 and size > 1 for stride, size in zip(array.strides, array.shape, strict=True))


def expanded_shape(shape: tuple, target: tuple) -> tuple:
    """`target` with each -1 replaced by the size it keeps from `shape` (new dimensions lead)."""
    return tuple(shape[i - (len(target) - len(shape))] if n == -1 else n for i, n in enumerate(target))


def expand(a, shape):
    return np.broadcast_to(a, expanded_shape(a.shape, shape))  # read-only: several positions share one element


def view(a, shape):
    """Reshape without copying, or refuse (PyTorch's view); reshape copies when it must."""
    try:
        return np.reshape(a, tuple(shape), copy=False)  # raises ValueError if the strides do not allow it
    except TypeError:  # numpy before 2.1 has no copy argument (setting .shape is deprecated from 2.5)
        out = a.view()
        out.shape = tuple(shape)
        return out


def permute(a, dims):
    return np.transpose(a, dims)


def flatten(a):
    """One dimension; a view where the layout allows (as reshape)."""
    return np.reshape(a, (-1,))


def broadcast_to(a, shape):
    return np.broadcast_to(a, tuple(shape))  # read-only: several positions share one element


def diagonal(a, offset=0, dim1=0, dim2=1):
    return _writable(np.diagonal(a, offset, dim1, dim2))


# -- the multi-output view functions, as lists of single views (one node each) --------------


def pieces(name: str, shape: tuple, attrs: dict) -> list[tuple[str, dict]]:
    """The single view steps that make each output of unbind, split or chunk on an operand of `shape`."""
    dim = attrs.get("dim", 0) % len(shape)
    size = shape[dim]
    if name == "unbind":
        return [("select", {"dim": dim, "index": i}) for i in range(size)]
    if name == "split":
        step = attrs["split_size"]
    else:  # chunk: as many pieces of ceil(size / chunks) as fit
        step = -(-size // attrs["chunks"]) if size else 1
    return [("narrow", {"dim": dim, "start": start, "length": min(step, size - start)})
            for start in range(0, size, step)]
