"""Hypothesis strategies that draw Cases: random graphs over the op vocabulary, in the case language.

A draw is a plain case dict (what a YAML file holds) built by `build_case`, so any draw
can be written out as a case file and replayed by the ordinary loader. Values are
tracked while drawing, with the reference engine's numpy forwards, so that each operand
and attribute honours its op's `fuzz:` entry in spec/ops.yaml (the words of operands.py:
inside the domain, away from kinks and jumps, shapes that fit) and shapes stay
broadcast-compatible. Shapes have up to three axes, none square or symmetric by default,
so that a missing transpose or a wrong inverse permutation cannot hide. Graphs stay short
so shrinking is quick.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
from gradspec import contracts
from gradspec.fuzz import operands as words
from gradspec.fuzz.operands import MARGIN, MAX_ELEMENTS, OMIT, REJECT, Context, Node
from gradspec.language.case import Case
from gradspec.language.expressions import index_text
from gradspec.language.forwards import numpy_forward
from gradspec.language.loader import build_case
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["MARGIN", "SHAPES", "Draw", "fuzzable_ops", "graphs", "leaf_values"]

LIMIT = 1e3  # intermediate values larger than this are not used (overflow guard)
# Full broadcast shapes, and the leaf shapes that broadcast to each: several axes, none square.
SHAPES = {
    (): [()],
    (3,): [(3,), (1,), ()],
    (2, 3): [(2, 3), (3,), (2, 1), (1, 3), ()],
    (2, 3, 4): [(2, 3, 4), (3, 4), (4,), (2, 1, 4), (3, 1), (2, 3, 1), ()],
}
# The capabilities that only graphs with `indexing` may need: the ops that imply them are drawn there only.
INDEXING_CAPABILITIES = frozenset({"view_ops", "index_ops", "integer_tensors"})
# Ops whose result is laid out as a strided view of their operand (PyTorch keeps those strides through elementwise
# ops, where `view` then refuses): their results, and what is computed from them, are not `contiguous`.
STRIDED = frozenset({"transpose", "permute", "expand", "broadcast_to", "diagonal", "getitem", "select", "narrow",
                     "split", "chunk", "unbind"})
RESHAPING = frozenset({"reshape", "flatten", "view"})  # contiguous results whatever the operand's layout
# Value words that read the attributes (a reduction's dim, clamp's bounds): judged once those are drawn.
ATTRIBUTE_DEPENDENT = frozenset({"untied", "spread", "distinct_magnitudes", "off_bounds", "with_zeros"})
MATRIX_WORDS = frozenset({"vector", "matrix", "vector_or_matrix", "at_least_2d", "like_a", "invertible", "solvable",
                          "matmul_right"})


def operand_names(entry: dict) -> list[str]:
    """The op's operand names in order (`operands`, else a, b, c); ["operands"] for arity many."""
    if entry["arity"] == "many":
        return ["operands"]
    return list(entry.get("operands") or ("a", "b", "c")[:entry["arity"]])


def integer_operands(entry: dict) -> set[str]:
    """The names of the index and condition operands (no gradient, integer tensors)."""
    names = operand_names(entry)
    return {names[entry[key]] for key in ("index_operand", "condition_operand") if key in entry}


@cache
def fuzzable_ops() -> dict[str, dict]:
    """Ops whose `fuzz` entry is not false: their entry, with `fuzz` (a mapping) checked against operands.py's words."""
    table = {}
    for name, entry in contracts.ops().items():
        fuzz = entry.get("fuzz", {})
        if fuzz is False:
            continue
        problems = problems_of_fuzz(name, entry, fuzz)
        if problems:
            raise ValueError(f"spec/ops.yaml: op {name!r}: {'; '.join(problems)}")
        table[name] = {"arity": entry["arity"], "constraints": fuzz, "fuzz": fuzz,
                       "attributes": entry.get("attributes", {}), "entry": entry}
    return table


