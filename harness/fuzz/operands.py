"""The words of spec/ops.yaml's `fuzz:` field: how the fuzzer feeds each operand and attribute of an op.

Each word is a small recipe. An operand word says which values of the graph fit (a shape,
a domain, a distance from a kink) and how to make a fresh leaf that fits when none does; an
attribute word draws the attribute from the operand it applies to (a permutation from all
of S_n, a split size, a narrow's start and length); a few words make operands that are not
float tensors (an integer index tensor, a condition). Ops whose result is an integer or cuts
the gradient are drawn inside the operand of another op (`drawn_as`): a comparison as the
condition of `where`, `argmax` as the index of `gather`, `detach` as a factor of a product.
Operands stay away from every point where finite differences cannot judge (jumps, kinks,
ties); the kink property (kinks.py) draws those points on purpose instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gradspec.language.forwards import numpy_forward
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MARGIN = 0.25  # how far from a domain edge, a kink or a tie an operand must stay
FINE = 0.02  # how far from a jump (floor, round, fmod's quotient, clamp's bounds): far beyond a difference step
MAX_ELEMENTS = 60  # larger values are not used: draws stay small and shrinking quick
CONDITION_LIMIT = 50.0  # the largest condition number of a matrix that inv, det and solve are given

OMIT = object()  # an attribute word's answer: leave the attribute at its default
REJECT = object()  # an attribute or operand word's answer: the op does not fit here; it is not drawn


@dataclass(frozen=True)
class Node:
    """A value the graph may use: a name (or an inline expression, `x0 + k1`, `gt(v1, v2)`) and its value."""

    text: str
    value: np.ndarray
    contiguous: bool = True  # laid out as a fresh array: `view` accepts any shape of it (PyTorch keeps strides)
    integer: bool = False  # an int64 result (a comparison, an index): never a float operand

    @property
    def shape(self) -> tuple:
        return self.value.shape


@dataclass
class Context:
    """What a word sees: the op, what was drawn for it so far, and the graph builder (nodes, fresh leaves)."""

    builder: Any  # strategies.Builder
    op: str
    entry: dict  # the op's spec/ops.yaml entry
    label: str  # "op 3", for hypothesis's labels
    primary: str  # the first operand that gets a gradient: attributes are drawn from its shape
    operands: dict[str, Node] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def draw(self, strategy, what: str):
        return self.builder.draw(strategy, label=f"{what} of {self.label}")

    @property
    def a(self) -> Node:
        return self.operands[self.primary]

    def dim(self) -> int | None:
        return self.attrs.get("dim")


# -- values by slice: reductions judge ties along their dim only ------------------------------------------------


def lines(value: np.ndarray, dim: int | None) -> np.ndarray:
    """The value as rows, one per slice along dim (one row of everything without a dim)."""
    if value.ndim == 0 or dim is None:
        return value.reshape(1, -1)
    return np.moveaxis(value, dim, -1).reshape(-1, value.shape[dim])


def _from_lines(rows: np.ndarray, like: np.ndarray, dim: int | None) -> np.ndarray:
    if like.ndim == 0 or dim is None:
        return rows.reshape(like.shape)
    moved = np.moveaxis(like, dim, -1).shape
    return np.moveaxis(rows.reshape(moved), -1, dim)


def _gap(rows: np.ndarray) -> np.ndarray:
    """Per row, the distance between its largest and second largest element (inf for one element)."""
    if rows.shape[1] < 2:
        return np.full(rows.shape[0], np.inf)
    top = np.sort(rows, axis=1)
    return top[:, -1] - top[:, -2]


def _untied(v: np.ndarray, ctx: Context) -> bool:
    rows = lines(v, ctx.dim())
    return bool(np.all(_gap(rows) > MARGIN) and np.all(_gap(-rows) > MARGIN))


def _untie(v: np.ndarray, ctx: Context) -> np.ndarray:
    rows = lines(v, ctx.dim()).copy()
    if rows.shape[1] > 1:
        index = np.arange(rows.shape[0])
        high, low = rows.argmax(axis=1), rows.argmin(axis=1)
        rows[index, high] += 0.5
        rows[index, low] -= 0.5
    return _from_lines(rows, v, ctx.dim())


def _spread(v: np.ndarray, ctx: Context) -> bool:
    rows = lines(v, ctx.dim())
    return bool(np.all(rows.max(axis=1) - rows.min(axis=1) > MARGIN))


def _distinct_magnitudes(v: np.ndarray, ctx: Context) -> bool:
    return bool(np.all(np.abs(v) > MARGIN) and np.all(_gap(np.abs(lines(v, ctx.dim()))) > MARGIN))


def _separate_magnitudes(v: np.ndarray, ctx: Context) -> np.ndarray:
    rows = lines(v, ctx.dim()).copy()
    index = np.arange(rows.shape[0])
    top = np.abs(rows).argmax(axis=1)
    rows[index, top] += 0.5 * np.sign(rows[index, top])
    return _from_lines(rows, v, ctx.dim())


def _distance_to_integers(v) -> np.ndarray:
    return np.abs(v - np.round(v))


def _nudged(v: np.ndarray, bad: np.ndarray) -> np.ndarray:
    return np.where(bad, v + 0.1, v)


def _bounds(ctx: Context) -> list[float]:
    return [ctx.attrs[key] for key in ("min", "max") if ctx.attrs.get(key) is not None]


def _off_bounds(v: np.ndarray, ctx: Context) -> bool:
    return all(bool(np.all(np.abs(v - bound) > FINE)) for bound in _bounds(ctx))


def _quotient(ctx: Context, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.divide(ctx.a.value, b)


def _off_multiples(v: np.ndarray, ctx: Context) -> bool:
    return bool(np.all(np.abs(v) > MARGIN) and np.all(_distance_to_integers(_quotient(ctx, v)) > FINE))


def _apart(v: np.ndarray, ctx: Context) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(ctx.a.value - v) > MARGIN))


def _with_zeros(v: np.ndarray, ctx: Context) -> np.ndarray:
    """One or two exact zeros in one slice along dim (anywhere without one): a product's special values (DERIV-1)."""
    rows = lines(v, ctx.dim()).copy()
    count = min(ctx.draw(st.integers(1, 2), "zeros"), rows.shape[1])
    row = ctx.draw(st.integers(0, rows.shape[0] - 1), "slice with zeros")
    places = ctx.draw(st.lists(st.integers(0, rows.shape[1] - 1), min_size=count, max_size=count, unique=True),
                      "places of the zeros")
    rows[row, places] = 0.0
    return _from_lines(rows, v, ctx.dim())


