"""The step kinds of the case language, described once: the loader, the interpreter and the fuzzer all read this.

A kind's name, options and nesting come from the case schema (spec/case.schema.json, `$defs.steps`); what a
step needs of an engine comes from spec/capabilities.yaml (`implied_by`), keyed by `step_keys`: the kind itself
(`backward`), each option given a true value (`backward.create_graph`), `several_roots` for a backward of several
outputs, `op:NAME` for each op a compute step calls. The fuzzer draws from this table, so a new kind or option is
either drawn or listed with the reason it is not (tests/test_step_kinds.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from gradspec import contracts

# Keys every step may carry that are not options of its kind: what it expects, and hook labels.
COMMON = frozenset({"raises", "warns", "as"})


@dataclass(frozen=True)
class StepKind:
    """One kind of step: its options (the schema's optional keys besides COMMON and nested steps; for grad and
    derivative, those under their own key), where its nested steps are (`steps`, its own key, or None), and the
    schema's description."""

    name: str
    options: tuple[str, ...]
    body: str | None  # "steps" (set_grad_enabled, repeat, saved_tensor_hooks), the kind's key (no_grad...), None
    description: str

    @property
    def block(self) -> bool:
        """Whether the step runs nested steps (threads run nested bodies, one per thread)."""
        return self.body is not None


@cache
def step_kinds() -> dict[str, StepKind]:
    """Every step kind of the case schema, in the schema's order."""
    kinds = {}
    for name, schema in contracts.case_schema()["$defs"]["steps"].items():
        properties = schema.get("properties", {})
        own = properties.get(name, {})
        holder = own if name in ("grad", "derivative") else schema  # grad's options nest under its own key
        options = tuple(sorted(set(holder.get("properties", {})) - set(holder.get("required", ())) - {"steps"}
                               - COMMON))
        body = "steps" if "steps" in properties else name if _holds_steps(own) else None
        kinds[name] = StepKind(name, options, body, schema.get("description", ""))
    return kinds


def _holds_steps(schema: dict) -> bool:
    """Whether a kind's own key holds a list of steps (no_grad, enable_grad, inference_mode), not a name or a list
    of bodies (threads)."""
    items = schema.get("items", {})
    return schema.get("type") == "array" and items.get("$ref") == "#/$defs/step"


def grad_mode_blocks() -> frozenset[str]:
    """The blocks that run their steps in a grad mode (the capability grad_mode or inference_mode)."""
    return frozenset(name for name in step_kinds() if {"grad_mode", "inference_mode"} & needs([name]))


def block_kinds() -> tuple[str, ...]:
    """Blocks whose steps run in this thread (threads run theirs in threads of their own)."""
    return tuple(name for name, kind in step_kinds().items() if kind.block)


def step_keys(steps: Iterable, functions: frozenset[str] = frozenset()) -> Iterator[str]:
    """What each raw step (a compute string or a mapping, nested steps included) uses: its kind, `kind.option` for
    each option given a value other than false or None, `several_roots` for a backward of several outputs, and the
    error it expects as `raises:KIND`, `custom_function` for a call of one of the case's `functions`. The keys that
    spec/capabilities.yaml's implied_by lists."""
    from gradspec.language.expressions import parse_statement
    kinds = step_kinds()
    for raw in steps:
        if isinstance(raw, str):
            raw = {"compute": raw}
        kind = next((key for key in raw if key in kinds), None)
        if kind is None:
            continue
        yield kind
        if kind == "compute":
            statement = parse_statement(raw["compute"], functions)
            if statement.inplace_op == "setitem":
                yield "setitem"
            elif statement.inplace_op is not None:
                yield "inplace"
            yield from (f"op:{op}" for op in _ops(statement.expr))
        options = raw.get(kind) if kind in ("grad", "derivative") else raw
        if isinstance(options, dict):
            yield from (f"{kind}.{key}" for key, value in options.items()
                        if key in kinds[kind].options and value not in (False, None))
        if kind == "backward" and (isinstance(raw["backward"], list)
                                   or (raw.get("forms") or {}).get("backward") in ("list", "tuple")):
            yield "several_roots"
        if raw.get("raises") is not None:
            yield f"raises:{raw['raises'] if isinstance(raw['raises'], str) else raw['raises']['kind']}"
        if kind == "threads":
            for body in raw["threads"]:
                yield from step_keys(body, functions)
        elif kinds[kind].block:
            yield from step_keys(raw[kinds[kind].body], functions)


def _ops(expr) -> Iterator[str]:
    """Every op an expression calls (a case function's call as `custom_function`, so "op:custom_function" is no
    capability's)."""
    op = getattr(expr, "op", None)
    if op is not None:
        yield op
    for arg in getattr(expr, "args", ()):
        yield from _ops(arg)


def needs(keys: Iterable[str]) -> frozenset[str]:
    """The capabilities that steps using `keys` need (spec/capabilities.yaml's implied_by)."""
    keys = set(keys)
    return frozenset(name for name, entry in contracts.capabilities().items() if keys & set(entry.get("implied_by", [])))
