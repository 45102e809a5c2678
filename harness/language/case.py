"""The Case: one immutable, validated description of a behaviour, whatever produced it.

YAML files (loader.py) and, later, fuzzer draws both become Cases. Steps keep their
validated arguments as read-only mappings; the interpreter gives them meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from gradspec.language.expressions import Statement


@dataclass(frozen=True)
class ErrorExpectation:
    kind: str
    match: str | None = None  # a regular expression the engine's message must match


@dataclass(frozen=True)
class TensorDecl:
    name: str
    value: np.ndarray  # float64 or int64, as written; cast to the run dtype at run time
    requires_grad: bool = False
    dtype: str | None = None  # fixed dtype, overriding the run dtype


NO_WARNING = "none"  # `warns: none`: the step must emit no warning of a kind in errors.yaml


@dataclass(frozen=True)
class Step:
    kind: str  # a key of case.schema.json's $defs/steps, or "inplace" for `x += ...`
    args: Mapping[str, Any]  # the step's mapping as written, read-only
    line: int | None = None
    statement: Statement | None = None  # for compute and inplace steps
    body: tuple[Step, ...] = ()  # for no_grad, enable_grad, set_grad_enabled, inference_mode, repeat
    raises: ErrorExpectation | None = None
    warns: tuple[str, ...] = ()

    def describe(self) -> str:
        """'step 4 (backward, line 17)'-style label used in failure messages."""
        where = f", line {self.line}" if self.line else ""
        return f"{self.kind}{where}"


@dataclass(frozen=True)
class FunctionDef:
    """A function with a derivative of the case's own: forward and backward as compute statements (`functions:`).

    Engines build their own custom-derivative function from it (PyTorch's autograd.Function,
    JAX's custom_vjp, ...); the backward's names are the saved values and `grad_<output>`.
    """

    name: str
    inputs: tuple[str, ...]
    forward: tuple[Statement, ...]
    outputs: tuple[str, ...]
    save: tuple[str, ...]
    backward: tuple[Statement, ...]
    returns: tuple[str | None, ...]
    non_differentiable: tuple[str, ...] = ()
    dirty: tuple[str, ...] = ()
    materialize_grads: bool = True
    once_differentiable: bool = False
    reads_saved: int = 1  # how many times the backward reads its saved values (each read unpacks them, SAVED-2)

    def grad_name(self, output: str) -> str:
        return f"grad_{output}"


@dataclass(frozen=True)
class Case:
    id: str  # the path under cases/, e.g. accumulation/grad-plus-backward-sums.yaml
    path: str
    title: str
    rules: tuple[str, ...]
    source: str
    derivation: str
    capabilities: frozenset[str]
    tensors: tuple[TensorDecl, ...]
    steps: tuple[Step, ...]
    dtypes: tuple[str, ...] | None = None  # None: every dtype the engine supports
    ops: frozenset[str] = frozenset()  # the vocabulary ops its compute steps call (an engine may lack some)
    functions: Mapping[str, FunctionDef] = field(default_factory=lambda: MappingProxyType({}))
    tolerance: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    advice: tuple[str, ...] = ()  # what `gradspec validate` warns about: odd, but not wrong

    @property
    def area(self) -> str:
        """The folder of the case under cases/ (its rule area)."""
        return self.id.split("/")[0] if "/" in self.id else ""


def frozen(value: Any) -> Any:
    """A read-only deep copy of plain YAML data."""
    if isinstance(value, dict):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


def as_list(value: Any) -> list:
    """A case's "one name, or a list of names" (and the like for warnings) as a list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def argument_forms(kind: str, args: Any) -> dict[str, str]:
    """How each argument of a `backward` step or a `grad` call (its mapping) is written: the case's `forms` over the
    defaults, which are the calls as they were before forms existed. For `backward`: `backward` (the outputs, a bare
    tensor for one name, so tensor.backward), `gradient` (the gradients, as the outputs) and `inputs` (a list)."""
    given = dict(args.get("forms") or {})
    if kind == "grad":
        return {key: given.get(key, "list") for key in ("outputs", "inputs", "grad_outputs")}
    outputs = given.get("backward", "list" if isinstance(args["backward"], (list, tuple)) else "tensor")
    return {"backward": outputs, "gradient": given.get("gradients", given.get("gradient", outputs)),
            "inputs": given.get("inputs", "list")}


def written(items: list, form: str) -> Any:
    """A call's argument in the form the case writes it: the one tensor itself, a list or a tuple."""
    if form == "tensor":
        (item,) = items
        return item
    return tuple(items) if form == "tuple" else list(items)


def thawed(value: Any) -> Any:
    """Frozen case data back to plain dicts and lists (for numpy, YAML or generated code)."""
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    if isinstance(value, MappingProxyType):
        return {k: thawed(v) for k, v in value.items()}
    return value