def _broadcasts(*shapes: tuple) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def _matmul_fits(a: tuple, b: tuple) -> bool:
    if not a or not b:
        return False
    inner = b[-2] if len(b) > 1 else b[0]
    return a[-1] == inner and _broadcasts(a[:-2], b[:-2])


def _square(shape: tuple) -> bool:
    return len(shape) >= 2 and shape[-1] == shape[-2] >= 2


def _condition_number(value: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.max(np.linalg.cond(value)))


# -- operand words ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperandWord:
    """fits: whether a value's shape may be the operand (given what was drawn before it); holds: whether its values
    may (checked once the attributes are drawn); shapes: shapes for a fresh leaf when no value of the graph fits;
    make: turns drawn leaf values (in [-2, -0.3] or [0.3, 2]) into values that hold; fresh: how often a fresh leaf
    is drawn even where values of the graph fit (1 in `fresh`; 0 never)."""

    description: str
    fits: Callable[[tuple, Context], bool] = lambda shape, ctx: True
    holds: Callable[[np.ndarray, Context], bool] = lambda value, ctx: True
    shapes: Callable[[Context], list[tuple]] | None = None
    make: Callable[[np.ndarray, Context], np.ndarray] = lambda value, ctx: value
    fresh: int = 0


def _shape_of_a(ctx: Context) -> list[tuple]:
    return [ctx.a.shape]


