"""Random points exactly at the kinks of the vocabulary, and the gradient the KINK rules give there.

Finite differences cannot judge a kink, so this property does not use them: it draws
tensors whose elements sit at a kink with high probability (zeros for relu, ties for max, min,
amax and amin, values on a clamp bound, the origin for atan2 and pow), differentiates
`sum(op(x) * w)` on the engine, and compares with the gradient the convention gives, computed
here in numpy from the rule book's sentences (KINK-1, KINK-3 to KINK-8). Exact zeros in a
product are no kink (prod is a polynomial): the finite-difference properties draw those.
Reductions along the last dim keep it, so that `op(x) * w` broadcasts and each row's
reduction carries the weight sum(w) of its row. Only engines that declare
`torch_kink_conventions` are held to it, since the conventions are PyTorch's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gradspec.language.loader import build_case
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@dataclass(frozen=True)
class Kink:
    call: str  # the compute step, over x (and y for two operands)
    operands: int
    values: tuple[float, ...]  # what elements are drawn from: the kink itself and a few points either side
    gradient: Callable  # (x, y, w) -> the expected gradient(s) by the convention
    rule: str


def _split_ties(x, y, w, first_wins):
    return (w * (first_wins(x, y) + 0.5 * (x == y)), w * (first_wins(y, x) + 0.5 * (x == y)))


def _all_ties(extreme):
    """KINK-3: sum(max(x) * w) = max(x) sum(w); tied maxima (minima) share sum(w) evenly."""
    def gradient(x, y, w):
        ties = x == extreme(x)
        return (ties / ties.sum() * float(np.sum(w)),)
    return gradient


def _row_ties(extreme):
    """KINK-3: along the last dim, each row's weight sum(w) shared evenly among its tied extremes."""
    def gradient(x, y, w):
        ties = x == extreme(x, axis=-1, keepdims=True)
        return (ties / ties.sum(axis=-1, keepdims=True) * np.sum(w, axis=-1, keepdims=True),)
    return gradient


def _first_extreme(extreme):
    """KINK-7: along the last dim, each row's weight goes wholly to its first tied extreme."""
    def gradient(x, y, w):
        first = np.zeros_like(x)
        np.put_along_axis(first, extreme(x, axis=-1, keepdims=True), 1.0, axis=-1)
        return (first * np.sum(w, axis=-1, keepdims=True),)
    return gradient


def _norm_two(x, y, w):
    """KINK-8: x / norm along the last dim, 0 for a row that is all zeros."""
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    return (np.divide(x, norm, out=np.zeros_like(x), where=norm != 0) * np.sum(w, axis=-1, keepdims=True),)


def _norm_one(x, y, w):
    """KINK-8: sign(x), 0 at a zero element (sign's convention), times each row's weight."""
    return (np.sign(x) * np.sum(w, axis=-1, keepdims=True),)


def _atan2(x, y, w):
    """KINK-6: atan2(x, y)'s derivatives y / (x^2 + y^2) and -x / (x^2 + y^2), both 0 at the origin."""
    r = x * x + y * y
    safe = np.where(r == 0, 1.0, r)
    return (np.where(r == 0, 0.0, w * y / safe), np.where(r == 0, 0.0, -w * x / safe))


def _pow(x, y, w):
    """DERIV-1 and KINK-4: d/da = b a^(b - 1), 0 where b == 0; d/db = log(a) a^b, 0 where a == 0 (b >= 0)."""
    with np.errstate(all="ignore"):
        da = np.where(y == 0, 0.0, y * np.power(x, y - 1))
        db = np.where(x == 0, 0.0, np.log(np.where(x == 0, 1.0, x)) * np.power(x, y))
    return (w * da, w * db)


def _norm_inf(x, y, w):
    """KINK-8: sign(x) shared evenly among a row's elements of largest magnitude."""
    ties = np.abs(x) == np.max(np.abs(x), axis=-1, keepdims=True)
    return (np.sign(x) * ties / ties.sum(axis=-1, keepdims=True) * np.sum(w, axis=-1, keepdims=True),)


