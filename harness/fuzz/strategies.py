"""Hypothesis strategies that draw Cases: random graphs over the op vocabulary, in the case language.

A draw is a plain case dict (what a YAML file holds) built by `build_case`, so any draw
can be written out as a case file and replayed by the ordinary loader. Values are
tracked while drawing, with the reference engine's numpy forwards, so that each operand
honours its op's `fuzz:` constraint in spec/ops.yaml (inside the domain, away from
kinks) and shapes stay broadcast-compatible. Graphs stay short so shrinking is quick.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.language.case import Case
from gradspec.language.expressions import parse_statement
from gradspec.language.forwards import numpy_forward
from gradspec.language.loader import build_case
from gradspec.reference_engine.ops import OPS as NUMPY_OPS
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MARGIN = 0.25  # how far from a domain edge or a kink an operand must stay
LIMIT = 1e3  # intermediate values larger than this are not used (overflow guard)
CONSTRAINTS = {
    "positive": lambda v: bool(np.all(v > MARGIN)),
    "nonzero": lambda v: bool(np.all(np.abs(v) > MARGIN)),
    "away_from_kink": lambda v: bool(np.all(np.abs(v) > MARGIN)),
    "bounded": lambda v: bool(np.all(np.abs(v) < 3.0)),
    "distinct": lambda v: v.size == 1 or float(np.min(np.diff(np.sort(v, axis=None)))) > MARGIN,
    "unit": lambda v: bool(np.all(np.abs(v) < 0.75)),
    "above_one": lambda v: bool(np.all(v > 1 + MARGIN)),
    "distinct_magnitudes": lambda v: bool(np.all(np.abs(v) > MARGIN)) and (
        v.size == 1 or float(np.min(np.diff(np.sort(np.abs(v), axis=None)))) > MARGIN),
    "untied": lambda v: v.size == 1 or float(np.sort(v, axis=None)[-1] - np.sort(v, axis=None)[-2]) > MARGIN,
}
# Full broadcast shapes, and the leaf shapes that broadcast to each.
SHAPES = {(): [()], (3,): [(3,), (1,), ()], (2, 3): [(2, 3), (3,), (2, 1), (1, 3), ()]}


@cache
def fuzzable_ops() -> dict[str, dict]:
    """Ops whose `fuzz` entry is not false, with their operand constraints."""
    table = {}
    for name, entry in contracts.ops().items():
        constraints = entry.get("fuzz", {})
        if constraints is False:
            continue
        unknown = set(constraints.values()) - set(CONSTRAINTS) - {"apart"}
        if unknown:
            raise ValueError(f"spec/ops.yaml: op {name!r} has unknown fuzz constraints {sorted(unknown)}")
        table[name] = {"arity": entry["arity"], "constraints": constraints, "attributes": entry.get("attributes", {})}
    return table


@dataclass(frozen=True)
class Draw:
    """A drawn graph: the case dict (forward steps only), its leaves, its output and an output gradient."""

    data: dict  # the case as YAML would hold it
    leaves: tuple[str, ...]
    output: str
    grad_output: tuple | None  # None: the output has one element, so the gradient may be implicit

    @property
    def case(self) -> Case:
        """The draw as a Case; tests/test_fuzz.py checks that draws pass the schema, so it is not rerun here."""
        return build_case(self.data, "<fuzz draw>", "fuzz/draw.yaml", schema=False)


def _to_values(k: np.ndarray) -> np.ndarray:
    """Integers in [-1700, 1700] to values in [-2, -0.3] or [0.3, 2] in steps of 0.001 (shrinking goes to 0.3)."""
    return np.where(k >= 0, k + 300, k - 300) / 1000


@cache
def leaf_values(shape: tuple) -> st.SearchStrategy:
    """Leaf values away from 0, with three decimals so that YAML stays readable."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-1700, 1700)).map(_to_values)


@cache
def _index(count: int) -> st.SearchStrategy:
    """Strategies are cached: hypothesis derives each one's properties once, not on every draw."""
    return st.integers(0, count - 1)