VALUE_WORDS = {
    "positive": OperandWord("every element > 0.25", holds=lambda v, c: bool(np.all(v > MARGIN)),
                            make=lambda v, c: np.abs(v)),
    "nonzero": OperandWord("|x| > 0.25", holds=lambda v, c: bool(np.all(np.abs(v) > MARGIN))),
    "away_from_kink": OperandWord("|x| > 0.25 (the kink at 0)", holds=lambda v, c: bool(np.all(np.abs(v) > MARGIN))),
    "bounded": OperandWord("|x| < 3", holds=lambda v, c: bool(np.all(np.abs(v) < 3.0))),
    "unit": OperandWord("|x| < 0.75", holds=lambda v, c: bool(np.all(np.abs(v) < 0.75)), make=lambda v, c: 0.35 * v),
    "above_one": OperandWord("x > 1.25", holds=lambda v, c: bool(np.all(v > 1 + MARGIN)),
                             make=lambda v, c: 1 + np.abs(v)),
    "apart": OperandWord("|b - a| > 0.25 everywhere: no ties between the operands (maximum, minimum)",
                         fits=lambda s, c: _broadcasts(s, c.a.shape), holds=_apart, shapes=_shape_of_a,
                         make=lambda v, c: c.a.value + v),
    "apart_or_same": OperandWord("b is a itself (ties that move together) or |b - a| > 0.25 everywhere (comparisons)",
                                 fits=lambda s, c: _broadcasts(s, c.a.shape), holds=_apart, shapes=_shape_of_a,
                                 make=lambda v, c: c.a.value + v),
    "untied": OperandWord("per slice along dim (all of it without one), a unique largest and smallest element, "
                          "0.25 clear of the next", holds=_untied, make=_untie),
    "spread": OperandWord("per slice along dim, largest and smallest element 0.25 apart (std)", holds=_spread,
                          make=lambda v, c: _untie(v, c)),
    "distinct_magnitudes": OperandWord("|x| > 0.25, and per slice along dim a unique largest |x| (norm)",
                                       holds=_distinct_magnitudes, make=_separate_magnitudes),
    "off_integers": OperandWord("every element 0.02 from an integer (floor, ceil, trunc jump there)",
                                holds=lambda v, c: bool(np.all(_distance_to_integers(v) > FINE)),
                                make=lambda v, c: _nudged(v, _distance_to_integers(v) <= FINE)),
    "off_halves": OperandWord("every element 0.02 from a half-integer (round jumps there)",
                              holds=lambda v, c: bool(np.all(_distance_to_integers(v - 0.5) > FINE)),
                              make=lambda v, c: _nudged(v, _distance_to_integers(v - 0.5) <= FINE)),
    "off_bounds": OperandWord("every element 0.02 from clamp's min and max", holds=_off_bounds,
                              make=lambda v, c: _nudged(v, ~np.all([np.abs(v - b) > FINE for b in _bounds(c)], axis=0)
                                                        if _bounds(c) else np.zeros(v.shape, bool))),
    "off_multiples": OperandWord("|b| > 0.25 and a / b 0.02 from an integer (fmod and remainder jump there)",
                                 fits=lambda s, c: _broadcasts(s, c.a.shape), holds=_off_multiples,
                                 make=lambda v, c: v * 1.1),
}


SHAPE_WORDS = {
    "vector": OperandWord("1-d", fits=lambda s, c: len(s) == 1, shapes=lambda c: [(3,), (4,), (2,)]),
    "matrix": OperandWord("2-d", fits=lambda s, c: len(s) == 2, shapes=lambda c: [(2, 3), (3, 4), (3, 2)]),
    "vector_or_matrix": OperandWord("1-d or 2-d", fits=lambda s, c: 1 <= len(s) <= 2,
                                    shapes=lambda c: [(3,), (2, 3), (3, 4)]),
    "at_least_1d": OperandWord("at least 1 dimension", fits=lambda s, c: len(s) >= 1,
                               shapes=lambda c: [s for s in c.builder.leaf_shapes if s] or [(3,)]),
    "at_least_2d": OperandWord("at least 2 dimensions", fits=lambda s, c: len(s) >= 2,
                               shapes=lambda c: [(2, 3), (2, 3, 4), (3, 2, 4)]),
    "at_most_2d": OperandWord("at most 2 dimensions (transpose)", fits=lambda s, c: len(s) <= 2),
    "like_a": OperandWord("a's shape", fits=lambda s, c: s == c.a.shape, shapes=_shape_of_a),
    "contiguous": OperandWord("laid out as a fresh array (view: PyTorch keeps a transposed operand's strides "
                              "through elementwise ops, and refuses such a view)",
                              fits=lambda s, c: True),  # the builder checks Node.contiguous
    "matmul_right": OperandWord("b whose first dim (second last, for 2 or more) is a's last dim",
                                fits=lambda s, c: _matmul_fits(c.a.shape, s),
                                shapes=lambda c: [(c.a.shape[-1],), (c.a.shape[-1], 2), (c.a.shape[-1], 3)]),
    "invertible": OperandWord("a square matrix (last two dims), |x| < 3, plus a constant (a multiple of the "
                              "identity, 0.5 above the diagonal) where it is symmetric or its condition number above "
                              "50: non-singular, non-symmetric, and "
                              "well-conditioned enough for finite differences",
                              fits=lambda s, c: _square(s), holds=lambda v, c: bool(np.all(np.abs(v) < 3.0)),
                              shapes=lambda c: [(3, 3), (2, 3, 3), (2, 2)]),
    "solvable": OperandWord("b for solve(a, b): [n] for a 2-d a, or a's batch dims then [n, k]",
                            fits=lambda s, c: _solvable(c.a.shape, s),
                            shapes=lambda c: _solvable_shapes(c.a.shape)),
    "with_zeros": OperandWord("|x| < 3; half the time a fresh leaf with one or two exact zeros in one slice along "
                              "dim (prod and cumprod's special values, DERIV-1)",
                              holds=lambda v, c: bool(np.all(np.abs(v) < 3.0)), make=_with_zeros, fresh=2),
}


