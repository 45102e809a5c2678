"""The user-facing Tensor: a numpy array with autograd state, separate from the graph Node that produced it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from . import grad_mode
from .errors import (
    IntegerRequiresGradError,
    LeafInplaceError,
    NonLeafGradAccessWarning,
    NonLeafRequiresGradError,
    NotRequiresGradError,
    PostAccumulateNonLeafError,
)
from .graph import AccumulateGrad, Node, RemovableHandle


class _Version:
    """A version counter, shared by a tensor and its detached aliases (MODE-6)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    __slots__ = ("data", "requires_grad", "grad_fn", "_grad", "_version", "_accumulator", "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad_fn: Node | None = None
        self._grad: Tensor | None = None
        self._version: _Version | None = None  # created on the first in-place update or detach
        self._accumulator: AccumulateGrad | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # -- autograd state --------------------------------------------------------

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if not self.is_leaf and not self.retains_grad:
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
        return alias

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
    def __pow__(self, other): return ops.binary("pow", self, other)
    def __rpow__(self, other): return ops.binary("pow", other, self)
    def __matmul__(self, other): return ops.binary("matmul", self, other)
    def __rmatmul__(self, other): return ops.binary("matmul", other, self)
    def __neg__(self): return ops.unary("neg", self)

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
    def max(self): return ops.unary("max", self)
    def argmax(self): return ops.unary("argmax", self)
    def clone(self): return ops.unary("clone", self)
    def t(self): return ops.unary("transpose", self)
    def reshape(self, *shape): return ops.unary("reshape", self, shape=_shape(shape))

    # -- in-place updates (INPLACE rules) ----------------------------------------------

    def add_(self, other): return self._inplace("add", other)
    def sub_(self, other): return self._inplace("sub", other)
    def mul_(self, other): return self._inplace("mul", other)
    def div_(self, other): return self._inplace("div", other)
    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_

    def zero_(self) -> Tensor:
        self.data[...] = 0
        self._shared_version().value += 1
        return self

    def _inplace(self, name: str, other: Any) -> Tensor:
        recording = grad_mode._enabled
        if recording and self.is_leaf and self.requires_grad:
            raise LeafInplaceError("a leaf Variable that requires grad is being used in an in-place operation.")
        node = None
        if recording and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            # Record the out-of-place op on a snapshot of the old value; the tensor then takes the result
            # over, keeping its identity and version counter, with the new node as its grad_fn.
            before = Tensor(self.data.copy())
            before.requires_grad, before.grad_fn = self.requires_grad, self.grad_fn
            updated = ops.binary(name, before, other)
            value, node = updated.data, updated.grad_fn
        else:
            value = ops.OPS[name].forward(self.data, other.data if isinstance(other, Tensor) else other)
        np.copyto(self.data, value, casting="same_kind")
        self._shared_version().value += 1
        if node is not None:
            if self.retains_grad:  # retain_grad follows the tensor; its hooks stay with the old node
                self.grad_fn.retained, node.retained = None, self
            self.grad_fn, self.requires_grad = node, True
        return self

    # -- display -----------------------------------------------------------------------

    def __repr__(self) -> str:
        extra = f", grad_fn={self.grad_fn!r}" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"tensor({self.data!r}{extra})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()


def result(data: np.ndarray) -> Tensor:
    """A new tensor for an operation's result: the constructor without its checks (the hot path)."""
    out = object.__new__(Tensor)
    out.data, out.requires_grad, out.grad_fn, out._grad = data, False, None, None
    out._version, out._accumulator = None, None
    return out


def _shape(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def tensor(value: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new leaf holding a copy of `value`."""
    return Tensor(np.array(value, dtype=dtype), requires_grad=requires_grad)


from . import engine, ops  # noqa: E402  (both use Tensor; importing them last resolves the cycle)