@cache
def _choice(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


@st.composite
def graphs(draw, max_leaves: int = 3, max_ops: int = 6, indexing: bool = False, exclude: frozenset = frozenset()) -> Draw:
    """A random DAG with shared subexpressions, several broadcasting leaves and a scalar or vector output.

    With `indexing`, a step may instead index, view or expand a value (`v[1:3]`, `v[[0, 0, 1]]`,
    `transpose(v)`, `expand(v, ...)`): their gradients scatter back, repeated reads adding up.
    Ops in `exclude` (those the engine under test lacks) are never drawn.
    """
    ops = {name: entry for name, entry in fuzzable_ops().items() if name not in exclude}
    families = _families(tuple(sorted(ops)))
    full = draw(_choice(tuple(sorted(SHAPES, key=len))), label="broadcast shape")
    nodes: list[tuple[str, np.ndarray]] = []
    tensors = {}
    for index in range(draw(st.integers(1, max_leaves), label="leaves")):
        shape = draw(_choice(tuple(SHAPES[full])), label=f"shape of x{index}")
        value = draw(leaf_values(shape), label=f"value of x{index}")
        tensors[f"x{index}"] = {"value": value.tolist(), "requires_grad": True}
        nodes.append((f"x{index}", value))
    steps = []
    for index in range(draw(st.integers(1, max_ops), label="ops")):
        if indexing and draw(st.booleans(), label=f"indexing step {index}"):
            source = draw(_index(len(nodes)), label=f"indexed operand of op {index}")
            made = _indexing_step(draw, *nodes[source], index, exclude)
            if made is not None:
                steps.append(made[0])
                nodes.append((f"v{index}", made[1]))
            continue
        family = draw(_choice(tuple(sorted(families))), label=f"family of op {index}")
        name = draw(_choice(families[family]), label=f"op {index}")
        entry = ops[name]
        picks = [draw(_index(len(nodes)), label=f"operand {slot} of op {index}") for slot in "ab"[:entry["arity"]]]
        attrs = _attributes(draw, entry, nodes[picks[0]][1], index)
        operands = [nodes[p] for p in picks]
        if name == "pow" and draw(st.booleans(), label=f"integer exponent of op {index}"):
            operands[1] = _integer_exponent(draw, index)  # any base then, a nonzero one for a negative exponent
            entry = {**entry, "constraints": {"a": "nonzero"} if operands[1][1] < 0 else {}}
        value = None if attrs is None else _apply(name, entry, [operand[1] for operand in operands], attrs)
        if value is None:
            continue  # outside the op's domain or too large: the op is not used
        target = f"v{index}"
        arguments = [operand[0] for operand in operands] + [f"{key}={val!r}" for key, val in attrs.items()]
        steps.append(f"{target} = {name}({', '.join(arguments)})")
        nodes.append((target, value))
    output, value = nodes[-1]
    grad_output = None
    if value.size != 1:
        grad_output = draw(leaf_values(value.shape), label="grad_output").tolist()
    data = {
        "schema_version": 1,
        "title": "a random graph drawn by gradspec's fuzzer",
        "rules": ["VJP-2"],
        "source": "hypothesis draw (harness/fuzz/strategies.py)",
        "derivation": "to be filled in by whoever writes the case out",
        "capabilities": ["grad", "view_ops"] if indexing else ["grad"],
        "dtypes": ["float64"],
        "tensors": tensors,
        # with no op drawn, the output is a copy of a leaf: clone, or a product with one where clone is excluded
        "steps": steps or [f"v0 = clone({output})" if "clone" not in exclude else f"v0 = {output} * 1"],
    }
    if not steps:
        output = "v0"
    return Draw(data, tuple(tensors), output, None if grad_output is None else tuple(grad_output))


@cache
def _families(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The ops by family (reductions, two operands, one operand), drawn family first: a vocabulary of dozens of
    elementwise functions would otherwise leave the few reductions, and their axes, rarely drawn."""
    table = fuzzable_ops()
    families: dict[str, list[str]] = {"reduction": [], "binary": [], "unary": []}
    for name in names:
        entry = table[name]
        family = "reduction" if "dim" in entry["attributes"] else "binary" if entry["arity"] == 2 else "unary"
        families[family].append(name)
    return {family: tuple(members) for family, members in families.items() if members}


# The op each kind of indexing step calls, so that an op the engine lacks is never drawn.
INDEXING_OPS = {"slice": "getitem", "list": "getitem", "select": "select", "unsqueeze": "unsqueeze", "expand": "expand",
                "transpose": "transpose", "diagonal": "diagonal"}


def _indexing_step(draw, name: str, value: np.ndarray, index: int,
                   exclude: frozenset = frozenset()) -> tuple[str, np.ndarray] | None:
    """`v<index> = <a view or an indexing of name>`, and its value; None where the value has no dimension to index,
    or every kind of step calls an op in `exclude`."""
    if value.ndim == 0:
        return None
    size = value.shape[0]
    kinds = ["slice", "list", "select", "unsqueeze", "expand"] + (["transpose", "diagonal"] if value.ndim == 2 else [])
    kinds = [kind for kind in kinds if INDEXING_OPS[kind] not in exclude]
    if not kinds:
        return None
    kind = draw(_choice(tuple(kinds)), label=f"indexing of op {index}")
    if kind == "slice":
        start = draw(st.integers(0, size - 1), label=f"start of op {index}")
        stop = draw(st.integers(start + 1, size), label=f"stop of op {index}")
        text = f"{name}[{start}:{stop}]"
    elif kind == "list":  # repeated indices are likely: each element's gradient is the sum of its reads
        picks = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4), label=f"indices of op {index}")
        text = f"{name}[{picks}]"
    elif kind == "select":
        text = f"select({name}, dim=0, index={draw(st.integers(0, size - 1), label=f'index of op {index}')})"
    elif kind == "unsqueeze":
        text = f"unsqueeze({name}, dim={draw(st.integers(0, value.ndim), label=f'dim of op {index}')})"
    elif kind == "expand":  # a new leading dimension of 2: every element is read twice
        text = f"expand({name}, shape={[2, *value.shape]})"
    else:
        text = f"{kind}({name})"
    step = f"v{index} = {text}"
    expr = parse_statement(step).expr
    return step, np.asarray(numpy_forward(expr.op, [value], dict(expr.kwargs)), dtype=np.float64)


def _integer_exponent(draw, index: int) -> tuple[str, np.ndarray]:
    """A constant integer exponent for pow, written as a number in the step: x ** 2, x ** -1."""
    exponent = draw(_choice((2, 3, -1, -2)), label=f"exponent of op {index}")
    return str(exponent), np.asarray(float(exponent))


def _attributes(draw, entry: dict, operand: np.ndarray, index: int) -> dict[str, Any] | None:
    """A dim for ops that take one (None, the whole tensor, only where the op allows it) and, with a dim, keepdim;
    a value for each choice attribute (norm's p, gelu's approximate); None where the op needs a dim and the operand
    has none."""
    attrs = {}
    for key, spec in entry["attributes"].items():
        if spec["type"] == "choice":
            attrs[key] = draw(_choice(tuple(spec["choices"])), label=f"{key} of op {index}")
    spec = entry["attributes"].get("dim")
    if spec is not None:
        if not operand.ndim:
            return None if spec.get("required") else attrs
        dims = tuple(range(operand.ndim)) if spec.get("required") else (None, *range(operand.ndim))
        dim = draw(_choice(dims), label=f"dim of op {index}")
        if dim is not None:
            attrs["dim"] = dim
            if "keepdim" in entry["attributes"] and draw(st.booleans(), label=f"keepdim of op {index}"):
                attrs["keepdim"] = True
    return attrs


def _apply(name: str, entry: dict, operands: list[np.ndarray], attrs: dict) -> np.ndarray | None:
    """The op's value on the operands, or None if an operand breaks a constraint or the value is unusable."""
    if name == "matmul":  # a's last dim against b's first: no broadcasting of the two
        a, b = operands
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            return None
    elif len(operands) == 2:  # first: the constraints below may compare the operands elementwise
        try:
            np.broadcast_shapes(operands[0].shape, operands[1].shape)
        except ValueError:
            return None
    for slot, operand in zip("ab", operands, strict=False):  # unary ops have one operand
        rule = entry["constraints"].get(slot)
        if rule == "apart":  # b stays away from a everywhere: no ties between the operands (maximum, minimum)
            with np.errstate(all="ignore"):
                if not np.all(np.abs(np.subtract(*operands)) > MARGIN):
                    return None
        elif rule and not CONSTRAINTS[rule](operand):
            return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # var of one element: no degrees of freedom, nan
        value = np.asarray(NUMPY_OPS[name].forward(*operands, **attrs), dtype=np.float64)
    if not np.all(np.isfinite(value)) or np.any(np.abs(value) > LIMIT):
        return None
    return value