def _solvable(a: tuple, b: tuple) -> bool:
    n = a[-1]
    if len(a) == 2 and b == (n,):
        return True
    return len(b) == len(a) and b[:-2] == a[:-2] and b[-2] == n


def _solvable_shapes(a: tuple) -> list[tuple]:
    n, batch = a[-1], a[:-2]
    return ([(n,)] if not batch else []) + [(*batch, n, 2), (*batch, n, 4), (*batch, n, 1)]


# Words for operands that are not float values of the graph: conditions and int64 index tensors.
INTEGER_WORDS = {
    "condition": "a condition: a comparison of two values of the graph, inline (`where(gt(v1, v2), a, b)`), apart "
                 "or the same value so that no perturbation flips it; in graphs that may hold integer tensors, also "
                 "a constant int64 mask",
    "gather_index": "an int64 index of a's dimensions, no larger than a along the other dims, values "
                    "below a's size along dim, repeats likely; or argmax(v, dim, keepdim=True) of an untied value",
    "take_index": "an int64 index of any shape into a's flat elements, negative ones too; or argmax of an untied "
                  "value",
    "select_index": "a 1-d int64 index below a's size along dim, repeats likely (so that index_add collides); or "
                    "argmax along a dim of an untied 2-d value",
    "scatter_index": "an int64 index no larger than a, no position written twice along dim (which write wins "
                     "is unspecified)",
    "scatter_add_index": "an int64 index of a's dimensions, no larger than a along the other dims, repeated "
                         "positions likely: the additions collide",
    "like_index": "src of index's shape (scatter, scatter_add)",
    "index_add_source": "src of a's shape with index's length along dim (index_add)",
}

# Words for the operand list of an op of arity many.
JOINING_WORDS = {
    "joinable": "one to three values of one number of dimensions, equal but along dim (cat)",
    "stackable": "one to three values of one shape (stack)",
}

# How an op is drawn when it is not drawn on its own: inside an operand of another op.
DRAWN_AS = {
    "condition": "inside the condition of where or masked_fill (an integer result)",
    "index": "inside the index operand of gather, take, index_select or index_add (an int64 result)",
    "factor": "around the first operand of a two-operand op, as detach(v1) * v2 (no gradient flows through it; "
              "the oracle holds it constant at the drawn point)",
}


# -- attribute words --------------------------------------------------------------------------------------------


def _dims(ctx: Context, allow_none: bool = False) -> Any:
    n = ctx.a.value.ndim
    if n == 0:
        return OMIT if allow_none else REJECT
    choices = ((None,) if allow_none else ()) + tuple(range(n)) + tuple(range(-n, 0))
    return ctx.draw(st.sampled_from(choices), "dim")


def _size(ctx: Context, dim: int) -> int:
    return ctx.a.shape[dim]


def dim_word(ctx: Context) -> Any:
    """An op's own `dim` attribute, drawn without a word: None (everything) too where the op allows it."""
    spec = ctx.entry.get("attributes", {}).get("dim", {})
    return _dims(ctx, allow_none=spec.get("default") is None and not spec.get("required"))


def _new_dim(ctx: Context) -> Any:
    n = ctx.a.value.ndim
    return ctx.draw(st.integers(-(n + 1), n), "new dim")


def _permutation(ctx: Context) -> Any:
    n = ctx.a.value.ndim
    if n == 0:
        return REJECT
    return tuple(ctx.draw(st.permutations(range(n)), "permutation"))


