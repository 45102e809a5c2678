"""The adapter protocol: the only code that knows an engine.

An adapter class declares what its engine has (devices, dtypes, capabilities); an
instance serves one run (one device, one dtype). The interpreter speaks only these
methods. Engine tensors are opaque to gradspec: it stores them, passes them back,
and reads values through `to_numpy`.

Optional autograd arguments arrive as None when the case leaves them out, so that the
engine's own defaults are what gets tested (for example retain_graph defaulting to
create_graph, LIFE-2). Pass None on as "not given".
"""

from __future__ import annotations

import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.absent import Unsupported

Tensor = Any  # an engine's tensor
Handle = Any  # an engine's hook handle
Hook = Callable[[Tensor], "Tensor | None"]


class CrashAvoided(RuntimeError):
    """Raised by an adapter that refuses a call its engine is known to crash the process on (say which recorded bug):
    no verdict on the engine; the sequence fuzzer stops comparing a sequence there instead of losing the process."""


class Adapter(ABC):
    """Subclass this to plug an engine in; register it under the `gradspec.adapters` entry point group."""

    name: str = ""
    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float64", "float32")
    capabilities: frozenset[str] = frozenset()
    # Vocabulary ops (spec/ops.yaml) the engine does not have: cases calling them are not applicable. A set, or a
    # mapping of each op to the reason, which `gradspec engines` and not-applicable outcomes show.
    lacks_ops: frozenset[str] | Mapping[str, str] = frozenset()
    # Ops the engine differentiates once but whose derivative it cannot differentiate again, each with the reason: a
    # known difference from HIGHER-1 (its cases stay in the expectation file), so fuzz properties that differentiate
    # twice do not draw them, and look for what nobody recorded.
    once_differentiable_ops: Mapping[str, str] = {}
    # Known differences of gradspec.fuzz.differences.KNOWN that the sequence fuzzer tolerates on this engine, each
    # mapped to the case whose line in the engine's expectation file records it (a test checks the line exists).
    fuzz_tolerates: Mapping[str, str] = {}
    # What `classify` and `classify_warning` read: (exception type, message regex, kind) rows, first match wins.
    errors: Sequence[tuple[type, str, str]] = ()
    warnings: Sequence[tuple[type, str, str]] = ()

    def __init__(self, device: str, dtype: str):
        self.device, self.dtype = device, dtype

    # -- what the engine is and whether it can run here --------------------------

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the engine cannot run at all here (not installed), or None."""
        return None

    @classmethod
    def device_unavailable_reason(cls, device: str) -> str | None:
        """Why `device` cannot be used here (no GPU), or None."""
        return None

    @classmethod
    def version(cls) -> str:
        return "unknown"

    @classmethod
    def why_not_runnable(cls, device: str, dtype: str) -> str | None:
        """Why this adapter cannot run on `device` in `dtype` here, or None: what it declares, then what exists."""
        if device not in cls.devices:
            return f"the {cls.name} adapter has no device {device!r}"
        if dtype not in cls.dtypes:
            return f"the {cls.name} adapter does not support {dtype}"
        return cls.unavailable_reason() or cls.device_unavailable_reason(device)

    @classmethod
    def declared_lacking_ops(cls) -> dict[str, str]:
        """`lacks_ops` with the reason for each: a mapping's own, or a general one for a set's entries."""
        declared = cls.lacks_ops
        return {op: declared[op] if isinstance(declared, Mapping) else "declared absent by its adapter (lacks_ops)"
                for op in sorted(declared)}

    def op_table(self) -> Mapping[str, Any] | None:
        """The op table `apply` reads, if it reads one (`gradspec.numpy_style.numpy_style` builds them): the ops it
        does not map, and its `Lacking` entries, are lacking ops. None: `apply` maps every op but `lacks_ops`."""
        return None

    def lacking_ops(self) -> dict[str, str]:
        """Every vocabulary op this engine cannot apply, with the reason: what `lacks_ops` declares, then the gaps of
        `op_table()`. The one answer that the interpreter, the fuzzer and `gradspec engines` use."""
        reasons = self.declared_lacking_ops()
        table = self.op_table()
        for op, reason in ({} if table is None else table_gaps(table)).items():
            reasons.setdefault(op, reason)
        return dict(sorted(reasons.items()))

    def missing_ops(self) -> frozenset[str]:
        """The names of `lacking_ops()`."""
        return frozenset(self.lacking_ops())

    # -- tensors and operations --------------------------------------------------

    @abstractmethod
    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Tensor:
        """A new leaf on this run's device with the given dtype name."""

    @abstractmethod
    def like(self, value: np.ndarray, reference: Tensor) -> Tensor:
        """A constant with the dtype and device of `reference` (for output gradients, hook results)."""

    @abstractmethod
    def to_numpy(self, tensor: Tensor) -> np.ndarray:
        """A snapshot of the values in host memory, never a view: the engine may later modify the tensor in place."""

    @abstractmethod
    def dtype_name(self, tensor: Tensor) -> str:
        """'float64', 'float32' or 'int64'."""

    @abstractmethod
    def apply(self, op: str, args: Sequence[Tensor | float], kwargs: dict[str, Any]) -> Tensor:
        """Apply a vocabulary op (spec/ops.yaml); numbers arrive as Python floats."""

    @abstractmethod
    def apply_inplace(self, op: str, target: Tensor, operand: Tensor | float) -> Tensor:
        """target op= operand for op in add, sub, mul, div; return the tensor now bound to the name."""

    def setitem(self, target: Tensor, index: tuple, value: Tensor | float) -> None:
        """target[index] = value, an in-place update (capability setitem); index holds ints, slices, None,
        Ellipsis and lists of ints."""
        raise NotImplementedError(f"the {self.name} adapter declares no setitem")

    def detach_(self, tensor: Tensor) -> None:
        """tensor.detach_() (capability detach_inplace)."""
        raise NotImplementedError(f"the {self.name} adapter declares no detach_inplace")

    def custom_function(self, program: Any) -> Callable[..., Any]:
        """The engine's own custom-derivative function (autograd.Function, custom_vjp, ...) made from a case's
        `functions:` entry (capability custom_function): called with input tensors, it returns the output, or a
        tuple for several. `program` (gradspec.running.custom.FunctionProgram) runs the case's forward and backward
        steps with this adapter's ops: `program.forward(*inputs)` gives (outputs, values to save),
        `program.backward(saved, grads)` what the backward returns; `program.definition` holds the options."""
        raise NotImplementedError(f"the {self.name} adapter declares no custom_function")

    def grad_enabled(self) -> bool | None:
        """Whether grad mode is on now, for the log of custom backward calls; None for an engine without one."""
        return None

    # -- autograd ----------------------------------------------------------------

    @abstractmethod
    def backward(self, output: Tensor, gradient: Tensor | None, retain_graph: bool | None,
                 create_graph: bool | None, inputs: Sequence[Tensor] | None) -> None:
        """output.backward(...); with capability several_roots, `output` may be a list, and `gradient` then a list
        of one gradient (or None) per output: autograd.backward(outputs, gradients, ...). `inputs` is a list; only
        with capability argument_forms may `output` also be a tuple (or a list of one), `gradient` a bare tensor or a
        tuple there, and `inputs` a bare tensor or a tuple: pass each on as it is."""

    @abstractmethod
    def grad(self, outputs: Sequence[Tensor], inputs: Sequence[Tensor], grad_outputs: Sequence[Tensor] | None,
             retain_graph: bool | None, create_graph: bool | None, allow_unused: bool | None,
             materialize_grads: bool | None) -> Sequence[Tensor | None]:
        """autograd.grad(...): one result per input, None where the engine gives None. Each of outputs, inputs and
        grad_outputs is a list; only with capability argument_forms may it also be a bare tensor (standing for one)
        or a tuple: pass each on as it is."""

    @abstractmethod
    def read_grad(self, tensor: Tensor) -> Tensor | None:
        """tensor.grad."""

    @abstractmethod
    def set_grad(self, tensor: Tensor, value: Tensor | None) -> None:
        """tensor.grad = value."""

    def clear_grad(self, tensor: Tensor) -> None:
        """tensor.grad = None, for the `derivative` step on an engine without grad (its backward may replace .grad,
        not add to it). By default set_grad(tensor, None), where the adapter declares grad_assignment; override it
        where the engine can clear .grad but not assign it (mygrad's null_grad)."""
        if "grad_assignment" not in self.capabilities:
            raise NotImplementedError(f"the {self.name} adapter declares neither grad_assignment nor clear_grad")
        self.set_grad(tensor, None)

    @abstractmethod
    def zero_grad(self, tensor: Tensor) -> None:
        """tensor.grad.zero_()."""

    @abstractmethod
    def retain_grad(self, tensor: Tensor) -> None:
        """tensor.retain_grad()."""

    @abstractmethod
    def set_requires_grad(self, tensor: Tensor, flag: bool | None) -> None:
        """tensor.requires_grad_(flag), or tensor.requires_grad_() when flag is None."""

    @abstractmethod
    def requires_grad(self, tensor: Tensor) -> bool: ...

    @abstractmethod
    def is_leaf(self, tensor: Tensor) -> bool: ...

    @abstractmethod
    def has_grad_fn(self, tensor: Tensor) -> bool: ...

    @abstractmethod
    def register_hook(self, tensor: Tensor, hook: Hook) -> Handle:
        """tensor.register_hook(hook); the hook gets a gradient and returns a tensor or None."""

    @abstractmethod
    def register_post_accumulate_grad_hook(self, tensor: Tensor, hook: Callable[[Tensor], None]) -> Handle:
        """tensor.register_post_accumulate_grad_hook(hook); the hook gets the tensor."""

    def register_node_prehook(self, tensor: Tensor, hook: Callable[[tuple], tuple | None]) -> Handle:
        """tensor.grad_fn.register_prehook(hook): hook(grad_outputs) before the node (capability node_hooks)."""
        raise NotImplementedError(f"the {self.name} adapter declares no node_hooks")

    def register_node_hook(self, tensor: Tensor, hook: Callable[[tuple, tuple], tuple | None]) -> Handle:
        """tensor.grad_fn.register_hook(hook): hook(grad_inputs, grad_outputs) after the node (node_hooks)."""
        raise NotImplementedError(f"the {self.name} adapter declares no node_hooks")

    def saved_tensor_hooks(self, pack: Callable[[Tensor], Any], unpack: Callable[[Any], Tensor]) -> AbstractContextManager:
        """A block in which values saved for backward go through pack, and come back through unpack
        (PyTorch's torch.autograd.graph.saved_tensors_hooks; capability saved_tensor_hooks)."""
        raise NotImplementedError(f"the {self.name} adapter declares no saved_tensor_hooks")

    @abstractmethod
    def remove_hook(self, handle: Handle) -> None:
        """handle.remove()."""

    # Each grad-mode block of a case calls the engine's API of the same name, never a neighbour
    # (no_grad through torch.no_grad, not set_grad_enabled(False)): MODE-3 says they agree.

    @abstractmethod
    def no_grad(self) -> AbstractContextManager:
        """The engine's no_grad() context manager."""

    @abstractmethod
    def enable_grad(self) -> AbstractContextManager:
        """The engine's enable_grad() context manager."""

    @abstractmethod
    def set_grad_enabled(self, mode: bool) -> AbstractContextManager:
        """The engine's set_grad_enabled(mode), used as a context manager."""

    def inference_mode(self) -> AbstractContextManager:
        """The engine's inference_mode() context manager (PyTorch's torch.inference_mode; capability inference_mode)."""
        raise NotImplementedError(f"the {self.name} adapter declares no inference_mode")

    def is_inference(self, tensor: Tensor) -> bool:
        """tensor.is_inference(): whether it was made under inference_mode (capability inference_mode)."""
        raise NotImplementedError(f"the {self.name} adapter declares no inference_mode")

    # -- errors ------------------------------------------------------------------

    def classify(self, error: BaseException) -> str | None:
        """The error kind (spec/errors.yaml) of an engine exception, or None if unknown (from `errors`)."""
        return match_kind(self.errors, error)

    def classify_warning(self, warning: Warning) -> str | None:
        """The warning kind (spec/errors.yaml) of an engine warning, or None if unknown (from `warnings`)."""
        return match_kind(self.warnings, warning)


# The vocabulary ops that Python's operators spell, for every engine whose arrays overload them.
OPERATOR_OPS: dict[str, Callable[..., Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "pow": operator.pow, "matmul": operator.matmul, "neg": operator.neg,
}


class Lacking:
    """An op table's entry for an op the engine cannot apply, and why; calling it raises `Unsupported` (never
    reached: a case using the op is not applicable)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise Unsupported(self.reason)

    def __repr__(self) -> str:
        return f"Lacking({self.reason!r})"


def table_gaps(table: Mapping[str, Any]) -> dict[str, str]:
    """The vocabulary ops an op table cannot apply, with the reason: a `Lacking` entry's, or that it maps nothing."""
    gaps = {}
    for op in contracts.ops():
        entry = table.get(op)
        if isinstance(entry, Lacking):
            gaps[op] = entry.reason
        elif entry is None:
            gaps[op] = "its op table does not map it"
    return gaps


def match_kind(table: Sequence[tuple[type, str, str]], error: BaseException) -> str | None:
    """The kind in the first (exception type, message regex, kind) row that `error` matches, or None."""
    for kind_of_error, pattern, kind in table:
        if isinstance(error, kind_of_error) and re.search(pattern, str(error)):
            return kind
    return None