def problems_of_fuzz(name: str, entry: dict, fuzz: dict) -> list[str]:
    """What is wrong with an op's `fuzz` mapping: keys that are no operand or attribute, words of the wrong kind,
    required attributes that nothing draws."""
    attributes = entry.get("attributes") or {}
    float_words = set(words.VALUE_WORDS) | set(words.SHAPE_WORDS)
    found = []
    for key, word in fuzz.items():
        if key == "drawn_as":
            ok = word in words.DRAWN_AS
        elif key == "operands":
            ok = entry["arity"] == "many" and word in words.JOINING_WORDS
        elif key in attributes:
            ok = word in words.ATTRIBUTE_WORDS
        elif key in integer_operands(entry):
            ok = word in words.INTEGER_WORDS and word not in ("like_index", "index_add_source")
        elif key in operand_names(entry):
            ok = word in float_words or word in ("like_index", "index_add_source")
        else:
            found.append(f"fuzz names {key!r}, which is no operand or attribute of the op")
            continue
        if not ok:
            found.append(f"fuzz gives {key!r} the word {word!r}, which operands.py does not know for it")
    for key, spec in attributes.items():
        automatic = key in ("dim", "keepdim") or spec["type"] == "choice"
        if spec.get("required") and key not in fuzz and not automatic and "drawn_as" not in fuzz:
            found.append(f"nothing draws its required attribute {key!r}")
    for key in integer_operands(entry):
        if key not in fuzz:
            found.append(f"nothing draws its integer operand {key!r}")
    return found


@cache
def _implied_capabilities() -> dict[str, frozenset[str]]:
    """Per op, the capabilities a case that calls it needs (spec/capabilities.yaml's "op:NAME")."""
    table: dict[str, set[str]] = {}
    for capability, entry in contracts.capabilities().items():
        for source in entry.get("implied_by", ()):
            if source.startswith("op:"):
                table.setdefault(source[3:], set()).add(capability)
    return {op: frozenset(caps) for op, caps in table.items()}


def needs_indexing(op: str) -> bool:
    """Whether the op is drawn only in graphs with `indexing` (it implies view_ops or index_ops)."""
    return bool(_implied_capabilities().get(op, frozenset()) & INDEXING_CAPABILITIES)


def indexing_only(op: str) -> bool:
    """Whether graphs draw the op only with `indexing`: it implies view_ops or index_ops, or is drawn inside the
    index operand of an index op (argmax)."""
    fuzz = contracts.ops()[op].get("fuzz") or {}
    return needs_indexing(op) or fuzz.get("drawn_as") == "index"


def family(name: str, entry: dict, fuzz: dict) -> str | None:
    """Ops are drawn family first, so that a few dozen elementwise functions do not crowd out the rest; None for an
    op drawn inside another's operand."""
    if "drawn_as" in fuzz:
        return None
    if "index_operand" in entry or "condition_operand" in entry or name == "getitem":
        return "selection"
    if entry.get("view") or entry["arity"] == "many" or entry.get("outputs") == "many" or needs_indexing(name):
        return "shape"
    if set(fuzz.values()) & MATRIX_WORDS:
        return "linear algebra"
    if "dim" in (entry.get("attributes") or {}):
        return "reduction"
    return "binary" if entry["arity"] == 2 else "unary"


@dataclass(frozen=True)
class Draw:
    """A drawn graph: the case dict (forward steps only), its leaves, its output and an output gradient."""

    data: dict  # the case as YAML would hold it
    leaves: tuple[str, ...]
    output: str
    grad_output: tuple | None  # None: the output has one element, so the gradient may be implicit
    names: tuple[str, ...] = ()  # every float tensor the steps bind, in order (several per `a, b = split(...)`)

    @property
    def case(self) -> Case:
        """The draw as a Case; tests/test_fuzz.py checks that draws pass the schema, so it is not rerun here."""
        return build_case(self.data, "<fuzz draw>", "fuzz/draw.yaml", schema=False)

    @property
    def ops(self) -> set[str]:
        """Every op the steps call, inside other calls too."""
        from gradspec.language.expressions import ops_used
        return {op for step in self.case.steps if step.statement is not None for op in ops_used(step.statement.expr)}


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
    """A random DAG with shared subexpressions, several broadcasting leaves and an output of any shape.

    Every op whose `fuzz` entry is not false may be drawn, but those that imply view_ops or index_ops (views,
    shape copies, integer lists, gather and scatter, integer index and mask tensors) only with `indexing`, which
    the caller gives for an engine with those capabilities: their steps then make half of the graph. Ops in
    `exclude` (those the engine under test lacks) are never drawn, inside other ops neither.
    """
    builder = Builder(draw, indexing, exclude, max_leaves)
    for index in range(draw(st.integers(1, max_ops), label="ops")):
        builder.step(index)
    return builder.result()