def _dim_subset(ctx: Context) -> Any:
    n = ctx.a.value.ndim
    if n == 0:
        return REJECT
    return tuple(ctx.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True), "dims"))


def _roll_dim(ctx: Context) -> Any:
    return _dims(ctx)


def _shift(ctx: Context) -> Any:
    return ctx.draw(st.integers(-5, 5), "shift")


def _position(ctx: Context) -> Any:
    size = _size(ctx, ctx.attrs["dim"])
    return ctx.draw(st.integers(-size, size - 1), "position")


def _start(ctx: Context) -> Any:
    return ctx.draw(st.integers(0, _size(ctx, ctx.attrs["dim"]) - 1), "start")


def _length(ctx: Context) -> Any:
    return ctx.draw(st.integers(1, _size(ctx, ctx.attrs["dim"]) - ctx.attrs["start"]), "length")


def _split_size(ctx: Context) -> Any:
    return ctx.draw(st.integers(1, _size(ctx, ctx.attrs.get("dim", 0)) + 1), "split size")


def _chunks(ctx: Context) -> Any:
    return ctx.draw(st.integers(1, _size(ctx, ctx.attrs.get("dim", 0)) + 1), "chunks")


def _counts(ctx: Context, minimum: int, maximum: int, what: str) -> Any:
    length = ctx.draw(st.integers(minimum, maximum), f"length of {what}")
    counts = tuple(ctx.draw(st.lists(st.integers(1, 2), min_size=length, max_size=length), what))
    if ctx.a.value.size * math.prod(counts) > MAX_ELEMENTS:
        return REJECT
    return counts


def _repeats(ctx: Context) -> Any:
    n = ctx.a.value.ndim
    return _counts(ctx, max(n, 1), n + 1, "repeats")  # PyTorch's repeat: at least one count per dim


def _reps(ctx: Context) -> Any:
    n = ctx.a.value.ndim
    return _counts(ctx, 1, n + 1, "reps")  # NumPy's tile pads reps with ones in front


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _reshape(ctx: Context) -> Any:
    """Another shape of a's elements, one dim sometimes written -1."""
    remaining, shape = ctx.a.value.size, []
    for index in range(ctx.draw(st.integers(1, 3), "rank of the new shape") - 1):
        factor = ctx.draw(st.sampled_from(_divisors(remaining)), f"factor {index} of the new shape")
        shape.append(factor)
        remaining //= factor
    shape.append(remaining)
    if ctx.draw(st.booleans(), "a -1 in the new shape"):
        shape[ctx.draw(st.integers(0, len(shape) - 1), "place of the -1")] = -1
    return tuple(shape)


def _grown(ctx: Context, keep: int | None) -> Any:
    """A shape a broadcasts to: its dims of size 1 grown, perhaps a new leading dim; `keep` (-1) for a dim kept."""
    shape = []
    for index, size in enumerate(ctx.a.shape):
        options = (1, 2, 3) if size == 1 else (size,)
        size = ctx.draw(st.sampled_from(options + ((keep,) if keep is not None else ())), f"size {index}")
        shape.append(size)
    lead = ctx.draw(st.sampled_from(((), (2,), (1,), (2, 1))), "new leading dims")
    result = (*lead, *shape)
    if math.prod(abs(s) if s != -1 else 1 for s in result) * max(ctx.a.value.size, 1) > MAX_ELEMENTS * 4:
        return REJECT
    return result


def _offset(ctx: Context) -> Any:
    """A diagonal that is not empty: between -(rows - 1) and columns - 1 of the matrix it is read from."""
    if ctx.op == "diag" and ctx.a.value.ndim == 1:
        return ctx.draw(st.integers(-1, 2), "diagonal")
    if ctx.op == "diagonal":
        rows, cols = ctx.a.shape[ctx.attrs["dim1"]], ctx.a.shape[ctx.attrs["dim2"]]
    else:
        rows, cols = ctx.a.shape[-2:]
    return ctx.draw(st.integers(-(rows - 1), cols - 1), "diagonal")


def _other_dim(ctx: Context) -> Any:
    n, first = ctx.a.value.ndim, ctx.attrs["dim1"] % ctx.a.value.ndim
    others = [d for d in range(n) if d != first]
    return ctx.draw(st.sampled_from(others + [d - n for d in others]), "second dim")


def _lower_bound(ctx: Context) -> Any:
    return ctx.draw(st.sampled_from((None, -1.0, -0.5, 0.0, 0.5)), "min")


