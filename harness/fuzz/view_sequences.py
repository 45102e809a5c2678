"""Random programs of views, in-place updates, assignments and detaches, then autograd calls, for two engines to agree on.

A program starts from a leaf `x`, its non-leaf copy `b = x * 1` (often saved at once by
`p_b = b * b`) and a 0-d leaf `w`, and draws steps among: a view of something drawn so far
(slices, `select`, `narrow`, `unsqueeze`, `transpose`, `diagonal`, `unbind`), an in-place
update of a view, a base, a detached alias or an output of unbind (`t *= w`, `t += 2`), an
assignment into a subscript, a `detach`, a copy by an integer list with repeated indices, a
product that saves a value for backward, and a hook on `b` or on a product (never on a
view, whose hooks VIEW-9 leaves to the engine). The loss sums `b` (weighted), the products
and the copies; then come the calls of `sequences.calls`.

`sequences.compare` runs it on both engines, checking after every step the error kind
and the values of every name (aliasing shows there), and after every call .grad, grad's
results and hook calls: a base whose history is not rewritten, a version counter that is
not shared, or repeated indices that do not add up, all disagree with PyTorch.
"""

from __future__ import annotations

import numpy as np
from gradspec.fuzz.sequences import CAPABILITIES, Sequence, calls
from gradspec.fuzz.strategies import leaf_values
from gradspec.language.expressions import parse_statement
from gradspec.language.forwards import numpy_forward
from hypothesis import strategies as st

VIEW_CAPABILITIES = CAPABILITIES | {"views", "view_ops", "inplace", "version_counters", "setitem", "detach"}
RULES = ("VIEW-1", "VIEW-3", "VIEW-4", "VIEW-5", "VIEW-11")
# What a program's steps do, repeated to weigh them: views and in-place updates above all.
KINDS = ("view", "inplace", "view", "inplace", "setitem", "save", "inplace", "save", "detach", "copy", "unbind",
         "hook")
# The op each kind of step, and each kind of view, calls: an op the engine lacks is never drawn (every program
# multiplies and sums, as sequences.NEEDED_OPS says).
STEP_OPS = {"detach": "detach", "copy": "getitem", "unbind": "unbind"}
VIEW_OPS = {"slice": "getitem", "select": "select", "narrow": "narrow", "unsqueeze": "unsqueeze",
            "transpose": "transpose", "diagonal": "diagonal"}


@st.composite
def view_sequences(draw, max_steps: int = 8, max_calls: int = 3, exclude: frozenset = frozenset()) -> Sequence:
    """A program of views and in-place updates, then autograd calls; no step calls an op in `exclude`."""
    kinds = tuple(kind for kind in KINDS if STEP_OPS.get(kind) not in exclude)
    shape = draw(st.sampled_from([(4,), (2, 3)]), label="shape of x")
    x, w = draw(leaf_values(shape), label="value of x"), draw(leaf_values(()), label="value of w")
    weights = draw(leaf_values(shape), label="weights")
    tensors = {"x": {"value": x.tolist(), "requires_grad": True},
               "w": {"value": float(w), "requires_grad": True}, "weights": {"value": weights.tolist()}}
    steps = ["b = x * 1"]
    shapes = {"x": shape, "b": shape}  # every tensor name the program binds, with its shape
    targets = ["b"]  # what in-place updates may change: b, views, detached aliases, unbind outputs, copies
    views, summed = [], []  # views (no hooks on them); products and copies, which the loss sums
    if draw(st.booleans(), label="save b first"):  # then any later update through a view must reach its counter
        steps.append("p_b = b * b")
        shapes["p_b"], summed = shape, ["p_b"]
    for index in range(draw(st.integers(2, max_steps), label="steps")):
        kind = draw(st.sampled_from(kinds), label=f"step {index}")
        # updates and views mostly act on the newest view or alias, sometimes on the leaf x (leaf_inplace)
        pool = [*reversed(targets), "x"] if kind in ("view", "inplace", "setitem", "save") else sorted(shapes)
        if kind == "hook":  # on b or a product, before later updates: HOOK-13's old and new bindings
            steps.append({"register_hook": draw(st.sampled_from(["b", *(n for n in summed if n.startswith("p"))]),
                                                label=f"hooked tensor of step {index}"), "as": f"f{index}"})
            continue
        source = draw(st.sampled_from(pool), label=f"operand of step {index}")
        made = _step(draw, kind, source, shapes[source], index, exclude)
        if made is None:
            continue
        text, bound, role = made
        steps.append(text)
        for name in bound:
            shapes[name] = np.shape(_value_shape(text, shapes, name))
        if role in ("view", "alias"):
            targets += bound
            views += bound if role == "view" else []
        elif role == "summed":
            summed += bound
            targets += bound if text.startswith("k") else []
    terms = ["sum(b * weights)", *(f"sum({name})" for name in summed)]
    steps.append(f"loss = {' + '.join(terms)}")
    first_call = len(steps)
    hookable = ["b", *(name for name in summed if name.startswith("p"))]  # products, never views
    steps += draw(calls(["x", "w"], ["b", *views], hookable, max_calls, shapes={**shapes, "w": ()}))
    data = {
        "schema_version": 1,
        "title": "views and in-place updates drawn by gradspec's fuzzer",
        "rules": list(RULES),
        "source": "hypothesis draw (harness/fuzz/view_sequences.py)",
        "derivation": "to be filled in by whoever writes the case out",
        "capabilities": sorted(VIEW_CAPABILITIES),
        "dtypes": ["float64"],
        "tensors": tensors,
        "steps": steps,
    }
    return Sequence(data, ("x", "w"), first_call, values=tuple(sorted(shapes)), rules=RULES)


