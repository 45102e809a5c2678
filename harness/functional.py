"""The recording layer that lets functional engines (JAX, torch.func, HIPS autograd, TensorFlow) run cases.

A case is written against PyTorch's model: tensors that remember how they were made,
and `grad(outputs, inputs)` called afterwards. A functional engine has no such tensors;
it differentiates *functions*. This layer bridges the two once, for every such engine:

- every value a case computes is a `Recorded`: the engine's array, computed eagerly,
  plus the op and operands that made it, so the forward program is known;
- `grad(outputs, inputs, grad_outputs)` turns the program into a function of one zero
  perturbation per input (added where that input is computed, so a non-leaf input gets
  its partial gradient and a leaf its total one, as in PyTorch) and asks the engine for
  that function's vector-Jacobian product at zero;
- with `create_graph` a gradient is recorded too, as "the VJP of that program", so
  differentiating it again calls the engine's VJP inside a function that the engine
  differentiates: higher order by composition, the engines' own way. Without
  `create_graph` a gradient is a constant.

What the engine lacks stays absent: an adapter on this layer has no `.grad`, hooks,
grad modes, in-place ops or graph lifetime, and declares none of those capabilities;
nor `argument_forms`: `grad` here receives lists, since the engine has no `grad` whose
arguments could be written as a bare tensor or a tuple (the layer would only emulate it).
The one convention the layer adds is the implicit output gradient: where a case gives
none, an output with exactly one element gets a cotangent of ones (what `jax.grad` and
friends do for a scalar); any other output raises `ImplicitGradientError`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.absent import Absent
from gradspec.adapter import Adapter
from gradspec.numpy_style import axis_reduction, numpy_style_ops  # noqa: F401 - their old home, kept importable
from gradspec.running.custom import FunctionProgram

Array = Any  # an engine's array


class Recorded:
    """A value of the case and how it was made: `op` over `args`, or nothing for a constant."""

    __slots__ = ("value", "op", "args", "kwargs")

    def __init__(self, value: Array, op: str | None = None, args: tuple = (), kwargs: Mapping[str, Any] | None = None):
        self.value, self.op, self.args, self.kwargs = value, op, args, dict(kwargs or {})

    def __repr__(self) -> str:
        return f"Recorded({self.op or 'constant'})"


@dataclass(frozen=True, eq=False)
class Gradient:
    """One `grad` call with create_graph: its result `index` is recorded as op "grad" with this as operand."""

    outputs: tuple[Recorded, ...]
    inputs: tuple[Recorded, ...]  # without repeats
    cotangents: tuple[Recorded, ...]
    zeros: tuple[Array, ...]  # the point of each input's perturbation, made once, outside any transform
    materialize: bool


class ImplicitGradientError(RuntimeError):
    """An implicit output gradient was asked of an output with more than one element (VJP-1)."""


class FunctionalAdapter(Absent, Adapter):
    """Subclass this for an engine that differentiates functions; give it ops, arrays and one VJP."""

    ops: Mapping[str, Callable[..., Array]] = {}  # every op of spec/ops.yaml but detach, on engine arrays

    # -- what a subclass provides ------------------------------------------------

    @abstractmethod
    def array(self, value: np.ndarray, dtype: str) -> Array:
        """An engine array of dtype `dtype` ('float64', 'float32', 'int64') on this run's device."""

    @abstractmethod
    def numpy(self, array: Array) -> np.ndarray:
        """The values of an engine array in host memory."""

    @abstractmethod
    def stop_gradient(self, array: Array) -> Array:
        """The engine's own way to cut a value from differentiation (what `detach` means)."""

    @abstractmethod
    def vjp(self, function: Callable[..., list[Array]], primals: list[Array], cotangents: list[Array],
            materialize: bool) -> list[Array | None]:
        """The engine's vector-Jacobian product of `function` at `primals`: one result per primal.

        `materialize` is grad's materialize_grads, for engines that tell unused inputs apart (None there).
        """

    def custom_vjp(self, program) -> Callable[..., Array]:
        """The engine's custom-derivative function on engine arrays (capability custom_function): called with
        arrays, it gives the output (a tuple for several); `program` runs on arrays (custom_function below)."""
        raise NotImplementedError(f"the {self.name} adapter declares no custom_function")

    def add(self, a: Array, b: Array) -> Array:
        return self.ops["add"](a, b)

    def op_table(self) -> Mapping[str, Callable[..., Array]]:
        """`ops` and detach (`stop_gradient`): an adapter written for an older vocabulary meets the ops added since
        as not applicable, not as errors."""
        return {"detach": self.stop_gradient, **self.ops}

    # -- tensors -----------------------------------------------------------------

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Recorded:
        return Recorded(self.array(value, dtype))  # which leaves vary is decided by each grad call

    def like(self, value: np.ndarray, reference: Recorded) -> Recorded:
        return Recorded(self.array(value, self.dtype_name(reference)))

    def to_numpy(self, tensor: Recorded) -> np.ndarray:
        return np.array(self.numpy(tensor.value), copy=True)

    def dtype_name(self, tensor: Recorded) -> str:
        return self.numpy(tensor.value).dtype.name

    def apply(self, op: str, args: Sequence[Recorded | float], kwargs: dict[str, Any]) -> Recorded:
        values = [a.value if isinstance(a, Recorded) else a for a in args]
        if op == "detach":
            return Recorded(self.stop_gradient(values[0]))
        recorded = Recorded(self.ops[op](*values, **kwargs), op, tuple(args), kwargs)
        if contracts.ops()[op].get("outputs") == "many":  # unbind, split, chunk: one Recorded per output
            return [Recorded(value, "_item", (recorded, index)) for index, value in enumerate(recorded.value)]
        return recorded

    def custom_function(self, program) -> Callable[..., Recorded]:
        """A case function as one recorded op, "custom:<name>", whose value is the engine's custom_vjp function:
        replays differentiate it as they do every op, through the engine's own custom-derivative rule."""
        on_arrays = FunctionProgram(program.definition, lambda op, args, kwargs: self.ops[op](*args, **kwargs), None,
                                    self._logged_value, lambda: None, program.log)
        native, key = self.custom_vjp(on_arrays), f"custom:{program.name}"
        self.ops = {**self.ops, key: native}
        several = len(program.definition.outputs) > 1

        def call(*args: Recorded) -> Recorded | list[Recorded]:
            recorded = Recorded(native(*(a.value for a in args)), key, tuple(args))
            if several:
                return [Recorded(value, "_item", (recorded, index)) for index, value in enumerate(recorded.value)]
            return recorded
        return call

    def _logged_value(self, array: Array) -> np.ndarray | None:
        """A gradient a custom backward received, for the log: None where the engine passes a traced value."""
        try:
            return np.array(self.numpy(array), copy=True)
        except Exception:  # noqa: BLE001 - a tracer (JAX) or symbolic tensor has no values to log
            return None

    # -- autograd ----------------------------------------------------------------

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
        unique = tuple(dict.fromkeys(inputs))  # an input listed twice gets the full gradient at each place
        cotangents = list(grad_outputs) if grad_outputs is not None else [self._implicit(o) for o in outputs]
        zeros = tuple(self.array(np.zeros_like(self.numpy(x.value)), self.dtype_name(x)) for x in unique)
        gradient = Gradient(tuple(outputs), unique, tuple(cotangents), zeros, bool(materialize_grads))
        results = self._differentiate(gradient, {})
        recorded = [None if value is None else
                    Recorded(value, "grad", (gradient, index)) if create_graph else Recorded(value)
                    for index, value in enumerate(results)]
        by_input = dict(zip(unique, recorded, strict=True))
        return [by_input[tensor] for tensor in inputs]

    def _implicit(self, output: Recorded) -> Recorded:
        values = self.numpy(output.value)
        if values.size != 1:
            raise ImplicitGradientError(f"an implicit output gradient needs an output of one element, not shape "
                                        f"{list(values.shape)}")
        return Recorded(self.array(np.ones_like(values, dtype=np.float64), values.dtype.name))

    def _differentiate(self, gradient: Gradient, deltas: dict[int, list[Array]]) -> list[Array | None]:
        """The VJP of the outputs as functions of a zero perturbation of each input, under outer `deltas`."""
        memo: dict[int, Array] = {}
        cotangents = [self._evaluate(c, deltas, memo) for c in gradient.cotangents]

        def program(*perturbations: Array) -> list[Array]:
            inner = dict(deltas)
            for tensor, delta in zip(gradient.inputs, perturbations, strict=True):
                inner[id(tensor)] = [*inner.get(id(tensor), ()), delta]  # nested grads perturb the same input
            fresh: dict[int, Array] = {}
            return [self._evaluate(o, inner, fresh) for o in gradient.outputs]

        return list(self.vjp(program, list(gradient.zeros), cotangents, gradient.materialize))

    def _evaluate(self, node: Recorded, deltas: dict[int, list[Array]], memo: dict[int, Array]) -> Array:
        """Replay the program that made `node`, adding the perturbations in `deltas` where they apply."""
        key = id(node)
        if key in memo:
            return memo[key]
        if not deltas or node.op is None:
            value = node.value  # nothing varies, or a constant: the recorded value is the answer
        elif node.op == "grad":
            gradient, index = node.args
            value = self._differentiate(gradient, deltas)[index]
        elif node.op == "_item":
            several, index = node.args
            value = self._evaluate(several, deltas, memo)[index]
        else:
            args = [self._evaluate(a, deltas, memo) if isinstance(a, Recorded) else a for a in node.args]
            value = self.ops[node.op](*args, **node.kwargs)
        for delta in deltas.get(key, ()):
            value = self.add(value, delta)
        memo[key] = value
        return value

    def classify(self, error: BaseException) -> str | None:
        if isinstance(error, ImplicitGradientError):
            return "nonscalar_implicit"
        return super().classify(error)