class Builder:
    """The graph being drawn: its leaves and constants, the float values it may reuse, and its steps."""

    def __init__(self, draw, indexing: bool, exclude: frozenset, max_leaves: int):
        self.draw, self.indexing = draw, indexing
        self.ops = {name: spec for name, spec in fuzzable_ops().items()
                    if name not in exclude and (indexing or not needs_indexing(name))}
        families = _families(tuple(sorted(self.ops)))
        self.table = _weighted(tuple(sorted(families.items())))
        self.focus = _weighted(tuple((f, families[f]) for f in ("selection", "shape") if f in families))
        self.fresh_left = max_leaves + 2  # leaves an op may add when no value of the graph fits it
        self.tensors: dict[str, dict] = {}
        self.leaves: list[str] = []
        self.nodes: list[Node] = []
        self.names: list[str] = []
        self.steps: list[str] = []
        self.used: set[str] = set()
        self.constants = 0
        full = draw(_choice(tuple(sorted(SHAPES, key=len))), label="broadcast shape")
        self.leaf_shapes = tuple(SHAPES[full])
        for index in range(draw(st.integers(1, max_leaves), label="leaves")):
            shape = draw(_choice(self.leaf_shapes), label=f"shape of x{index}")
            self.add_leaf(draw(leaf_values(shape), label=f"value of x{index}"))

    # -- what operands.py asks of the graph ----------------------------------------------------------------------

    def inline_ops(self, kind: str) -> list[str]:
        """The ops drawn inside an operand of kind `kind` (condition, index, factor) that the engine has."""
        return sorted(name for name, spec in self.ops.items() if spec["fuzz"].get("drawn_as") == kind)

    def leaf_value(self, shape: tuple, what: str) -> np.ndarray:
        return self.draw(leaf_values(shape), label=what)

    def constant(self, values: np.ndarray, dtype: str | None = None) -> str:
        """A tensor of the case that requires no gradient: an int64 index or mask, or a float constant."""
        name = f"{'i' if dtype == 'int64' else 'k'}{self.constants}"
        self.constants += 1
        self.tensors[name] = {"value": np.asarray(values).tolist(), **({"dtype": dtype} if dtype else {})}
        return name

    def add_leaf(self, value: np.ndarray) -> Node:
        name = f"x{len(self.leaves)}"
        self.tensors[name] = {"value": value.tolist(), "requires_grad": True}
        self.leaves.append(name)
        node = Node(name, value)
        self.nodes.append(node)
        return node

    # -- steps ---------------------------------------------------------------------------------------------------

    def step(self, index: int, attempts: int = 3) -> None:
        """One op step; an op that does not fit the graph drawn so far gives way to another, up to `attempts`."""
        table = self.table
        if self.indexing and self.focus and self.draw(st.booleans(), label=f"indexing step {index}"):
            table = self.focus
        for attempt in range(attempts if table else 0):
            label = f"op {index}" + (f" (attempt {attempt + 1})" if attempt else "")
            # Hypothesis's generator gives the first choice of a list about a fifth of the time here; a second
            # draw where it does spreads that fifth over the vocabulary (and shrinking still reaches the first op).
            choice = self.draw(_index(len(table)), label=label) or self.draw(_index(len(table)), label=f"{label}, again")
            if self.op_step(table[choice], index):
                return

    def op_step(self, name: str, index: int) -> bool:
        """Draw operands and attributes for op `name` and add its step; False where it does not fit the graph.

        The first operand that gets a gradient comes first (attributes are drawn from its shape), then the dim,
        keepdim and choice attributes, then what the `fuzz` entry lists in its order, then unlisted operands; the
        float operands' words are judged last, once everything they read is drawn (settle)."""
        spec, entry = self.ops[name]["fuzz"], contracts.ops()[name]
        names, integers = operand_names(entry), integer_operands(entry)
        floats = [n for n in names if n not in integers and n != "operands"]
        ctx = Context(self, name, entry, f"op {index}", floats[0] if floats else "a")
        word = spec.get(ctx.primary) if floats else ("at_least_1d" if spec.get("operands") == "joinable" else None)
        first = self.pick(ctx, ctx.primary, word)
        if first is None:
            return False
        ctx.operands[ctx.primary] = first
        if not self._automatic_attributes(ctx, spec) or not self._listed(ctx, spec, integers):
            return False
        for key in floats:
            if key not in ctx.operands:
                node = self.pick(ctx, key, None)
                if node is None:
                    return False
                ctx.operands[key] = node
        if not self.settle(ctx, [k for k, n in ctx.operands.items() if isinstance(n, Node) and not n.integer], spec):
            return False
        return self.emit(ctx, names, index)

    def _automatic_attributes(self, ctx: Context, spec: dict) -> bool:
        """dim (None too where the op allows it), keepdim with a dim, a choice attribute's choices."""
        for key, attr in (ctx.entry.get("attributes") or {}).items():
            if key in spec:
                continue
            if key == "dim" and attr["type"] == "int":
                value = words.dim_word(ctx)
            elif key == "keepdim":
                value = self.draw(st.booleans(), label=f"keepdim of {ctx.label}") if "dim" in ctx.attrs else OMIT
            elif attr["type"] == "choice":
                value = self.draw(_choice(tuple(attr["choices"])), label=f"{key} of {ctx.label}")
            else:
                value = OMIT
            if value is REJECT:
                return False
            if value is not OMIT and value is not None:
                ctx.attrs[key] = value
        return True

    def _listed(self, ctx: Context, spec: dict, integers: set[str]) -> bool:
        """What the `fuzz` entry lists, in its order: attributes, operands, the operand list of cat and stack."""
        for key, word in spec.items():
            if key in (ctx.primary, "drawn_as"):
                continue
            if key in (ctx.entry.get("attributes") or {}):
                value = words.attribute(ctx, word)
                if value is REJECT:
                    return False
                if value is not OMIT and value is not None:
                    ctx.attrs[key] = value
            elif key == "operands":
                if not self.join(ctx, word):
                    return False
            else:
                node = self.integer_operand(ctx, word) if key in integers else self.pick(ctx, key, word)
                if node is None:
                    return False
                ctx.operands[key] = node
        return True

    def _fits(self, ctx: Context, key: str, word: str | None, node: Node) -> bool:
        if node.integer or node.value.size > MAX_ELEMENTS:
            return False
        spec = words.VALUE_WORDS.get(word) or words.SHAPE_WORDS.get(word)
        if spec is not None and not spec.fits(node.shape, ctx):
            return False
        if word == "contiguous" and not node.contiguous:
            return False
        if word in ("like_index", "index_add_source"):
            return node.shape == words.source_shape(ctx, word)
        if ctx.entry.get("broadcast") and key != ctx.primary:  # every operand broadcasts with the others
            if not words._broadcasts(node.shape, *(n.shape for n in ctx.operands.values())):
                return False
        return True

    def pick(self, ctx: Context, key: str, word: str | None) -> Node | None:
        """A float value of the graph for operand `key`, or a fresh leaf (made once the attributes are drawn)
        where none fits or the word asks for one."""
        spec = words.VALUE_WORDS.get(word) or words.SHAPE_WORDS.get(word)
        candidates = [node for node in self.nodes if self._fits(ctx, key, word, node)]
        if spec is not None and (key != ctx.primary or word not in ATTRIBUTE_DEPENDENT):
            # what can be judged now is judged now (settle() judges again): fewer draws are wasted
            candidates = [node for node in candidates if spec.holds(node.value, ctx)]
        fresh = spec is not None and spec.fresh and self.draw(st.integers(0, spec.fresh - 1),
                                                              label=f"fresh {key} of {ctx.label}") == 0
        if candidates and not fresh:
            return candidates[self.draw(_index(len(candidates)), label=f"operand {key} of {ctx.label}")]
        shapes = self._fresh_shapes(ctx, key, word, spec)
        if not shapes:
            return None
        shape = shapes[self.draw(_index(len(shapes)), label=f"shape of a fresh {key} of {ctx.label}")]
        return Node("", np.zeros(shape))  # made by settle(), once the attributes are known

    def _fresh_shapes(self, ctx: Context, key: str, word: str | None, spec) -> list[tuple]:
        if word in ("like_index", "index_add_source"):
            return [words.source_shape(ctx, word)]
        shapes = spec.shapes(ctx) if spec is not None and spec.shapes is not None else list(self.leaf_shapes)
        return [s for s in shapes if self._fits(ctx, key, word, Node("", np.zeros(s)))]

    def settle(self, ctx: Context, keys: list[str], spec: dict) -> bool:
        """Make the fresh leaves, and check every float operand's word now that the attributes are drawn: an
        operand whose values do not hold is replaced by a fresh leaf of its shape whose values do."""
        for key in [ctx.primary] + [k for k in keys if k != ctx.primary]:
            node, word = ctx.operands[key], spec.get(key)
            check = words.VALUE_WORDS.get(word) or words.SHAPE_WORDS.get(word)
            if node.text and (check is None or check.holds(node.value, ctx)):
                pass
            else:
                node = self.fresh(ctx, node.shape, check)
                if node is None:
                    return False
            if word == "invertible":
                node = self.well_conditioned(node)
                if node is None:
                    return False
            ctx.operands[key] = node
        cuts = self.inline_ops("factor")  # detach(v1) * v2: a cut as the first operand of an elementwise op of two
        if (cuts and ctx.entry["arity"] == 2 and ctx.entry.get("broadcast") and "a" not in spec
                and not integer_operands(ctx.entry)
                and self.draw(st.integers(0, 3), label=f"cut of {ctx.label}") == 0):
            cut = self.draw(_choice(tuple(cuts)), label=f"cut op of {ctx.label}")
            a = ctx.operands["a"]
            ctx.operands["a"] = Node(f"{cut}({a.text})", a.value, a.contiguous)
        return True

    def fresh(self, ctx: Context, shape: tuple, check) -> Node | None:
        """A new leaf of `shape` whose values the operand's word holds (made from drawn leaf values)."""
        if self.fresh_left <= 0:
            return None
        self.fresh_left -= 1
        value = self.draw(leaf_values(shape), label=f"value of a fresh leaf of {ctx.label}")
        if check is not None:
            value = np.round(np.asarray(check.make(value, ctx), dtype=np.float64), 4)
            if not check.holds(value, ctx):
                return None
        return self.add_leaf(value)

    def well_conditioned(self, node: Node) -> Node | None:
        """node where it is well-conditioned and not symmetric; else node plus a constant that makes it both: a
        multiple of the identity that makes it diagonally dominant, and 0.5 above the diagonal (a symmetric matrix
        would hide a transpose missing from a derivative, as solve's a^T)."""
        if (words._condition_number(node.value) <= words.CONDITION_LIMIT
                and not np.any(np.all(np.isclose(node.value, np.swapaxes(node.value, -1, -2)), axis=(-1, -2)))):
            return node
        if "add" not in self.ops:  # the constant is added: an engine without add gets well-conditioned values only
            return None
        n = node.shape[-1]
        shift = math.ceil(float(np.max(np.sum(np.abs(node.value), axis=-1))) + 1.0)
        constant = shift * np.eye(n) + 0.5 * np.eye(n, k=1)
        value = node.value + constant
        if words._condition_number(value) > words.CONDITION_LIMIT:
            return None
        return Node(f"{node.text} + {self.constant(constant)}", value)

    def integer_operand(self, ctx: Context, word: str) -> Node | None:
        """A condition or an int64 index (operands.py's INDEX_RECIPES)."""
        if word == "condition":
            a = ctx.a.shape
            if ctx.op == "masked_fill":  # the mask broadcasts to a's shape
                def fits(shape):
                    return words._broadcasts(shape, a) and np.broadcast_shapes(shape, a) == a
            else:
                def fits(shape):
                    return words._broadcasts(shape, a)
            return words.condition(ctx, fits)
        return words.INDEX_RECIPES[word](ctx)

    def join(self, ctx: Context, word: str) -> bool:
        """The operand list of cat or stack: the first operand, then up to two more that fit it (or fresh leaves)."""
        first, count = ctx.operands["a"], self.draw(st.integers(1, 3), label=f"operands of {ctx.label}")
        if not first.text:
            first = self.fresh(ctx, first.shape, None)
            if first is None:
                return False
            ctx.operands["a"] = first
        dim = ctx.attrs.get("dim", 0)
        listed = [first]
        for slot in range(1, count):
            if word == "joinable":
                def fits(node, dim=dim):
                    return node.value.ndim == first.value.ndim and all(
                        s == t for d, (s, t) in enumerate(zip(node.shape, first.shape, strict=True))
                        if d != dim % first.value.ndim)
            else:
                def fits(node):
                    return node.shape == first.shape
            candidates = [node for node in self.nodes if not node.integer and fits(node)]
            if candidates and self.draw(st.integers(0, 2), label=f"fresh operand {slot} of {ctx.label}"):
                listed.append(candidates[self.draw(_index(len(candidates)), label=f"operand {slot} of {ctx.label}")])
                continue
            shape = list(first.shape)
            if word == "joinable":
                shape[dim] = self.draw(st.integers(1, 3), label=f"size along dim of operand {slot} of {ctx.label}")
            node = self.fresh(ctx, tuple(shape), None)
            if node is None:
                return False
            listed.append(node)
        ctx.operands["operands"] = listed  # type: ignore[assignment]
        return True

    def emit(self, ctx: Context, names: list[str], index: int) -> bool:
        """Compute the op's value, check it is usable, and write its step."""
        if ctx.entry["arity"] == "many":
            listed = list(ctx.operands.get("operands") or [ctx.operands["a"]])
        else:
            listed = [ctx.operands[n] for n in names]
        values, texts = [n.value for n in listed], [n.text for n in listed]
        attrs = dict(ctx.attrs)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # var of one element: no degrees of freedom, nan
            try:
                result = numpy_forward(ctx.op, values, attrs)
            except (ValueError, IndexError, np.linalg.LinAlgError):
                return False  # shapes that do not fit (matmul's, a view's): not drawn
        pieces = result if isinstance(result, tuple) else (result,)
        pieces = tuple(np.asarray(piece, dtype=np.float64) for piece in pieces)
        if not pieces or any(p.size == 0 or p.size > MAX_ELEMENTS or not np.all(np.isfinite(p))
                             or np.any(np.abs(p) > LIMIT) for p in pieces):
            return False
        if ctx.op == "getitem":
            text = f"{texts[0]}[{index_text(attrs['index'])}]"
        else:
            keywords = [f"{key}={value!r}" for key, value in attrs.items()]
            text = f"{ctx.op}({', '.join(texts + keywords)})"
        targets = [f"v{index}_{k}" for k in range(len(pieces))] if isinstance(result, tuple) else [f"v{index}"]
        left = ", ".join(targets) + ("," if len(targets) == 1 and isinstance(result, tuple) else "")
        self.steps.append(f"{left} = {text}")
        contiguous = ctx.op in RESHAPING or (ctx.op not in STRIDED and all(n.contiguous for n in listed))
        for target, piece in zip(targets, pieces, strict=True):
            self.nodes.append(Node(target, piece, contiguous))
            self.names.append(target)
        self.used.add(ctx.op)
        self.used.update(op for node in listed for op in _called(node.text))
        return True

    # -- the result ----------------------------------------------------------------------------------------------

    def result(self) -> Draw:
        output = self.nodes[-1]
        steps = list(self.steps)
        if not steps:  # the output is a copy of a leaf: clone, or a product with one where clone is excluded
            steps = [f"v0 = clone({output.text})" if "clone" in self.ops else f"v0 = {output.text} * 1"]
            self.used.add("clone" if "clone" in self.ops else "mul")
            output = Node("v0", output.value)
            self.names.append("v0")
        grad_output = None
        if output.value.size != 1:
            grad_output = self.draw(leaf_values(output.shape), label="grad_output").tolist()
        data = {
            "schema_version": 1,
            "title": "a random graph drawn by gradspec's fuzzer",
            "rules": ["VJP-2"],
            "source": "hypothesis draw (harness/fuzz/strategies.py)",
            "derivation": "to be filled in by whoever writes the case out",
            "capabilities": self.capabilities(),
            "dtypes": ["float64"],
            "tensors": self.tensors,
            "steps": steps,
        }
        return Draw(data, tuple(self.leaves), output.text, None if grad_output is None else tuple(grad_output),
                    tuple(self.names))

    def capabilities(self) -> list[str]:
        """grad, and what the ops drawn imply (spec/capabilities.yaml), integer tensors, and .data's convention."""
        found = {"grad"}
        for op in self.used:
            found |= _implied_capabilities().get(op, frozenset())
        if any(spec.get("dtype") == "int64" for spec in self.tensors.values()):
            found.add("integer_tensors")
        if "data" in self.used:
            found.add("data_alias")
        return sorted(found)