def _upper_bound(ctx: Context) -> Any:
    """Above min; left out only where min is given (clamp needs one of them)."""
    low = ctx.attrs.get("min")
    choices = tuple(b for b in (1.0, 1.5, 0.5, 0.0) if low is None or b > low)
    return ctx.draw(st.sampled_from(((None,) if low is not None else ()) + choices), "max")


def _subscript(ctx: Context) -> Any:
    """x[...]: per dim an int, a slice (with a step sometimes) or all of it, perhaps None or ... and at most one
    integer list, never empty. Ints beside the list stand next to it: separated from it by a slice, None or ...,
    NumPy and PyTorch put the indexed dims in different places, and the case language refuses that."""
    shape, parts = ctx.a.shape, []
    if not shape:
        return REJECT
    count = ctx.draw(st.integers(1, len(shape)), "indexed dims")
    use_list = ctx.draw(st.integers(0, 2), "integer list") == 0
    if ctx.draw(st.integers(0, 3), "ellipsis") == 0 and count < len(shape):
        parts.append("...")
        shape = shape[len(shape) - count:]
    for index, size in enumerate(shape[:count]):
        listed = any(isinstance(p, tuple) and p[0] == "list" for p in parts)
        kind = ctx.draw(st.sampled_from(("slice", "int", "all", "list" if use_list and not listed else "slice")),
                        f"subscript {index}")
        if kind == "int":
            parts.append(ctx.draw(st.integers(-size, size - 1), f"int {index}"))
        elif kind == "list":
            parts.append(("list", tuple(ctx.draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=4),
                                                 f"list {index}"))))
        elif kind == "all":
            parts.append(("slice", None, None, None))
        else:
            start = ctx.draw(st.integers(0, size - 1), f"start {index}")
            stop = ctx.draw(st.integers(start + 1, size), f"stop {index}")
            step = ctx.draw(st.sampled_from((None, 2)), f"step {index}")
            parts.append(("slice", start, stop, step))
        if ctx.draw(st.integers(0, 5), f"None after {index}") == 0:
            parts.append(None)
    return _ints_beside_the_list(parts)


def _ints_beside_the_list(parts: list) -> tuple:
    """Ints that do not stand next to the integer list (through other ints) become whole slices."""
    where = [p for p, part in enumerate(parts) if isinstance(part, tuple) and part[0] == "list"]
    if not where:
        return tuple(parts)
    low = high = where[0]
    while low > 0 and type(parts[low - 1]) is int:
        low -= 1
    while high + 1 < len(parts) and type(parts[high + 1]) is int:
        high += 1
    return tuple(("slice", None, None, None) if type(part) is int and not low <= p <= high else part
                 for p, part in enumerate(parts))


ATTRIBUTE_WORDS: dict[str, tuple[str, Callable[[Context], Any]]] = {
    "dim": ("a dim of a (negative too); an op's `dim` attribute is drawn so without a word, None too where the "
            "op allows it", lambda c: _dims(c)),
    "new_dim": ("a dim of the result: -(n + 1) to n (unsqueeze, stack)", _new_dim),
    "permutation": ("a permutation of a's dims drawn from all of S_n, not only swaps", _permutation),
    "dims": ("a non-empty set of a's dims in any order (flip)", _dim_subset),
    "roll_dim": ("a dim of a (roll)", _roll_dim),
    "shift": ("-5 to 5, beyond the size too (roll)", _shift),
    "position": ("an index along dim, negative too (select)", _position),
    "start": ("a start along dim (narrow)", _start),
    "length": ("a length that fits after start (narrow)", _length),
    "split_size": ("1 to the size along dim + 1 (split)", _split_size),
    "chunks": ("1 to the size along dim + 1 (chunk)", _chunks),
    "repeats": ("one count of 1 or 2 per dim, perhaps one more (repeat)", _repeats),
    "reps": ("counts of 1 or 2, fewer or more than a's dims (tile)", _reps),
    "reshape": ("another shape of a's elements, a -1 sometimes (reshape, view)", _reshape),
    "expand": ("a shape a expands to: size-1 dims grown, -1 for a dim kept, new leading dims", lambda c: _grown(c, -1)),
    "broadcast": ("a shape a broadcasts to (broadcast_to)", lambda c: _grown(c, None)),
    "offset": ("a diagonal that is not empty (diag, triu, tril, diagonal)", _offset),
    "other_dim": ("a dim other than dim1 (diagonal's dim2)", _other_dim),
    "lower_bound": ("clamp's min: -1, -0.5, 0 or 0.5, or left out", _lower_bound),
    "upper_bound": ("clamp's max: above min, or left out where min is given", _upper_bound),
    "fraction": ("0.25, 0.5, 0.75, -0.5 or 1.5 (lerp's weight)",
                 lambda c: c.draw(st.sampled_from((0.25, 0.5, 0.75, -0.5, 1.5)), "weight")),
    "fill": ("0, 1 or -2.5 (masked_fill's value)", lambda c: c.draw(st.sampled_from((0.0, 1.0, -2.5)), "value")),
    "subscript": ("ints, slices (with steps), None, ... and at most one integer list with ints only next to it, "
                  "never empty (getitem)",
                  _subscript),
}