def _step(draw, kind: str, source: str, shape: tuple, index: int,
          exclude: frozenset = frozenset()) -> tuple[str, list[str], str] | None:
    """One drawn step: its text, the names it binds, and their role (view, alias, summed, or none)."""
    size = shape[0] if shape else 0
    options = [view for view in ["slice", "select", "narrow", "unsqueeze"] + (
        ["transpose", "diagonal"] if len(shape) == 2 else []) if VIEW_OPS[view] not in exclude]
    if kind == "view" and size and options:
        view = draw(st.sampled_from(options), label=f"view of step {index}")
        start = draw(st.integers(0, size - 1), label=f"start of step {index}")
        stop = draw(st.integers(start + 1, size), label=f"stop of step {index}")
        text = {"slice": f"{source}[{start}:{stop}]", "select": f"select({source}, dim=0, index={start})",
                "narrow": f"narrow({source}, dim=0, start={start}, length={stop - start})",
                "unsqueeze": f"unsqueeze({source}, dim=0)", "transpose": f"transpose({source})",
                "diagonal": f"diagonal({source})"}[view]
        return f"v{index} = {text}", [f"v{index}"], "view"
    if kind == "inplace":
        operator = draw(st.sampled_from(["*=", "+=", "-="]), label=f"update of step {index}")
        operand = draw(st.sampled_from(["w", "2", "0.5"]), label=f"operand of step {index}")
        return f"{source} {operator} {operand}", [], "none"
    if kind == "setitem" and size:
        picks = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size, unique=True),
                     label=f"positions of step {index}")  # unique: which of two writes to one place wins is unspecified
        value = draw(st.sampled_from(["w", "3"]), label=f"value of step {index}")
        return f"{source}[{picks}] = {value}", [], "none"
    if kind == "save":
        return f"p{index} = {source} * {source}", [f"p{index}"], "summed"
    if kind == "detach":
        return f"d{index} = detach({source})", [f"d{index}"], "alias"
    if kind == "copy" and size:
        picks = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4), label=f"indices of step {index}")
        return f"k{index} = {source}[{picks}]", [f"k{index}"], "summed"
    if kind == "unbind" and size:
        names = [f"u{index}_{i}" for i in range(size)]
        return f"{', '.join(names)}{',' if size == 1 else ''} = unbind({source})", names, "alias"
    return None


def _value_shape(text: str, shapes: dict, name: str) -> np.ndarray:
    """The value `name` gets from the step `text`, on zeros of the operands' shapes (only its shape is used)."""
    statement = parse_statement(text)
    operands = [np.zeros(shapes[arg.name]) for arg in statement.expr.args]
    value = numpy_forward(statement.expr.op, operands, dict(statement.expr.kwargs))
    if statement.targets:
        return value[statement.targets.index(name)]
    return value