KINKS = {
    "max": Kink("max(x)", 1, (1.0, 0.0, -1.0), _all_ties(np.max), "KINK-3"),
    "min": Kink("min(x)", 1, (1.0, 0.0, -1.0), _all_ties(np.min), "KINK-3"),
    "amax_all": Kink("amax(x)", 1, (1.0, 0.0, -1.0), _all_ties(np.max), "KINK-3"),
    "relu": Kink("relu(x)", 1, (0.0, -1.0, 1.0), lambda x, y, w: (w * (x > 0),), "KINK-1"),
    "abs": Kink("abs(x)", 1, (0.0, -1.0, 1.0), lambda x, y, w: (w * np.sign(x),), "KINK-1"),
    "leaky_relu": Kink("leaky_relu(x, negative_slope=0.1)", 1, (0.0, -1.0, 1.0),
                       lambda x, y, w: (w * np.where(x > 0, 1.0, 0.1),), "KINK-5"),
    "elu": Kink("elu(x, alpha=1.5)", 1, (0.0, -1.0, 1.0),
                lambda x, y, w: (w * np.where(x > 0, 1.0, 1.5 * np.exp(np.minimum(x, 0))),), "KINK-5"),
    "clamp": Kink("clamp(x, min=-1, max=1)", 1, (-1.0, 1.0, -2.0, 0.5, 2.0),
                  lambda x, y, w: (w * ((x > -1) & (x < 1)),), "KINK-5"),
    "clamp_min": Kink("clamp(x, min=0.5)", 1, (0.5, 0.0, 1.0), lambda x, y, w: (w * (x > 0.5),), "KINK-5"),
    "clamp_max": Kink("clamp(x, max=-0.5)", 1, (-0.5, 0.0, -1.0), lambda x, y, w: (w * (x < -0.5),), "KINK-5"),
    "floor": Kink("floor(x)", 1, (0.0, 1.0, -1.0, 0.5), lambda x, y, w: (w * 0,), "KINK-5"),
    "ceil": Kink("ceil(x)", 1, (0.0, 1.0, -1.0, 0.5), lambda x, y, w: (w * 0,), "KINK-5"),
    "trunc": Kink("trunc(x)", 1, (0.0, 1.0, -1.0, 0.5), lambda x, y, w: (w * 0,), "KINK-5"),
    "round": Kink("round(x)", 1, (0.5, -0.5, 1.5, 1.0), lambda x, y, w: (w * 0,), "KINK-5"),
    "sign": Kink("sign(x)", 1, (0.0, -1.0, 1.0), lambda x, y, w: (w * 0,), "KINK-5"),
    "maximum": Kink("maximum(x, y)", 2, (0.0, 1.0, -1.0),
                    lambda x, y, w: _split_ties(x, y, w, np.greater), "KINK-6"),
    "minimum": Kink("minimum(x, y)", 2, (0.0, 1.0, -1.0),
                    lambda x, y, w: _split_ties(x, y, w, np.less), "KINK-6"),
    "amax": Kink("amax(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0), _row_ties(np.max), "KINK-3"),
    "amin": Kink("amin(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0), _row_ties(np.min), "KINK-3"),
    "atan2": Kink("atan2(x, y)", 2, (0.0, 1.0, -1.0), _atan2, "KINK-6"),
    "pow": Kink("pow(x, y)", 2, (0.0, 1.0, 2.0), _pow, "KINK-4"),
    "max_dim": Kink("max(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0), _first_extreme(np.argmax), "KINK-7"),
    "min_dim": Kink("min(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0), _first_extreme(np.argmin), "KINK-7"),
    "norm": Kink("norm(x, dim=-1, keepdim=True)", 1, (0.0, 0.0, 0.0, 1.0, -2.0), _norm_two, "KINK-8"),
    "norm_one": Kink("norm(x, p=1, dim=-1, keepdim=True)", 1, (0.0, 0.0, 1.0, -2.0), _norm_one, "KINK-8"),
    "norm_inf": Kink('norm(x, p="inf", dim=-1, keepdim=True)', 1, (1.0, -1.0, 0.5, 0.0), _norm_inf, "KINK-8"),
}
# The vocabulary op each kink entry calls, where the entry's name is not the op's.
OPS_OF = {"max_dim": "max", "min_dim": "min", "norm_inf": "norm", "norm_one": "norm", "amax_all": "amax",
          "clamp_min": "clamp", "clamp_max": "clamp"}


@dataclass(frozen=True)
class KinkDraw:
    op: str
    x: np.ndarray
    y: np.ndarray | None
    weights: np.ndarray


def drawable(exclude: frozenset = frozenset()) -> list[str]:
    """The kinks whose op the engine has: the property is not applicable where there is none."""
    return sorted(name for name in KINKS if OPS_OF.get(name, name) not in exclude)


@st.composite
def kink_draws(draw, exclude: frozenset = frozenset()) -> KinkDraw:
    """An op with kinks (not one the engine lacks) and operands whose elements sit on its kinks often."""
    op = draw(st.sampled_from(drawable(exclude)), label="op")
    kink = KINKS[op]
    shape = draw(st.sampled_from([(3,), (2, 3)]), label="shape")
    elements = st.sampled_from(kink.values)
    x = draw(hnp.arrays(np.float64, shape, elements=elements), label="x")
    y = draw(hnp.arrays(np.float64, shape, elements=elements), label="y") if kink.operands == 2 else None
    weights = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from((1.0, 2.0, -3.0))), label="weights")
    return KinkDraw(op, x, y, weights)


class KinkMismatch(AssertionError):
    """The engine's gradient at a kink is not the rule book's convention."""


def case_of(example: KinkDraw) -> dict:
    """The draw as a case: the gradient of sum(op(x) * weights) with the convention's values expected."""
    kink = KINKS[example.op]
    expected = kink.gradient(example.x, example.y, example.weights)
    names = ["x", "y"][:kink.operands]
    tensors = {"x": {"value": example.x.tolist(), "requires_grad": True}, "w": {"value": example.weights.tolist()}}
    if example.y is not None:
        tensors["y"] = {"value": example.y.tolist(), "requires_grad": True}
    return {
        "schema_version": 1, "title": f"fuzz: the gradient of {example.op} exactly at its kinks",
        "rules": [kink.rule], "source": "hypothesis draw (harness/fuzz/kinks.py)",
        "derivation": f"the convention of {kink.rule}, applied elementwise to the drawn points",
        # a derivative step: grad where the engine has it, else backward into .grad (engines without grad too)
        "capabilities": ["derivatives", "torch_kink_conventions"], "dtypes": ["float64"], "tensors": tensors,
        "steps": [f"s = sum({kink.call} * w)", {"derivative": {"of": "s", "wrt": names, "as": [f"g{n}" for n in names]}},
                  {"expect": {"value": {f"g{n}": np.asarray(e, dtype=float).tolist()
                                        for n, e in zip(names, expected, strict=True)}}}],
    }


def check(example: KinkDraw, adapter) -> None:
    """Run the draw's case on the adapter; a failing expectation is a KinkMismatch."""
    from gradspec.running.interpreter import ERROR, PASSED, AdapterFault, run_case

    outcome = run_case(build_case(case_of(example), "<kink draw>", "fuzz/kink.yaml"), adapter)
    if outcome.status == ERROR:  # the adapter's or gradspec's own code raised: no verdict, nothing to stage
        raise AdapterFault(f"{example.op} at its kinks: {outcome.report()}")
    if outcome.status != PASSED:
        raise KinkMismatch(f"{example.op} at its kinks: {outcome.report()}")