def attribute(ctx: Context, word: str) -> Any:
    """An attribute drawn by `word` (None or OMIT: left at its default; REJECT: the op does not fit)."""
    return ATTRIBUTE_WORDS[word][1](ctx)


# -- integer operands: conditions and indices -------------------------------------------------------------------


def condition(ctx: Context, fits: Callable[[tuple], bool]) -> Node | None:
    """A condition whose shape `fits`: a comparison of two values (inline) or, in graphs that may hold integer
    tensors, a constant mask."""
    builder = ctx.builder
    kinds = list(builder.inline_ops("condition")) + (["mask"] if builder.indexing else [])
    if not kinds:
        return None
    kind = ctx.draw(st.sampled_from(kinds), "condition")
    if kind == "mask":
        shape = ctx.draw(st.sampled_from([s for s in _reduced_shapes(ctx.a.shape) if fits(s)]), "shape of the mask")
        values = ctx.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)), "mask")
        return Node(builder.constant(values, "int64"), values, integer=True)
    candidates = [node for node in builder.nodes if fits(node.shape)]
    if not candidates:
        return None
    left = candidates[ctx.draw(st.integers(0, len(candidates) - 1), "compared value")]
    mode = ctx.draw(st.sampled_from(("other", "same", "constant")), "compared with")
    right = None
    if mode == "same":
        right = left
    elif mode == "other":
        others = [node for node in builder.nodes if node is not left and _broadcasts(left.shape, node.shape)
                  and fits(np.broadcast_shapes(left.shape, node.shape))
                  and np.all(np.abs(left.value - node.value) > MARGIN)]
        if others:
            right = others[ctx.draw(st.integers(0, len(others) - 1), "other compared value")]
    if right is None:
        values = left.value + builder.leaf_value(left.shape, "constant compared with")
        right = Node(builder.constant(values), values)
    value = np.asarray(numpy_forward(kind, [left.value, right.value], {})).astype(np.int64)
    return Node(f"{kind}({left.text}, {right.text})", value, integer=True)


def _reduced_shapes(shape: tuple) -> list[tuple]:
    """shape and shapes that broadcast to it: trailing dims, and dims of size 1."""
    found = [shape]
    for start in range(1, len(shape) + 1):
        found.append(shape[start:])
    for index in range(len(shape)):
        found.append(shape[:index] + (1,) + shape[index + 1:])
    return list(dict.fromkeys(found))


def _int_tensor(ctx: Context, shape: tuple, low: int, high: int, what: str) -> Node:
    values = ctx.draw(hnp.arrays(np.int64, shape, elements=st.integers(low, high)), what)
    return Node(ctx.builder.constant(values, "int64"), values, integer=True)


def _argmax_index(ctx: Context, shape_fits: Callable[[tuple, int | None], bool], dims: Callable[[int], list],
                  keepdim: bool) -> Node | None:
    """argmax or argmin (inline) of an untied value of the graph whose result fits, if any."""
    ops = ctx.builder.inline_ops("index")
    if not ops:
        return None
    options = []
    for node in ctx.builder.nodes:
        for dim in dims(node.value.ndim):
            if shape_fits(node.shape, dim) and _untied(node.value, Context(ctx.builder, "", {}, "", "a",
                                                                           {"a": node}, {"dim": dim})):
                options.append((node, dim))
    if not options:
        return None
    node, dim = options[ctx.draw(st.integers(0, len(options) - 1), "argument of the index")]
    op = ctx.draw(st.sampled_from(sorted(ops)), "index op")
    attrs = {} if dim is None else ({"dim": dim, "keepdim": True} if keepdim else {"dim": dim})
    value = np.asarray(numpy_forward(op, [node.value], attrs), dtype=np.int64)
    keywords = "".join(f", {key}={val!r}" for key, val in attrs.items())
    return Node(f"{op}({node.text}{keywords})", value, integer=True)


