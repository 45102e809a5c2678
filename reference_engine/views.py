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
- Gradients of view ops take the strided path, as PyTorch's do: a view's region of an array is
  the same numpy view steps applied to that array (`region`), so the gradient of a slice,
  select, narrow or diagonal is zeros with g written into that region (`put`), a permute's is
  g permuted back, a reshape's is g reshaped back, an expand's is g summed back. An in-place
  update of a view (CopySlices) and `x[basic index] = v` read g at the region (`take`) and
  zero it (`zero`). `_view_put` and `_view_take` are each other's derivative and `_view_zero`
  its own, so create_graph works through views. No index map is built on this path.
- Index ops (integer lists, gather, index_select, ...) and the rare view steps that make no
  writable region (expand's shared positions, a reshape that had to copy) use *index maps*:
  the steps applied to `arange(n)` say which base element sits at each position; `_take`
  reads through such a map and `_put_add` scatters back, adding repeated positions (VIEW-11).

All costs are linear in the number of elements touched; the strided path allocates only g's zeros.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(slots=True)
class ViewInfo:
    """What a view knows of its base: the root base, the view steps from it, and the version it last saw."""

    base: Any  # the root base Tensor (never itself a view)
    steps: tuple  # ((op name, attrs), ...) applied to the base, in order (attrs: see arguments)
    seen: int  # the version counter's value when this view's history was last made
    multi_output: bool = False  # an output of unbind, split or chunk (VIEW-7)
    no_grad: bool = False  # made under no_grad: shares values, carries no gradient (VIEW-8)


_OPS_MODULE = __name__.rpartition(".")[0] + ".ops"  # ops imports this module: it is looked up when first needed


def _ops():
    return sys.modules[_OPS_MODULE]


def arguments(attrs: dict) -> dict:
    """A step's keyword arguments: its attrs without the in_shape and in_dtype that its node adds to them when the
    view is recorded (the step and the node share one dict: ops.record)."""
    if "in_shape" not in attrs:
        return attrs
    return {key: value for key, value in attrs.items() if key != "in_shape" and key != "in_dtype"}


def replay(value: Any, steps: tuple) -> Any:
    """Apply view steps to an array or a Tensor (through ops.call, so a Tensor records them)."""
    call = _ops().call
    for name, attrs in steps:
        value = call(name, value, **arguments(attrs))
    return value


def positions(shape: tuple) -> np.ndarray:
    """An array of `shape` holding each element's own flat index: what an op reading elements reads of it is an
    index map (arange(6).reshape(2, 3)[:, 1] = [1, 4])."""
    return np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)


def index_map(shape: tuple, steps: tuple) -> np.ndarray:
    """For each position of the view that `steps` make of a base of `shape`, the flat index of its base element."""
    return np.asarray(replay(positions(shape), steps))


# -- the strided path: a view's region of any array of the base's shape, by the same numpy view steps ----------

_SHARING = frozenset({"expand", "broadcast_to"})  # steps whose positions may share elements: no region to write


def where(steps: tuple, ndim: int) -> tuple | None:
    """The numpy basic index that makes the view `steps` of an array of `ndim` dimensions, for one getitem, select or
    narrow step (by far the common view), else None: `array[where] = value` then writes the region in one call."""
    if len(steps) != 1:
        return None
    name, attrs = steps[0]
    index_of = STEP_INDEX.get(name)
    return None if index_of is None else index_of(attrs, ndim)


def _getitem_index(attrs: dict, ndim: int) -> tuple | None:
    index = attrs["index"]
    for i in index:
        if type(i) is list:  # an integer list: no region (a copy, VIEW-2)
            return None
    return index


def _select_index(attrs: dict, ndim: int) -> tuple:
    dim = attrs["dim"] % ndim
    return (attrs["index"],) if dim == 0 else (slice(None),) * dim + (attrs["index"],)


def _narrow_index(attrs: dict, ndim: int) -> tuple:
    start = attrs["start"]
    return (slice(None),) * (attrs["dim"] % ndim) + (slice(start, start + attrs["length"]),)


# where(...) of one view step, by op: index_of(attrs, ndim), extra keys of attrs (a node's in_shape) ignored
STEP_INDEX = {"getitem": _getitem_index, "select": _select_index, "narrow": _narrow_index}


def read(array: np.ndarray, steps: tuple) -> np.ndarray:
    """The values of `array` that the view `steps` read, by their numpy forwards (a view where they make one)."""
    table = _ops().OPS  # looked up on each call: a planted fault may swap the table
    for name, attrs in steps:
        array = table[name].forward(array, **arguments(attrs))
    return array


def region(array: np.ndarray, steps: tuple) -> np.ndarray | None:
    """A writable numpy view of `array` (an array that owns its data) at the positions `steps` read, or None where the
    steps make none (a reshape that had to copy, expand's shared positions): the caller then uses an index map."""
    for name, _ in steps:
        if name in _SHARING:
            return None
    target = read(array, steps)  # diagonal's forward has made its view writable already
    return target if target.base is array else None  # numpy makes the owner the base of a view of a view


def take(a: np.ndarray, steps: tuple) -> np.ndarray:
    """_view_take: a copy of the values at the view's positions (the derivative of `put`)."""
    return np.array(read(a, steps))


def put(a: np.ndarray, steps: tuple, shape: tuple) -> np.ndarray:
    """_view_put: zeros of the base's `shape` with `a` written at the view's positions (the derivative of `take`)."""
    a = np.asarray(a)
    out = np.zeros(shape, dtype=a.dtype)
    target = region(out, steps)
    if target is None:  # positions may repeat: add them up (VIEW-11)
        return _ops()._put_add_forward(a, index_map(shape, steps), shape)
    target[...] = a
    return out


def zero(a: np.ndarray, steps: tuple) -> np.ndarray:
    """_view_zero: a copy of `a` with the view's positions set to exactly 0 (its own derivative)."""
    out = np.array(a, order="C")  # a copy, writable even when `a` is a broadcast gradient; C order for reshape(-1)
    target = region(out, steps)
    if target is None:
        out.reshape(-1)[index_map(out.shape, steps).ravel()] = 0
    else:
        target[...] = 0
    return out


def overwrite(a: np.ndarray, b: np.ndarray, steps: tuple, index: tuple | None = None) -> np.ndarray:
    """A copy of `a` with `b` (broadcast) written at the view's positions: `x[basic index] = b` out of place;
    `index`, where given, is `where(steps, a.ndim)`."""
    out = np.array(a, order="C")
    if index is not None:
        out[index] = b
        return out
    target = region(out, steps)
    if target is None:
        index = index_map(out.shape, steps)
        out.reshape(-1)[index.ravel()] = np.broadcast_to(b, index.shape).ravel()
    else:
        target[...] = b
    return out


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
    for i in index:
        if isinstance(i, (list, tuple, np.ndarray)):
            return np.array(a[tuple(np.asarray(i, dtype=np.int64) if isinstance(i, (list, tuple)) else i
                                    for i in index)])
    return a[index + (Ellipsis,)] if Ellipsis not in index else a[index]  # a[0] of a 1-d array: 0-d view


def select(a, dim, index):
    return a[index, ...] if dim == 0 else a[(slice(None),) * (dim % a.ndim) + (index, Ellipsis)]


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
    strides = array.strides
    return 0 in strides and any(stride == 0 and size > 1 for stride, size in zip(strides, array.shape, strict=True))


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
