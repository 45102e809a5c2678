"""Random points exactly at the kinks of the vocabulary, and the gradient the KINK rules give there.

Finite differences cannot judge a kink, so this property does not use them: it draws
tensors whose elements sit at a kink with high probability (zeros for relu, ties for max,
values on a clamp bound), differentiates `sum(op(x) * w)` on the engine, and compares with
the gradient the convention gives, computed here in numpy from the rule book's sentences
(KINK-1, KINK-3, KINK-5 to KINK-8). Reductions along the last dim keep it, so that
`op(x) * w` broadcasts and each row's reduction carries the weight sum(w) of its row. Only
engines that declare `torch_kink_conventions` are held to it, since the conventions are PyTorch's.
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


def _max_ties(x, y, w):
    """KINK-3: sum(max(x) * w) = max(x) sum(w); tied maxima share sum(w) evenly."""
    ties = x == x.max()
    return (ties / ties.sum() * float(np.sum(w)),)


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


def _norm_inf(x, y, w):
    """KINK-8: sign(x) shared evenly among a row's elements of largest magnitude."""
    ties = np.abs(x) == np.max(np.abs(x), axis=-1, keepdims=True)
    return (np.sign(x) * ties / ties.sum(axis=-1, keepdims=True) * np.sum(w, axis=-1, keepdims=True),)


KINKS = {
    "max": Kink("max(x)", 1, (1.0, 0.0, -1.0), _max_ties, "KINK-3"),
    "relu": Kink("relu(x)", 1, (0.0, -1.0, 1.0), lambda x, y, w: (w * (x > 0),), "KINK-1"),
    "abs": Kink("abs(x)", 1, (0.0, -1.0, 1.0), lambda x, y, w: (w * np.sign(x),), "KINK-1"),
    "leaky_relu": Kink("leaky_relu(x, negative_slope=0.1)", 1, (0.0, -1.0, 1.0),
                       lambda x, y, w: (w * np.where(x > 0, 1.0, 0.1),), "KINK-5"),
    "elu": Kink("elu(x, alpha=1.5)", 1, (0.0, -1.0, 1.0),
                lambda x, y, w: (w * np.where(x > 0, 1.0, 1.5 * np.exp(np.minimum(x, 0))),), "KINK-5"),
    "clamp": Kink("clamp(x, min=-1, max=1)", 1, (-1.0, 1.0, -2.0, 0.5, 2.0),
                  lambda x, y, w: (w * ((x > -1) & (x < 1)),), "KINK-5"),
    "floor": Kink("floor(x)", 1, (0.0, 1.0, -1.0, 0.5), lambda x, y, w: (w * 0,), "KINK-5"),
    "round": Kink("round(x)", 1, (0.5, -0.5, 1.5, 1.0), lambda x, y, w: (w * 0,), "KINK-5"),
    "sign": Kink("sign(x)", 1, (0.0, -1.0, 1.0), lambda x, y, w: (w * 0,), "KINK-5"),
    "maximum": Kink("maximum(x, y)", 2, (0.0, 1.0, -1.0),
                    lambda x, y, w: _split_ties(x, y, w, np.greater), "KINK-6"),
    "minimum": Kink("minimum(x, y)", 2, (0.0, 1.0, -1.0),
                    lambda x, y, w: _split_ties(x, y, w, np.less), "KINK-6"),
    "amax": Kink("amax(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0),
                 lambda x, y, w: ((x == x.max(axis=-1, keepdims=True)) / (x == x.max(axis=-1, keepdims=True)).sum(
                     axis=-1, keepdims=True) * np.sum(w, axis=-1, keepdims=True),), "KINK-3"),
    "max_dim": Kink("max(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0), _first_extreme(np.argmax), "KINK-7"),
    "min_dim": Kink("min(x, dim=-1, keepdim=True)", 1, (1.0, 0.0, -1.0), _first_extreme(np.argmin), "KINK-7"),
    "norm": Kink("norm(x, dim=-1, keepdim=True)", 1, (0.0, 0.0, 0.0, 1.0, -2.0), _norm_two, "KINK-8"),
    "norm_inf": Kink('norm(x, p="inf", dim=-1, keepdim=True)', 1, (1.0, -1.0, 0.5, 0.0), _norm_inf, "KINK-8"),
}
# The vocabulary op each kink entry calls, where the entry's name is not the op's.
OPS_OF = {"max_dim": "max", "min_dim": "min", "norm_inf": "norm"}


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
    from gradspec.running.interpreter import PASSED, run_case

    outcome = run_case(build_case(case_of(example), "<kink draw>", "fuzz/kink.yaml"), adapter)
    if outcome.status != PASSED:
        raise KinkMismatch(f"{example.op} at its kinks: {outcome.report()}")