def _inline_first(ctx: Context) -> bool:
    return ctx.draw(st.integers(0, 2), "index from argmax") == 0


def gather_index(ctx: Context) -> Node | None:
    a, dim = ctx.a, ctx.attrs.get("dim", 0) % max(ctx.a.value.ndim, 1)
    if a.value.ndim == 0:
        return None
    if _inline_first(ctx):
        def fits(shape, d):
            return len(shape) == a.value.ndim and all(s <= t for s, t in zip(shape, a.shape, strict=True))
        found = _argmax_index(ctx, fits, lambda n: [dim] if n == a.value.ndim else [], keepdim=True)
        if found is not None:
            return found
    shape = tuple(ctx.draw(st.integers(1, size), f"index size {d}") if d != dim else
                  ctx.draw(st.integers(1, 4), "index size along dim") for d, size in enumerate(a.shape))
    return _int_tensor(ctx, shape, 0, a.shape[dim] - 1, "index")


def take_index(ctx: Context) -> Node | None:
    size = ctx.a.value.size
    if _inline_first(ctx):
        found = _argmax_index(ctx, lambda shape, d: (math.prod(shape) if d is None else shape[d]) <= size,
                              lambda n: [None, *range(n)], keepdim=False)
        if found is not None:
            return found
    shape = ctx.draw(st.sampled_from(((), (2,), (3,), (2, 2))), "shape of the index")
    return _int_tensor(ctx, shape, -size, size - 1, "index")


def select_index(ctx: Context) -> Node | None:
    a = ctx.a
    if a.value.ndim == 0:
        return None
    size = a.shape[ctx.attrs.get("dim", 0)]
    if _inline_first(ctx):
        found = _argmax_index(ctx, lambda shape, d: len(shape) == 2 and shape[d] <= size, lambda n: [0, 1] if n == 2
                              else [], keepdim=False)
        if found is not None:
            return found
    length = ctx.draw(st.integers(1, 4), "length of the index")
    return _int_tensor(ctx, (length,), 0, size - 1, "index")


def scatter_index(ctx: Context, unique: bool) -> Node | None:
    a = ctx.a
    if a.value.ndim == 0:
        return None
    dim = ctx.attrs.get("dim", 0) % a.value.ndim
    shape = tuple(ctx.draw(st.integers(1, size), f"index size {d}") if d != dim or unique else
                  ctx.draw(st.integers(1, 4), "index size along dim") for d, size in enumerate(a.shape))
    if not unique:
        return _int_tensor(ctx, shape, 0, a.shape[dim] - 1, "index")
    moved = np.moveaxis(np.zeros(shape, np.int64), dim, -1)
    rows = moved.reshape(-1, shape[dim])
    for row in range(rows.shape[0]):  # each line along dim writes distinct positions
        rows[row] = ctx.draw(st.permutations(range(a.shape[dim])), f"positions of line {row}")[:shape[dim]]
    values = np.ascontiguousarray(np.moveaxis(rows.reshape(moved.shape), -1, dim))
    return Node(ctx.builder.constant(values, "int64"), values, integer=True)


INDEX_RECIPES = {
    "gather_index": gather_index,
    "take_index": take_index,
    "select_index": select_index,
    "scatter_index": lambda ctx: scatter_index(ctx, unique=True),
    "scatter_add_index": lambda ctx: scatter_index(ctx, unique=False),
}


def source_shape(ctx: Context, word: str) -> tuple:
    """The shape a src operand must have: index's (scatter), or a's with index's length along dim (index_add)."""
    index = ctx.operands["index"].shape
    if word == "like_index":
        return index
    shape = list(ctx.a.shape)
    shape[ctx.attrs.get("dim", 0)] = index[0]
    return tuple(shape)


def words() -> dict[str, str]:
    """Every word the `fuzz:` field may use, with what it means (for the schema test and the docs)."""
    table = {word: spec.description for word, spec in {**VALUE_WORDS, **SHAPE_WORDS}.items()}
    table.update(INTEGER_WORDS)
    table.update(JOINING_WORDS)
    table.update({word: description for word, (description, _) in ATTRIBUTE_WORDS.items()})
    return table
