"""The user-facing Tensor: a numpy array with autograd state, separate from the graph Node that produced it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from . import grad_mode
from .errors import (
    AutogradError,
    InferenceTensorInplaceError,
    IntegerRequiresGradError,
    LeafInplaceError,
    MultiOutputViewInplaceError,
    NoGradViewInplaceError,
    NonLeafGradAccessWarning,
    NonLeafRequiresGradError,
    NotRequiresGradError,
    OverlappingInplaceError,
    PostAccumulateNonLeafError,
)
from .graph import NOTHING_SAVED, AccumulateGrad, Node, RemovableHandle
from .views import ViewInfo


class _Version:
    """A version counter, shared by a tensor and its detached aliases (MODE-6)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Extremes(NamedTuple):
    """What max and min along a dim return, as PyTorch's named tuple: the values and their int64 indices."""

    values: Tensor
    indices: Tensor


class Tensor:
    __slots__ = ("data", "_requires_grad", "_grad_fn", "_grad", "_version", "_accumulator", "_view", "_inference",
                 "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self._grad_fn: Node | None = None
        self._grad: Tensor | None = None
        self._version: _Version | None = None  # created on the first in-place update, detach or view
        self._accumulator: AccumulateGrad | None = None
        self._view: ViewInfo | None = None  # set for a view of another tensor (views.py)
        self._inference = grad_mode._state.inference  # made under inference_mode (MODE-9)
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # -- autograd state --------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        info = self._view
        if info is not None:
            if info.multi_output and info.seen != self._version.value:
                return self._requires_grad or info.base.requires_grad  # its history is not made again (VIEW-7)
            self._sync_view()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self._requires_grad = flag

    @property
    def grad_fn(self) -> Node | None:
        if self._view is not None:
            self._sync_view()
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, node: Node | None) -> None:
        self._grad_fn = node

    def _sync_view(self) -> None:
        """A view whose base changed in place since it last looked replays its view steps on the base's history (VIEW-4)."""
        info = self._view
        version = self._version.value
        if info.seen == version:
            return
        if info.no_grad or not info.base.requires_grad:
            info.seen = version
            return  # a view made under no_grad carries no gradient (VIEW-8)
        if info.multi_output:  # one of several views: no history of its own can be made again (VIEW-7)
            raise MultiOutputViewInplaceError("This view is the output of a function that returns multiple views, "
                                              "and its base or another view of its base has been modified inplace.")
        info.seen = version
        with grad_mode._Mode(True):
            node = views.replay(info.base, info.steps)._grad_fn
        old = self._grad_fn
        if old is not None and old.retained is self:  # retain_grad follows the tensor (RETAIN-7); hooks stay (HOOK-13)
            old.retained, node.retained = None, self
        self._grad_fn, self._requires_grad = node, True

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def is_inference(self) -> bool:
        """Whether this is an inference tensor: made under inference_mode, or a view or detach of one (MODE-9, MODE-12)."""
        return self._inference

    @property
    def grad(self) -> Tensor | None:
        if not self.is_leaf and not self.retains_grad and self._grad is None:  # RETAIN-6: not once one was assigned
            warnings.warn("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                          "attribute won't be populated during backward(); call retain_grad() on it first.",
                          NonLeafGradAccessWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        """Whether backward fills this non-leaf's .grad (RETAIN-2): its node names it as the tensor it fills."""
        return self.grad_fn is not None and self.grad_fn.retained is self

    @property
    def version(self) -> int:
        """How many in-place updates the values have had; shared with detached aliases (MODE-6)."""
        return self._version.value if self._version is not None else 0

    def _shared_version(self) -> _Version:
        if self._version is None:
            self._version = _Version()
        return self._version

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def requires_grad_(self, flag: bool = True) -> Tensor:  # LEAF-5: no argument means True
        if flag and self.data.dtype.kind not in "fc":
            raise IntegerRequiresGradError("only Tensors of floating point dtype can require gradients")
        if not self.is_leaf:
            if not flag:
                raise NonLeafRequiresGradError("you can only change requires_grad flags of leaf variables; "
                                               "use detach() to take a non-leaf out of the graph")
            return self
        self.requires_grad = bool(flag)
        return self

    def _edge(self):
        """Where a gradient for this tensor goes: its node, its leaf accumulator, or nowhere."""
        if not self.requires_grad:
            return None
        if self.grad_fn is not None:
            return self.grad_fn
        if self._accumulator is None:
            self._accumulator = AccumulateGrad(self)
        return self._accumulator

    def retain_grad(self) -> None:
        if not self.requires_grad:
            raise NotRequiresGradError("can't retain_grad on Tensor that has requires_grad=False")
        if self.is_leaf or self.retains_grad:
            return  # RETAIN-3: a leaf keeps its gradient anyway
        self.grad_fn.retained = self

    def detach(self) -> Tensor:
        """A leaf that shares this tensor's values and version counter and does not require grad (MODE-5, MODE-6)."""
        alias = result(self.data)
        alias._version = self._shared_version()
        alias._inference = self._inference  # as a view: an inference tensor exactly when its source is (MODE-12)
        return alias

    def detach_(self) -> Tensor:
        """Make this tensor a leaf that does not require grad; an in-place update, so nodes that saved it refuse (MODE-7)."""
        if self._view is not None and not self._view.no_grad:
            raise AutogradError("Can't detach views in-place. Use detach() instead.")
        self._grad_fn, self._requires_grad = None, False
        self._shared_version().value += 1
        return self

    def data_alias(self) -> Tensor:
        """PyTorch's `.data`: the same values under a version counter of their own, so changes go unseen (INPLACE-5)."""
        return result(self.data)

    # -- hooks -----------------------------------------------------------------

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        if not self.requires_grad:
            raise NotRequiresGradError("cannot register a hook on a tensor that doesn't require gradient")
        return RemovableHandle.attach(self._edge(), "tensor_hooks", hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        if not self.is_leaf:
            raise PostAccumulateNonLeafError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self.requires_grad:
            raise NotRequiresGradError("cannot register a hook on a tensor that doesn't require gradient")
        return RemovableHandle.attach(self._edge(), "post_hooks", hook)

    # -- backward ----------------------------------------------------------------

    def backward(self, gradient: Tensor | None = None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs: list[Tensor] | None = None) -> None:
        engine.backward(self, gradient, retain_graph, create_graph, inputs)

    # -- operations ----------------------------------------------------------------

    def __add__(self, other): return ops.binary("add", self, other)
    def __radd__(self, other): return ops.binary("add", other, self)
    def __sub__(self, other): return ops.binary("sub", self, other)
    def __rsub__(self, other): return ops.binary("sub", other, self)
    def __mul__(self, other): return ops.binary("mul", self, other)
    def __rmul__(self, other): return ops.binary("mul", other, self)
    def __truediv__(self, other): return ops.binary("div", self, other)
    def __rtruediv__(self, other): return ops.binary("div", other, self)
    def __pow__(self, other): return ops.power(self, other)
    def __rpow__(self, other): return ops.power(other, self)
    def __matmul__(self, other): return ops.binary("matmul", self, other)
    def __rmatmul__(self, other): return ops.binary("matmul", other, self)
    def __neg__(self): return ops.unary("neg", self)
    def __gt__(self, other): return ops.binary("gt", self, other)
    def __lt__(self, other): return ops.binary("lt", self, other)
    def __ge__(self, other): return ops.binary("ge", self, other)
    def __le__(self, other): return ops.binary("le", self, other)
    def eq(self, other): return ops.binary("eq", self, other)
    def ne(self, other): return ops.binary("ne", self, other)

    def exp(self): return ops.unary("exp", self)
    def log(self): return ops.unary("log", self)
    def sin(self): return ops.unary("sin", self)
    def cos(self): return ops.unary("cos", self)
    def tanh(self): return ops.unary("tanh", self)
    def sigmoid(self): return ops.unary("sigmoid", self)
    def relu(self): return ops.unary("relu", self)
    def abs(self): return ops.unary("abs", self)
    def sqrt(self): return ops.unary("sqrt", self)
    def sum(self, dim=None, keepdim=False): return ops.unary("sum", self, dim=dim, keepdim=keepdim)
    def mean(self, dim=None, keepdim=False): return ops.unary("mean", self, dim=dim, keepdim=keepdim)
    def max(self, dim=None, keepdim=False): return self._extreme("max", "argmax", dim, keepdim)
    def min(self, dim=None, keepdim=False): return self._extreme("min", "argmin", dim, keepdim)

    def _extreme(self, name: str, index_name: str, dim, keepdim) -> Any:
        """PyTorch's max and min: the value over everything, or (values, indices) along a dim."""
        if dim is None:
            return ops.unary(name, self)
        return Extremes(ops.unary(name, self, dim=dim, keepdim=keepdim),
                        ops.unary(index_name, self, dim=dim, keepdim=keepdim))

    def prod(self, dim=None, keepdim=False): return ops.unary("prod", self, dim=dim, keepdim=keepdim)
    def cumprod(self, dim): return ops.unary("cumprod", self, dim=dim)
    def norm(self, p=2, dim=None, keepdim=False):
        return ops.unary("norm", self, p="inf" if p == float("inf") else p, dim=dim, keepdim=keepdim)
    def amax(self, dim=None, keepdim=False): return ops.unary("amax", self, dim=dim, keepdim=keepdim)
    def amin(self, dim=None, keepdim=False): return ops.unary("amin", self, dim=dim, keepdim=keepdim)
    def logsumexp(self, dim, keepdim=False): return ops.unary("logsumexp", self, dim=dim, keepdim=keepdim)
    def softmax(self, dim): return ops.unary("softmax", self, dim=dim)
    def log_softmax(self, dim): return ops.unary("log_softmax", self, dim=dim)
    def cumsum(self, dim): return ops.unary("cumsum", self, dim=dim)
    def var(self, dim=None, *, correction=1, keepdim=False):
        return ops.unary("var", self, dim=dim, correction=correction, keepdim=keepdim)
    def std(self, dim=None, *, correction=1, keepdim=False):
        return ops.unary("std", self, dim=dim, correction=correction, keepdim=keepdim)
    def argmax(self, dim=None, keepdim=False): return ops.unary("argmax", self, dim=dim, keepdim=keepdim)
    def argmin(self, dim=None, keepdim=False): return ops.unary("argmin", self, dim=dim, keepdim=keepdim)
    def outer(self, other): return ops.binary("outer", self, other)
    def dot(self, other): return ops.binary("dot", self, other)
    def trace(self): return ops.unary("trace", self)
    def diag(self, diagonal=0): return ops.unary("diag", self, diagonal=diagonal)
    def triu(self, diagonal=0): return ops.unary("triu", self, diagonal=diagonal)
    def tril(self, diagonal=0): return ops.unary("tril", self, diagonal=diagonal)
    def take(self, index): return ops.unary("take", self, index=_indices(index))

    def masked_fill(self, mask, value):
        """value where mask holds, else self; the mask carries no gradient."""
        return ops.unary("masked_fill", self, value=float(value), condition=np.asarray(mask.data, dtype=bool))
    def clamp(self, min=None, max=None): return ops.unary("clamp", self, min=min, max=max)
    def maximum(self, other): return ops.binary("maximum", self, other)
    def minimum(self, other): return ops.binary("minimum", self, other)
    def atan2(self, other): return ops.binary("atan2", self, other)
    def hypot(self, other): return ops.binary("hypot", self, other)
    def fmod(self, other): return ops.binary("fmod", self, other)
    def remainder(self, other): return ops.binary("remainder", self, other)
    def copysign(self, other): return ops.binary("copysign", self, other)
    def lerp(self, end, weight): return ops.binary("lerp", self, end, {"weight": float(weight)})

    def where(self, condition, other):
        """self where condition holds, else other (PyTorch's Tensor.where); the condition carries no gradient."""
        return ops.binary("where", self, other, {"condition": np.asarray(condition.data, dtype=bool)})

    def bool(self) -> Tensor:
        return result(self.data != 0)
    def clone(self): return ops.unary("clone", self)
    def t(self): return ops.unary("transpose", self)
    def reshape(self, *shape): return ops.unary("reshape", self, shape=_shape(shape))

    # -- views (views.py) ----------------------------------------------------------------

    def __getitem__(self, index):
        if type(index) is slice or type(index) is int:  # the common case, a view by one basic index
            return ops.unary("getitem", self, index=(index,))
        return _getitem(self, index)

    def __setitem__(self, index, value): _setitem(self, index, value)
    def select(self, dim, index): return ops.unary("select", self, dim=dim, index=index)
    def narrow(self, dim, start, length): return ops.unary("narrow", self, dim=dim, start=start, length=length)
    def unsqueeze(self, dim): return ops.unary("unsqueeze", self, dim=dim)
    def squeeze(self, dim=None): return ops.unary("squeeze", self, dim=dim)
    def expand(self, *shape): return ops.unary("expand", self, shape=_shape(shape))
    def view(self, *shape): return ops.unary("view", self, shape=_shape(shape))
    def permute(self, *dims): return ops.unary("permute", self, dims=_shape(dims))
    def flatten(self): return ops.unary("flatten", self)
    def broadcast_to(self, shape): return ops.unary("broadcast_to", self, shape=_shape((shape,)))
    def flip(self, dims): return ops.unary("flip", self, dims=_shape((dims,)))
    def roll(self, shifts, dims): return ops.unary("roll", self, shifts=shifts, dims=dims)
    def repeat(self, *repeats): return ops.unary("repeat", self, repeats=_shape(repeats))
    def tile(self, reps): return ops.unary("tile", self, reps=_shape((reps,)))
    def diagonal(self, offset=0, dim1=0, dim2=1): return ops.unary("diagonal", self, offset=offset, dim1=dim1, dim2=dim2)
    def unbind(self, dim=0): return self._pieces("unbind", {"dim": dim})
    def split(self, split_size, dim=0): return self._pieces("split", {"split_size": split_size, "dim": dim})
    def chunk(self, chunks, dim=0): return self._pieces("chunk", {"chunks": chunks, "dim": dim})

    def _pieces(self, name: str, attrs: dict) -> tuple[Tensor, ...]:
        """The outputs of a multi-output view function, each a view of its own (VIEW-7)."""
        outputs = tuple(ops.unary(step, self, **step_attrs) for step, step_attrs in views.pieces(name, self.shape, attrs))
        for output in outputs:
            output._view.multi_output = True
        return outputs

    # -- index ops (an index is an integer Tensor; it becomes an attribute of the node) ---------

    def gather(self, dim, index): return ops.unary("gather", self, dim=dim, index=_indices(index))
    def index_select(self, dim, index): return ops.unary("index_select", self, dim=dim, index=_indices(index))
    def scatter(self, dim, index, src): return ops.binary("scatter", self, src, {"dim": dim, "index": _indices(index)})
    def scatter_add(self, dim, index, src):
        return ops.binary("scatter_add", self, src, {"dim": dim, "index": _indices(index)})
    def index_add(self, dim, index, source):
        return ops.binary("index_add", self, source, {"dim": dim, "index": _indices(index)})

    # -- in-place updates (INPLACE and VIEW rules) ----------------------------------------------

    def add_(self, other): return self._inplace(lambda before: ops.binary("add", before, other), other)
    def sub_(self, other): return self._inplace(lambda before: ops.binary("sub", before, other), other)
    def mul_(self, other): return self._inplace(lambda before: ops.binary("mul", before, other), other)
    def div_(self, other): return self._inplace(lambda before: ops.binary("div", before, other), other)
    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def zero_(self) -> Tensor:
        self._check_not_inference()
        self._check_not_overlapping()
        self.data[...] = 0
        self._shared_version().value += 1
        return self

    def _inplace(self, compute: Callable[[Tensor], Tensor], operand: Any) -> Tensor:
        """Replace the values by compute(old values), recorded out of place on the old ones (copied where saved).

        The tensor keeps its identity and version counter and takes the new node as its history;
        for a view, its base takes a CopySlices node instead, and the view follows (views.py).
        """
        if self._inference:
            self._check_not_inference()
        data = self.data
        if 0 in data.strides:  # (only a stride of 0 lets positions share an element)
            self._check_not_overlapping()
        state = grad_mode._state
        recording = state.enabled
        operand_requires_grad = isinstance(operand, Tensor) and (
            operand._requires_grad if operand._view is None else operand.requires_grad)
        record = False
        if recording:
            self._check_inplace(operand_requires_grad)
            view = self._view
            if view is not None and view.seen != self._version.value:
                self._sync_view()  # (the check has refused the views whose history cannot be made again)
            requires_grad = self._requires_grad
            record = requires_grad or operand_requires_grad
        # The old values, as an operand of compute: a copy only where a node keeps them (most keep only the other
        # operand), as saved_tensors_hooks' pack sees them at once (SAVED-1); else the values themselves, which
        # compute reads before they are written below.
        snapshot = bool(state.saved_hooks)
        before = _new(Tensor)  # result(...), spelled out
        before.data = data.copy() if snapshot else data
        before._requires_grad, before._grad_fn, before._grad, before._version, before._accumulator, before._view = (
            False, None, None, None, None, None)
        before._inference = False if recording else state.inference  # (grad mode is off in inference_mode)
        if record:  # already in the mode compute needs: grad mode on, inference mode off
            before._requires_grad, before._grad_fn = requires_grad, self._grad_fn
            updated = compute(before)
        else:
            with grad_mode._Mode(record):
                updated = compute(before)
        node = updated._grad_fn
        if not snapshot and node is not None:
            saved = node.saved  # (a, b, out) without saved_tensors_hooks
            if saved[0] is before or saved[1] is before or saved[2] is before:
                before.data = data.copy()  # saved for backward: it keeps the old values
        values = updated.data
        if values.dtype is data.dtype:  # (both broadcast alike, and refuse a shape that does not fit)
            data[...] = values
        else:  # a dtype that may not fit: numpy refuses what PyTorch refuses
            np.copyto(data, values, casting="same_kind")
        (self._version or self._shared_version()).value += 1
        if not record:
            return self
        self._take_update(updated._grad_fn)
        return self

    def _take_update(self, node: Node) -> None:
        """Take `node`, an in-place update's, as this tensor's history; for a view its base takes a CopySlices node
        instead, and the view's own history is made again from the base's when next read (VIEW-3). An in-place op
        and a custom function's dirty output (CUSTOM-13) both end here."""
        if self._view is None:
            self._rebase(node)
            return
        base = self._view.base
        base._rebase(copy_slices(base, self._view.steps, node))
        self._view.seen = -1

    def _check_not_inference(self) -> None:
        """An inference tensor, or a view of one, takes in-place updates only inside inference_mode (MODE-11)."""
        if self._inference and not grad_mode._state.inference:
            raise InferenceTensorInplaceError("Inplace update to inference tensor outside InferenceMode is not allowed.")

    def _check_not_overlapping(self) -> None:
        """Several positions that share one element (expand's result) have no one value to take (VIEW-13)."""
        if views.overlapping(self.data):
            raise OverlappingInplaceError("unsupported operation: more than one element of the written-to tensor "
                                          "refers to a single memory location.")

    def _check_inplace(self, operand_requires_grad: bool) -> None:
        """The in-place updates that grad mode refuses, the first that applies naming the error (VIEW-6)."""
        info = self._view
        if info is None:  # the common case: no view flags, and no history to bring up to date
            if self._grad_fn is None and self._requires_grad:
                raise LeafInplaceError("a leaf Variable that requires grad is being used in an in-place operation.")
            return
        base = info.base  # never itself a view: its slots are its state
        if info.no_grad and (base._requires_grad or operand_requires_grad):
            raise NoGradViewInplaceError("A view was created in no_grad mode and is being modified inplace with grad "
                                         "mode enabled.")
        if info.multi_output and (base._requires_grad or operand_requires_grad):
            raise MultiOutputViewInplaceError("This view is the output of a function that returns multiple views. "
                                              "Such functions do not allow the output views to be modified inplace.")
        if base._grad_fn is None and base._requires_grad:
            raise LeafInplaceError("a view of a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")
        if info.seen != self._version.value:
            self._sync_view()
        if self._grad_fn is None and self._requires_grad:
            raise LeafInplaceError("a leaf Variable that requires grad is being used in an in-place operation.")

    def _rebase(self, node: Node) -> None:
        """Give this tensor a new history; retain_grad follows the tensor, hooks stay with the old node (HOOK-13)."""
        old = self._grad_fn if self._view is None else self.grad_fn
        if old is not None and old.retained is self:
            old.retained, node.retained = None, self
        self._grad_fn, self._requires_grad = node, True

    # -- display -----------------------------------------------------------------------

    def __repr__(self) -> str:
        extra = f", grad_fn={self.grad_fn!r}" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"tensor({self.data!r}{extra})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()


# The one-operand functions that PyTorch spells as tensor methods: expm1(), asin(), floor(), ...
ELEMENTWISE_METHODS = ("expm1", "log1p", "log2", "log10", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
                       "acosh", "atanh", "erf", "erfc", "rsqrt", "reciprocal", "square", "sign", "floor", "ceil",
                       "round", "trunc")
for _name in ELEMENTWISE_METHODS:
    setattr(Tensor, _name, lambda self, _op=_name: ops.unary(_op, self))


_new = object.__new__


def result(data: np.ndarray) -> Tensor:
    """A new tensor for an operation's result: the constructor without its checks (the hot path)."""
    out = object.__new__(Tensor)
    out.data, out._requires_grad, out._grad_fn, out._grad = data, False, None, None
    out._version, out._accumulator, out._view = None, None, None
    out._inference = grad_mode._state.inference
    return out


def copy_slices(base: Tensor, steps: tuple, update: Node) -> Node:
    """The base's new node after an in-place update of its view `steps` (VIEW-3).

    It is an overwrite of the view's positions (the rules of `_overwrite`, on the strided path):
    the gradient goes to the update's node at those positions and to the base's earlier history
    at all others; the update's node passes the old view's share on through the view.
    """
    # a base is never a view: its slots are its state (Tensor._edge, spelled out)
    earlier = (base._grad_fn or base._accumulator or base._edge()) if base._requires_grad else None
    rules = ops.OPS["_overwrite"].rules  # (keep_unwritten, written), one tuple for all
    attrs = {"steps": steps, "where": views.where(steps, base.data.ndim)}
    node = Node("copy_slices", rules if earlier is not None else (None, rules[1]), (earlier, update), base,
                NOTHING_SAVED, attrs)
    attrs["in_shape"] = node.shape  # the base's shape: one tuple for both
    return node


def _getitem(tensor: Tensor, index: Any) -> Tensor:
    """Basic indexing is the view op getitem; an integer list (or integer tensor) in it makes a copy (VIEW-2)."""
    index = _normalise_index(index)
    return ops.unary("_index_copy" if _advanced(index) else "getitem", tensor, index=index)


def _setitem(tensor: Tensor, index: Any, value: Any) -> None:
    """x[index] = value: an in-place update that overwrites the indexed positions (VIEW-10); a basic index writes
    its region on the strided path, an integer list through an index map (views.py)."""
    index = (index,) if type(index) is int or type(index) is slice else _normalise_index(index)
    if _advanced(index):
        attrs = {"index": views.index_map(tensor.shape, (("getitem", {"index": index}),))}
    else:  # the basic index itself is the region to write (no view steps needed)
        attrs = {"where": index}
    tensor._inplace(lambda before: ops.binary("_overwrite", before, value, attrs), value)


_BASIC_INDEX = frozenset({int, slice, type(None), type(Ellipsis)})


def _advanced(index: tuple) -> bool:
    """Whether a normalised index holds an integer list (a copy, VIEW-2) rather than only basic indices (a view)."""
    for i in index:
        if type(i) is list:
            return True
    return False


def _normalise_index(index: Any) -> tuple:
    """An index as a tuple of ints, slices, None, Ellipsis and lists of ints (integer Tensors become lists)."""
    index = index if isinstance(index, tuple) else (index,)
    for i in index:
        if type(i) not in _BASIC_INDEX:
            break
    else:
        return index  # the common case, basic indices only
    return tuple(_indices(i).tolist() if isinstance(i, Tensor) else list(i) if isinstance(i, (list, np.ndarray)) else i
                 for i in index)


def _indices(index: Any) -> np.ndarray:
    """An index operand (an integer Tensor, array or list) as an int64 array."""
    return np.asarray(index.data if isinstance(index, Tensor) else index, dtype=np.int64)


def _shape(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def tensor(value: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new leaf holding a copy of `value`."""
    return Tensor(np.array(value, dtype=dtype), requires_grad=requires_grad)


from . import engine, ops, views  # noqa: E402  (both use Tensor; importing them last resolves the cycle)
