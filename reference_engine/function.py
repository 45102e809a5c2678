"""Functions with a derivative of their own, as PyTorch's autograd.Function: written from the CUSTOM rules.

`Function.apply` runs the subclass's forward with grad mode off (CUSTOM-1) and, where an
input requires grad, records one `CustomNode` for the whole call. Each differentiable output
gets a small node of its own that passes its gradient into its slot of the call's node, so
that hooks and retain_grad stay per output (CUSTOM-14) and the engine's ordinary summing
gathers every path's gradient before the backward runs once (CUSTOM-2). The engine hands
a CustomNode to `run`, which checks what the backward returns (CUSTOM-3, CUSTOM-4) and
releases what it saved as any node does (CUSTOM-9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import grad_mode
from .errors import (
    CustomGradCountError,
    CustomGradShapeError,
    FreedGraphError,
    InplaceModifiedError,
    OnceDifferentiableError,
)
from .graph import FREED, NOTHING_SAVED, Node, _versions_of
from .saved_hooks import PackedValues, pack_all, unpack_all
from .tensor import Tensor, result

SLOTS = object()  # the "shape" and "dtype" of a CustomNode's gradient: a Slots, never conformed to a tensor


class Slots:
    """The gradients of a call's outputs, one slot each (None where none arrived); paths add slot by slot."""

    __slots__ = ("values",)
    shape = dtype = SLOTS

    def __init__(self, values: list):
        self.values = values

    def __add__(self, other: Slots) -> Slots:
        return Slots([a if b is None else b if a is None else a + b for a, b in zip(self.values, other.values,
                                                                                    strict=True)])


class FunctionCtx:
    """What forward tells backward: saved tensors and the options of autograd.Function's ctx."""

    def __init__(self):
        self.to_save: tuple = ()
        self.non_differentiable: list[Tensor] = []
        self.dirty: list[Tensor] = []
        self.materialize_grads = True
        self.node: CustomNode | None = None

    def save_for_backward(self, *tensors: Tensor) -> None:
        self.to_save = tensors

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self.non_differentiable.extend(tensors)

    def mark_dirty(self, *tensors: Tensor) -> None:
        self.dirty.extend(tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self) -> tuple:
        if self.node is None:  # no graph was recorded: the tensors as they were given
            return self.to_save
        return self.node.take_saved_tensors()


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `apply(*args)`."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any) -> Any:
        ctx = FunctionCtx()
        with _forward_mode():  # CUSTOM-1: the forward records nothing
            outputs = cls.forward(ctx, *args)
        single = isinstance(outputs, Tensor)
        outputs = (outputs,) if single else tuple(outputs)
        recording = _records(args)
        for tensor in ctx.dirty:  # CUSTOM-13: refused as the same in-place update outside would be (VIEW-6, VIEW-7)
            if recording:
                tensor._check_inplace(operand_requires_grad=True)
        if recording:
            CustomNode(cls, ctx, args, outputs)
        return outputs[0] if single else outputs


_forward_mode = grad_mode.no_grad  # the mode a custom forward runs in (CUSTOM-1)


def _records(args: tuple) -> bool:
    """CUSTOM-1: a call is recorded when grad mode is on and an input requires grad."""
    return grad_mode.is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad for a in args)


def once_differentiable(backward: Callable) -> Callable:
    """A backward that is not itself differentiable: it runs with grad mode off, and where its incoming gradients
    require grad, what it returns carries a node that raises once a pass reaches it (CUSTOM-11)."""
    def wrapper(ctx: FunctionCtx, *grads: Any) -> Any:
        with grad_mode.no_grad():
            results = backward(ctx, *grads)
        sources = [g for g in grads if isinstance(g, Tensor) and g.requires_grad]
        if not grad_mode.is_grad_enabled() or not sources:
            return results
        single = not isinstance(results, tuple)
        wrapped = tuple(_raising_when_differentiated(r, sources) for r in ((results,) if single else results))
        return wrapped[0] if single else wrapped
    return wrapper


def _raising_when_differentiated(value: Any, sources: list[Tensor]) -> Any:
    if not isinstance(value, Tensor):
        return value
    def refuse(g, a, b, out, attrs):
        raise OnceDifferentiableError("trying to differentiate twice a function that was marked with "
                                      "@once_differentiable")
    wrapped = result(value.data)
    wrapped._grad_fn = Node("OnceDifferentiable", tuple(refuse for _ in sources),
                            tuple(source._edge() for source in sources), wrapped, NOTHING_SAVED, {})
    wrapped._requires_grad = True
    return wrapped