def _called(text: str) -> list[str]:
    """The ops an inline operand calls (`detach(v1)`, `gt(v1, v2)`, `argmax(v0, dim=1)`)."""
    return [name for name in re.findall(r"([a-z_]\w*)\(", text) if name in contracts.ops()]


@cache
def _families(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The drawable ops by family; ops drawn inside another's operand belong to none."""
    table = fuzzable_ops()
    families: dict[str, list[str]] = {}
    for name in names:
        kind = family(name, table[name]["entry"], table[name]["fuzz"])
        if kind is not None:
            families.setdefault(kind, []).append(name)
    return {kind: tuple(members) for kind, members in families.items()}


@cache
def _weighted(families: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    """The ops, each repeated so that every family weighs about the same: drawn from this one list, every op but
    the first is about as likely as hypothesis's generator makes any other choice (it favours the first of each
    list it draws from, which family-then-op drawing paid twice)."""
    largest = max((len(members) for _, members in families), default=0)
    return tuple(op for _, members in families for op in members for _ in range(round(largest / len(members))))


def _apply(name: str, entry: dict, operands: list[np.ndarray], attrs: dict) -> np.ndarray | None:
    """The op's value on two broadcasting operands, or None where they do not broadcast or break the op's value
    words (kept for the operands of elementwise ops: tests check that shapes are compared before values)."""
    if len(operands) == 2 and not words._broadcasts(operands[0].shape, operands[1].shape):
        return None
    ctx = Context(None, name, contracts.ops()[name], "", "a", {"a": Node("a", operands[0])}, dict(attrs))
    for slot, operand in zip("ab", operands, strict=False):
        word = words.VALUE_WORDS.get(entry["fuzz"].get(slot))
        if word is not None and not word.holds(operand, ctx):
            return None
    with np.errstate(all="ignore"):
        value = np.asarray(numpy_forward(name, operands, attrs), dtype=np.float64)
    if not np.all(np.isfinite(value)) or np.any(np.abs(value) > LIMIT):
        return None
    return value

