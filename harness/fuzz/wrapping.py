"""Custom functions are transparent: wrapping part of a graph in one changes no derivative (CUSTOM-2, CUSTOM-10).

A drawn graph's output goes through a random chain of elementwise ops twice over: once as
the ops themselves, once as a case function `Chain` whose backward is the chain's own
derivative, written out step by step from a table (it recomputes the chain from the saved
input, then multiplies by each op's derivative in reverse). Both versions must give the
engine the same gradients of every leaf and, with create_graph, the same Hessian-vector
products, since the custom backward is made of differentiable steps. The engine is
compared with itself, so this runs on every engine with custom functions.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import numpy as np
from gradspec.fuzz.staging import plain
from gradspec.fuzz.strategies import graphs, leaf_values
from gradspec.language.case import as_list
from gradspec.language.loader import build_case
from gradspec.running.interpreter import Session
from hypothesis import reject
from hypothesis import strategies as st

RTOL, ATOL = 1e-9, 1e-12
# Each op of a chain, on a value written {u}, and its derivative in that value. exp halves its argument and
# square is drawn at most once, so chains stay far from overflow.
CHAIN_OPS = {
    "sin": ("sin({u})", "cos({u})"),
    "cos": ("cos({u})", "0 - sin({u})"),
    "tanh": ("tanh({u})", "1 - tanh({u}) * tanh({u})"),
    "sigmoid": ("sigmoid({u})", "sigmoid({u}) * (1 - sigmoid({u}))"),
    "exp": ("exp({u} * 0.5)", "exp({u} * 0.5) * 0.5"),
    "square": ("{u} * {u}", "{u} * 2"),
    "scale": ("{u} * -1.5", "-1.5"),
}


def _calls(*texts: str) -> set[str]:
    """The vocabulary ops that step texts call by name."""
    return set(re.findall(r"([a-z_]\w*)\(", " ".join(texts)))


class NotTransparent(AssertionError):
    """The custom-wrapped graph and the plain one gave the engine different derivatives."""


@dataclass(frozen=True)
class Wrapped:
    custom: dict  # the case with the chain as a call of the case function Chain
    plain: dict  # the same case with the chain's ops inline
    leaves: tuple[str, ...]


def chain_function(chain: list[str]) -> dict:
    """The case function for `chain`: forward the ops, backward the chain rule over recomputed values."""
    values = ["x"] + [f"u{index}" for index in range(1, len(chain))] + ["y"]
    forward = [f"{values[i + 1]} = {CHAIN_OPS[op][0].format(u=values[i])}" for i, op in enumerate(chain)]
    backward = forward[:-1]  # the intermediate values again, from the saved input
    gradient = "grad_y"
    for index in reversed(range(len(chain))):
        target = "gx" if index == 0 else f"g{index}"
        backward.append(f"{target} = {gradient} * ({CHAIN_OPS[chain[index]][1].format(u=values[index])})")
        gradient = target
    return {"inputs": ["x"], "forward": forward, "outputs": ["y"], "save": ["x"], "backward": backward,
            "returns": ["gx"]}


@st.composite
def wrapped_graphs(draw, exclude: frozenset = frozenset(), second_order: bool = True) -> Wrapped:
    """A graph whose output goes through a chain of ops, inline and wrapped in a custom function; with
    `second_order` (an engine with grad and create_graph) Hessian-vector products too, else first derivatives by a
    `derivative` step (grad, or backward into .grad)."""
    graph = draw(graphs(max_ops=3, exclude=exclude))
    usable = sorted(op for op, texts in CHAIN_OPS.items() if not _calls(*texts) & exclude)  # "scale" calls none
    chain = draw(st.lists(st.sampled_from(usable), min_size=1, max_size=3), label="chain")
    if chain.count("square") + chain.count("exp") > 1:
        chain = [op for op in chain if op not in ("square", "exp")] or ["scale"]
    leaves = list(graph.leaves)
    base = copy.deepcopy(graph.data)
    base["capabilities"] = sorted((set(graph.data["capabilities"]) - {"grad"})  # what its ops need (detach, ...)
                                  | ({"grad", "create_graph"} if second_order else {"derivatives"}))
    for leaf in leaves:  # a direction for the Hessian-vector product, one per leaf
        shape = np.shape(base["tensors"][leaf]["value"])
        base["tensors"][f"d_{leaf}"] = {"value": draw(leaf_values(shape), label=f"direction for {leaf}").tolist()}
    if graph.grad_output is not None:
        base["tensors"]["weights"] = {"value": [list(r) if isinstance(r, tuple) else r for r in graph.grad_output]}
    reach_all = " + ".join(f"sum({leaf}) * 0" for leaf in leaves)  # every leaf is an input of the loss
    weigh = "" if graph.grad_output is None else " * weights"

    def case(chain_steps: list[str], output: str) -> dict:
        data = copy.deepcopy(base)
        gradients, second = [f"g_{leaf}" for leaf in leaves], [f"h_{leaf}" for leaf in leaves]
        product = " + ".join(f"sum(g_{leaf} * d_{leaf}) + sum({leaf}) * 0" for leaf in leaves)
        data["steps"] = [*base["steps"], *chain_steps, f"loss = sum({output}{weigh}) + {reach_all}"]
        if not second_order:
            data["steps"].append({"derivative": {"of": "loss", "wrt": list(leaves), "as": gradients}})
            return data
        data["steps"] += [{"grad": {"outputs": "loss", "inputs": list(leaves), "create_graph": True, "as": gradients}},
                          f"hv = {product}",
                          {"grad": {"outputs": "hv", "inputs": list(leaves), "as": second}}]
        return data

    custom = case([f"w = Chain({graph.output})"], "w")
    custom["functions"] = {"Chain": chain_function(chain)}
    reads = draw(st.integers(1, 2), label="reads of the saved values")  # each read unpacks them (SAVED-2)
    if reads > 1:
        custom["functions"]["Chain"]["reads_saved"] = reads
    custom["capabilities"] = [*base["capabilities"], "custom_function"]
    inline, value = [], graph.output
    for index, op in enumerate(chain):
        inline.append(f"c{index} = {CHAIN_OPS[op][0].format(u=value)}")
        value = f"c{index}"
    return Wrapped(custom, case(inline, value), tuple(leaves))


class Refused(Exception):
    """The engine raised while computing the derivatives."""


def results(data: dict, adapter) -> dict[str, np.ndarray | None]:
    """Every gradient and Hessian-vector product the case computes on the engine."""
    case = build_case(data, "<fuzz wrapping>", "fuzz/wrapping.yaml")
    session = Session(case, adapter)
    for step in case.steps:
        raised = session.run(step)
        if raised is not None:
            raise Refused(f"{step.describe()} raised {raised}: {session.last_error!r}")
    names = [name for step in case.steps if step.kind in ("grad", "derivative")
             for name in as_list(step.args[step.kind]["as"])]
    return {name: session.value(name) for name in names}


def check(example: Wrapped, adapter) -> None:
    """The custom-wrapped graph's derivatives must equal the plain graph's on the same engine.

    A draw whose plain version the engine cannot differentiate (an op without a second derivative) judges nothing
    here: the finite-difference properties report that.
    """
    try:
        expected = results(example.plain, adapter)
    except Refused:
        reject()
    try:
        got = results(example.custom, adapter)
    except Refused as refused:
        raise NotTransparent(f"with Chain only, {refused}") from None
    for name, want in expected.items():
        have = got[name]
        if (want is None) != (have is None) or (want is not None and not (
                want.shape == have.shape and np.allclose(have, want, rtol=RTOL, atol=ATOL, equal_nan=True))):
            kind = "gradient" if name.startswith("g_") else "Hessian-vector product"
            raise NotTransparent(f"{kind} {name}: {have} through Chain, {want} without it "
                                 f"(Chain: {example.custom['functions']['Chain']['forward']})")


def case_of(example: Wrapped, adapter) -> dict:
    """The custom-wrapped case, expecting what the same engine gave without the custom function."""
    data = copy.deepcopy(example.custom)
    expected = results(example.plain, adapter)
    data["steps"].append({"expect": {"value": {name: plain(value) for name, value in expected.items()}}})
    data.update(title=f"fuzz: a custom function with its own derivative changes {adapter.name}'s derivatives",
                rules=["CUSTOM-2", "CUSTOM-10"],
                derivation="Expected values are what the same engine computed with Chain's ops written inline. "
                           "Derive them by hand before moving this case into cases/.",
                tolerance={"rtol": RTOL, "atol": ATOL, "reason": "one engine in float64, two spellings"})
    return data