class CustomNode:
    """One call of a Function: its inputs' edges, what it saved, and the backward to run on its outputs' gradients."""

    __slots__ = ("name", "function", "ctx", "next_nodes", "inputs", "outputs", "saved", "saved_versions",
                 "tensor_hooks", "retained", "returned", "__weakref__")
    shape = dtype = SLOTS

    def __init__(self, function: type[Function], ctx: FunctionCtx, args: tuple, outputs: tuple):
        self.name = function.__name__
        self.function, self.ctx = function, ctx
        self.next_nodes = tuple(a._edge() if isinstance(a, Tensor) else None for a in args)  # before dirty rebases
        self.inputs = tuple((a.shape, a.dtype) if isinstance(a, Tensor) else None for a in args)
        self.outputs = tuple((o.shape, o.dtype) for o in outputs)
        self.saved = tuple(ctx.to_save) if ctx.to_save else NOTHING_SAVED
        self.saved_versions = _versions_of(self.saved) if ctx.to_save else ()
        if ctx.to_save and grad_mode._state.saved_hooks:  # SAVED-1: exactly the values the forward saved
            self.saved = pack_all(self.saved)
        self.tensor_hooks = self.retained = None
        self.returned: tuple = ()
        ctx.node = self
        excluded = {id(t) for t in ctx.non_differentiable}
        for slot, output in enumerate(outputs):
            if id(output) in excluded:
                output._requires_grad, output._grad_fn = False, None  # CUSTOM-7
                continue
            node = Node(self.name, (_into_slot,), (self,), output, NOTHING_SAVED, {"slot": slot, "count": len(outputs)})
            if any(output is t for t in ctx.dirty):
                output._take_update(node)  # as an in-place op would: a view's base takes it (VIEW-3)
            else:
                _give_history(output, node)

    def take_saved_tensors(self) -> tuple:
        """The saved tensors, checked as a Node checks its own (LIFE-1, INPLACE-1), or unpacked (SAVED-2)."""
        if self.saved is NOTHING_SAVED:
            return ()
        self.check_saved()
        return unpack_all(self.saved) if type(self.saved) is PackedValues else self.saved

    def check_saved(self) -> None:
        """Whether the saved values are still there and unchanged, without unpacking them."""
        if self.saved is FREED:
            raise FreedGraphError("Trying to backward through the graph a second time (or directly access saved "
                                  f"tensors after they have already been freed): {self.name}Backward saved values "
                                  "that were freed. Specify retain_graph=True the first time.")
        if type(self.saved) is not PackedValues and _versions_of(self.saved) != self.saved_versions:
            raise InplaceModifiedError("one of the variables needed for gradient computation has been modified by "
                                       f"an inplace operation: a value saved by {self.name}Backward")

    def run(self, slots: Slots, create_graph: bool, release: bool, needed: set | None) -> list:
        """The backward on the outputs' gradients (zeros or None where none arrived), checked against the inputs."""
        grads = []
        for value, (shape, dtype) in zip(slots.values, self.outputs, strict=True):
            if value is None and self.ctx.materialize_grads:
                value = np.zeros(shape, dtype=dtype)  # CUSTOM-7, CUSTOM-8
            grads.append(None if value is None else value if isinstance(value, Tensor) else result(np.asarray(value)))
        if self.saved is not NOTHING_SAVED:
            self.check_saved()  # fails before the backward runs, as a node's rules would
        returned = self.function.backward(self.ctx, *grads)
        if release and self.saved is not NOTHING_SAVED:
            self.saved = FREED
        returned = returned if isinstance(returned, tuple) else (returned,)
        self.returned = returned  # the pass hands back a user tensor returned as it is (CUSTOM-10, HIGHER-10)
        if len(returned) != len(self.inputs):
            raise CustomGradCountError(f"function {self.name}Backward returned an incorrect number of gradients "
                                       f"(expected {len(self.inputs)}, got {len(returned)})")
        gradients = []
        for index, (value, meta, edge) in enumerate(zip(returned, self.inputs, self.next_nodes, strict=True)):
            if value is None or edge is None or (needed is not None and edge not in needed):
                gradients.append(None)
                continue
            if not _sums_to(value.shape, meta[0]):
                raise CustomGradShapeError(f"Function {self.name}Backward returned an invalid gradient at index "
                                           f"{index} - got {list(value.shape)} but expected shape compatible with "
                                           f"{list(meta[0])}")
            gradients.append(value if create_graph else value.data)
        return gradients

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def _sums_to(shape: tuple, target: tuple) -> bool:
    """Whether a gradient of `shape` sums back to `target`: target broadcasts to it (CUSTOM-4, CUSTOM-5)."""
    try:
        return np.broadcast_shapes(target, shape) == tuple(shape)
    except ValueError:
        return False


def _into_slot(g, a, b, out, attrs):
    """An output's gradient into its slot of the call's gradients."""
    values = [None] * attrs["count"]
    values[attrs["slot"]] = g
    return Slots(values)


def _give_history(output: Tensor, node: Node) -> None:
    output._grad_fn, output._requires_grad = node, True
