"""Random sequences of autograd calls on a random graph, and their comparison between two engines.

The reference engine is the judge: after every call the engine under test must raise
the same error kind, hold the same .grad on every leaf, bind the same `grad` results and
have called each hook with the same gradients. A sequence ends at its first error,
since .grad is unspecified after one (LIFE-6). A failing sequence is written out as a
case whose expectations are what the reference engine observed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from gradspec.absent import Unsupported
from gradspec.fuzz.differences import tolerated
from gradspec.fuzz.staging import plain
from gradspec.fuzz.strategies import graphs
from gradspec.language.case import as_list
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import build_case, needed_capabilities
from gradspec.language.step_kinds import needs, step_keys
from gradspec.running.interpreter import AdapterFault, Session
from hypothesis import reject
from hypothesis import strategies as st

RTOL, ATOL = 1e-9, 1e-12
EITHER_ERROR = {"freed_graph", "inplace_modified", "custom_grad_count", "custom_grad_shape", "once_differentiable",
                "hook_error", "hook_shape", "post_accumulate_returned", "unused_input"}  # LIFE-7

# What a drawn sequence may call: an engine lacking any of these cannot be compared so.
CAPABILITIES = frozenset({"grad", "backward", "allow_unused", "create_graph", "graph_lifetime", "retain_grad",
                          "tensor_hooks", "grad_assignment"})
# How a call's tensor arguments may be written (argument_forms): a bare tensor only where it stands for one.
FORMS = ("tensor", "list", "tuple")
# Every sequence multiplies, sums and adds (its loss): an engine lacking one of them has nothing to draw here.
NEEDED_OPS = frozenset({"mul", "sum", "add"})
# Custom functions a sequence may call; Flattened's backward returns a 0-d gradient, which only a 0-d input takes
# (CUSTOM-4), so that both engines must raise custom_grad_shape for the others.
FUNCTIONS = {
    "Cube": {"inputs": ["x"], "forward": ["y = x * x * x"], "outputs": ["y"], "save": ["x"],
             "backward": ["gx = grad_y * 3 * x * x"], "returns": ["gx"]},
    "Product": {"inputs": ["a", "b"], "forward": ["p = a * b"], "outputs": ["p"], "save": ["a", "b"],
                "backward": ["ga = grad_p * b", "gb = grad_p * a"], "returns": ["ga", "gb"]},
    "Flattened": {"inputs": ["x"], "forward": ["y = x * 2"], "outputs": ["y"],
                  "backward": ["gx = sum(grad_y) * 2"], "returns": ["gx"]},
    "Pair": {"inputs": ["x"], "forward": ["u = x * 2", "v = x * x"], "outputs": ["u", "v"], "save": ["x"],
             "backward": ["gx = grad_u * 2 + grad_v * 2 * x"], "returns": ["gx"]},
    # ctx's options, one function each: an output marked non-differentiable (it never requires grad, and backward
    # gets no gradient for it), gradients left None for an output unused (materialize_grads false: the backward
    # reads only grad_u), a backward that refuses to be differentiated, an input modified in place and returned
    # (mark_dirty; a saved value of it then raises inplace_modified), saved values read twice (saved-tensor hooks
    # unpack twice).
    "WithIndex": {"inputs": ["x"], "forward": ["y = x * 3", "m = x * 1"], "outputs": ["y", "m"],
                  "non_differentiable": ["m"], "backward": ["gx = grad_y * 3"], "returns": ["gx"]},
    "Lazy": {"inputs": ["x"], "forward": ["u = x * 2", "v = x * 5"], "outputs": ["u", "v"],
             "materialize_grads": False, "backward": ["gx = grad_u * 2"], "returns": ["gx"]},
    "Once": {"inputs": ["x"], "forward": ["y = x * x"], "outputs": ["y"], "save": ["x"], "once_differentiable": True,
             "backward": ["gx = grad_y * 2 * x"], "returns": ["gx"]},
    "Doubled": {"inputs": ["x"], "forward": ["x *= 2"], "outputs": ["x"], "dirty": ["x"],
                "backward": ["gx = grad_x * 2"], "returns": ["gx"]},
    "ReadTwice": {"inputs": ["x"], "forward": ["y = x * x * x"], "outputs": ["y"], "save": ["x"], "reads_saved": 2,
                  "backward": ["gx = grad_y * 3 * x * x"], "returns": ["gx"]},
}
# Ops whose result some engine saves where the reference engine keeps only what ops.yaml's `saves` says: updating
# such a result in place (directly, or as a custom function's dirty input) raises inplace_modified in that engine
# alone, which INPLACE-1 leaves to each engine (what a node saves is its own business), so the fuzzer does not
# (_unmodifiable: these, and the results and operands of ops that save their output).
SAVED_BY_SOME = {"prod": "PyTorch's prod_backward reads the result as well as the input (its derivatives.yaml); the "
                         "reference engine reads the input only"}
# What a function's ctx options need of an engine (the loader's FUNCTION_OPTIONS), besides custom_function.
_OPTION_NEEDS = {"non_differentiable": "custom_non_differentiable", "dirty": "custom_dirty",
                 "materialize_grads": "custom_materialize_grads", "once_differentiable": "custom_once_differentiable"}


def function_options() -> tuple[str, ...]:
    """The optional keys of a case function (spec/case.schema.json): what ctx offers a custom function."""
    from gradspec import contracts
    schema = contracts.case_schema()["$defs"]["function"]
    return tuple(key for key in schema["properties"] if key not in schema["required"])


def function_needs(function: dict) -> frozenset[str]:
    """The capabilities a custom function of FUNCTIONS needs."""
    return frozenset({"custom_function", *(["custom_multiple_outputs"] if len(function["outputs"]) > 1 else []),
                      *(need for option, need in _OPTION_NEEDS.items() if option in function)})


@dataclass(frozen=True)
class Sequence:
    data: dict  # the case: the graph, `loss = ...`, then the calls
    leaves: tuple[str, ...]
    first_call: int  # index in data["steps"] of the first autograd call
    values: tuple[str, ...] = ()  # names whose values must agree after every step (views alias their base)
    rules: tuple[str, ...] = ("ACC-1", "LIFE-1")  # what a staged case cites


@st.composite
def sequences(draw, max_calls: int = 8, exclude: frozenset = frozenset(), extras: frozenset = frozenset(),
              agreed: frozenset = frozenset()) -> Sequence:
    """A graph, `loss` over it (and over calls of custom functions, with `custom_function` in `extras`), maybe a
    second root, then autograd calls; `extras` are the capabilities both engines have (CAPABILITIES where not
    given), `agreed` the engine-specific ones on which they agree."""
    graph = draw(graphs(max_ops=4, exclude=exclude))
    data = copy.deepcopy(graph.data)
    steps = list(data["steps"])
    shapes = _shapes(data)
    intermediates = [name for name in shapes if name not in data["tensors"]]
    unsaveable = _unmodifiable(steps)
    if graph.grad_output is None:
        loss = f"sum({graph.output})"
    else:
        data["tensors"]["weights"] = {"value": [list(r) if isinstance(r, tuple) else r for r in graph.grad_output]}
        loss = f"sum(mul({graph.output}, weights))"
    used = set()
    if "custom_function" in extras:
        custom_steps, outputs, used = draw(custom_calls(list(graph.leaves) + intermediates, extras, exclude,
                                                        tuple(intermediates), unsaveable, shapes))
        steps += custom_steps
        loss = " + ".join([loss, *(f"sum({name})" for name in outputs)])
        if used:
            data["functions"] = {name: FUNCTIONS[name] for name in sorted(used)}
    steps.append(f"loss = {loss}")
    roots = ["loss"]
    names = list(graph.leaves) + intermediates
    if draw(st.booleans(), label="second root"):  # several roots, and grad of several outputs, have two to take
        a, b = (draw(st.sampled_from(names), label=f"operand {n} of the second root") for n in range(2))
        if _broadcast(shapes[a], shapes[b]):
            steps.append(f"loss2 = sum({a} * {b})")
            roots.append("loss2")
    if draw(st.booleans(), label="gradient that requires grad"):  # a user's output gradient in the graph (HIGHER-10)
        data["tensors"]["gw"] = {"value": 1.25, "requires_grad": True}
        shapes["gw"] = ()
    first_call = len(steps)
    depends = _dependencies(steps, frozenset(used))
    # hooks go on results that have a node: computed from a leaf (every leaf requires grad) along a gradient path
    hookable = [name for name in intermediates if depends.get(name, set()) & set(graph.leaves)]
    steps += draw(calls(list(graph.leaves), intermediates, hookable, max_calls, extras, shapes=shapes,
                        roots=tuple(roots), agreed=agreed, depends=depends, views=_views(graph.data["steps"]),
                        unmodifiable=unsaveable))
    data["steps"] = steps
    try:  # a custom call's operands may not broadcast together (Product): such a draw is not a case
        data["capabilities"] = sorted(needed_capabilities(data))
        build_case(data, "<fuzz sequence>", "fuzz/sequence.yaml")
    except CaseFileError:
        if used:
            reject()
        raise
    leaves = tuple(graph.leaves) + (("gw",) if "gw" in shapes else ())
    return Sequence(data, leaves, first_call, values=tuple(name for name in shapes if name not in leaves))


def _shapes(data: dict) -> dict[str, tuple]:
    """The shape of every tensor and compute step's result of a drawn graph (on its values, in numpy)."""
    from gradspec.language.expressions import parse_statement
    from gradspec.language.forwards import numpy_forward
    values = {name: np.asarray(entry["value"], dtype=np.float64) for name, entry in data["tensors"].items()}

    def evaluate(expr):
        if hasattr(expr, "name"):
            return values[expr.name]
        if hasattr(expr, "value"):
            return expr.value
        return numpy_forward(expr.op, [evaluate(arg) for arg in expr.args], dict(expr.kwargs))

    for text in data["steps"]:
        statement = parse_statement(text)
        result = evaluate(statement.expr)
        for target, value in zip(statement.targets or (statement.target,),
                                 result if statement.targets else (result,), strict=True):
            values[target] = np.asarray(value)
    return {name: value.shape for name, value in values.items()}


def _dependencies(steps: list, functions: frozenset[str]) -> dict[str, set[str]]:
    """Per name a compute step binds, the names a gradient can flow to from it, transitively: never through detach,
    data, an op without a derivative (comparisons, argmax) or an index or condition operand."""
    from gradspec import contracts
    from gradspec.language.expressions import parse_statement
    depends: dict[str, set[str]] = {}

    def refs(expr):
        if hasattr(expr, "name"):
            yield expr.name
        entry = contracts.ops().get(getattr(expr, "op", None), {})
        if getattr(expr, "op", None) in ("detach", "data") or entry.get("differentiable", True) is False:
            return
        cut = {entry.get("index_operand"), entry.get("condition_operand")}
        for position, arg in enumerate(getattr(expr, "args", ())):
            if position not in cut:
                yield from refs(arg)

    for text in steps:
        statement = parse_statement(text, functions)
        found = set()
        for name in refs(statement.expr):
            found |= {name} | depends.get(name, set())
        for target in statement.targets or (statement.target,):
            depends[target] = found
    return depends


def _unmodifiable(steps: list) -> frozenset[str]:
    """The names no draw updates in place, since engines may save them or not (INPLACE-1 leaves what a node saves to
    each engine): results of SAVED_BY_SOME ops, and the results and operands of ops that save their output by
    ops.yaml (`output`, `both`), for which another engine may save the input instead (PyTorch's elu saves its input,
    the reference engine both)."""
    from gradspec import contracts
    from gradspec.language.expressions import ExpressionError, parse_statement
    output_saving = frozenset(op for op, entry in contracts.ops().items() if entry.get("saves") in ("output", "both"))
    found = set(_results_of(steps, frozenset(SAVED_BY_SOME) | output_saving))

    def operands(expr):
        if getattr(expr, "op", None) in output_saving:
            found.update(arg.name for arg in expr.args if hasattr(arg, "name"))
        for arg in getattr(expr, "args", ()):
            operands(arg)

    for text in steps:
        try:
            operands(parse_statement(text).expr)
        except ExpressionError:
            continue  # a custom function's call
    return frozenset(found)


def _results_of(steps: list, ops: frozenset[str]) -> frozenset[str]:
    """The names that compute steps bind to results of `ops`."""
    from gradspec.language.expressions import ExpressionError, parse_statement
    found = set()
    for text in steps:
        try:
            statement = parse_statement(text)
        except ExpressionError:
            continue  # a custom function's call
        if getattr(statement.expr, "op", None) in ops:
            found.update(statement.targets or (statement.target,))
    return frozenset(found)


def _views(steps: list) -> frozenset[str]:
    """The names that compute steps bind to results of view ops (spec/ops.yaml's `view: true`)."""
    from gradspec import contracts
    return _results_of(steps, frozenset(op for op, entry in contracts.ops().items() if entry.get("view")))


def _broadcast(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


@st.composite
def custom_calls(draw, names: list[str], extras: frozenset, exclude: frozenset = frozenset(),
                 intermediates: tuple = (), unmodifiable: frozenset = frozenset(), shapes: dict | None = None
                 ) -> tuple[list[str], list[str], set[str]]:
    """Up to two calls of custom functions on values of the graph: the steps, the outputs for the loss to sum, the
    functions used; none whose steps call an op in `exclude` or needs what `extras` lacks."""
    steps, outputs, used = [], [], set()
    choices = sorted(name for name, function in FUNCTIONS.items() if function_needs(function) <= extras
                     and not set(re.findall(r"(\w+)\(", " ".join(function["forward"] + function["backward"]))) & exclude)
    if not choices:
        return steps, outputs, used
    for index in range(draw(st.integers(0, 2), label="custom calls")):
        name = draw(st.sampled_from(choices), label=f"custom function {index}")
        # a dirty input is an intermediate where there is one (a leaf's in-place update is refused: leaf_inplace)
        # (and never a result of SAVED_BY_SOME: mark_dirty updates it in place)
        modifiable = [n for n in names if n not in unmodifiable]
        pool = ([n for n in modifiable if n in intermediates] or modifiable) if "dirty" in FUNCTIONS[name] else names
        if not pool:
            continue
        operands = [draw(st.sampled_from(pool), label=f"operand 0 of custom call {index}")]
        # operands of one shape: whether a backward's gradient of a broadcast shape is summed back to its input
        # (PyTorch) or refused (JAX, TensorFlow) is engine-specific (CUSTOM-5)
        alike = [n for n in pool if shapes is None or shapes.get(n) == shapes.get(operands[0])]
        operands += [draw(st.sampled_from(alike), label=f"operand {slot} of custom call {index}")
                     for slot in range(1, len(FUNCTIONS[name]["inputs"]))]
        function = FUNCTIONS[name]
        results = [f"c{index}_{output}" for output in function["outputs"]]
        steps.append(f"{', '.join(results)} = {name}({', '.join(operands)})")
        # the loss sums the outputs, but for one marked non-differentiable, and Lazy's last (its gradient stays None)
        outputs += [result for result, output in zip(results, function["outputs"], strict=True)
                    if output not in function.get("non_differentiable", ())
                    and not (function.get("materialize_grads") is False and output == function["outputs"][-1])]
        used.add(name)
    return steps, outputs, used


# What calls() draws of each step kind and option of the case language (harness/language/step_kinds.py), and why the
# rest is not drawn: tests/test_step_kinds.py keeps both complete, and the README's table is made from them.
DRAWN = {
    "compute": "the graph's ops; detach; in-place updates and setitem on leaves and intermediates",
    "backward": "of one root or of two (several_roots), over some inputs",
    "backward.create_graph": "true, false or left out", "backward.retain_graph": "true, false or left out",
    "backward.inputs": "leaves and intermediates", "backward.gradient": "a number, or a 0-d leaf that requires grad",
    "backward.gradients": "one per root: a number, a leaf that requires grad, or null",
    "backward.forms": "tensor, list, tuple",
    "grad": "of one or two roots, with respect to leaves and intermediates",
    "grad.allow_unused": "true, false or left out", "grad.create_graph": "true, false or left out",
    "grad.retain_graph": "true, false or left out", "grad.materialize_grads": "true, with allow_unused",
    "grad.grad_outputs": "a number or a 0-d leaf that requires grad, per root", "grad.forms": "tensor, list, tuple",
    "derivative": "of a root with respect to leaves", "derivative.gradient": "a number",
    "retain_grad": "intermediates", "register_hook": "leaves and intermediates",
    "register_hook.returns": "scale or value (leaves), raise (any)",
    "register_post_accumulate_grad_hook": "leaves", "register_post_accumulate_grad_hook.modifies": "scale, clear",
    "register_post_accumulate_grad_hook.returns": "scale (PASS-12: refused)",
    "register_node_prehook": "intermediates", "register_node_prehook.returns": "scale",
    "register_node_hook": "intermediates", "remove_hook": "a hook registered before",
    "set_grad": "None or an array, on leaves", "zero_grad": "leaves",
    "requires_grad_": "true, false, null on leaves and intermediates (LEAF-7: a leaf turned off is turned on again "
                      "where the engines differ)",
    "detach_": "intermediates (a new one where the engines differ on MODE-8), then used",
    "no_grad": "a new result and an in-place update of a leaf", "no_grad.form": "context, decorator, generator",
    "enable_grad": "inside no_grad, a new result", "enable_grad.form": "context, decorator, generator",
    "set_grad_enabled": "false or true, as no_grad and enable_grad",
    "set_grad_enabled.form": "context, decorator, generator",
    "inference_mode": "a new result and an in-place update of a leaf",
    "inference_mode.form": "context, decorator, generator",
    "saved_tensor_hooks": "around a new root that a later call differentiates", "saved_tensor_hooks.pack": "scale",
    "saved_tensor_hooks.unpack": "scale", "repeat": "a backward that retains the graph, 2 or 3 times",
    "threads": "two threads, each a backward that retains the graph", "barrier": "at the start of each thread",
    "functions": "up to two calls of a custom function (FUNCTIONS) on values of the graph, before the loss",
    "functions.save": "Cube, Product, Pair, Once, ReadTwice", "functions.non_differentiable": "WithIndex",
    "functions.materialize_grads": "Lazy (false; its second output unused)", "functions.once_differentiable": "Once",
    "functions.dirty": "Doubled (on an intermediate)", "functions.reads_saved": "ReadTwice (2)",
}
NOT_DRAWN = {
    "expect": "the fuzzer's own comparison after every step is its expectation; staged cases write expect steps",
}


def coverage_markdown() -> str:
    """The README's table: each step kind and option of the case language, and what the sequence property draws of
    it or why it does not."""
    from gradspec.language.step_kinds import step_kinds
    rows = ["| step kind or option | drawn by the sequence property |", "|---|---|"]
    keys = [key for name, kind in step_kinds().items() for key in (name, *(f"{name}.{o}" for o in kind.options))]
    for key in keys + ["functions", *(f"functions.{option}" for option in function_options())]:
        said = DRAWN.get(key)
        rows.append(f"| `{key}` | {said if said is not None else 'not drawn: ' + NOT_DRAWN[key]} |")
    return "\n".join(rows) + "\n"


@dataclass
class _Draw:
    """What the calls drawn so far know: names by role, hooks by label, and what both engines can do."""

    leaves: list[str]
    intermediates: list[str]
    hookable: list[str]
    roots: list[str]
    shapes: dict[str, tuple]
    allowed: frozenset[str]  # capabilities both engines have
    agreed: frozenset[str]  # engine-specific capabilities (no implied_by) on which both engines agree
    depends: dict = field(default_factory=dict)  # name -> the names its value was computed from, transitively
    views: frozenset = frozenset()  # results of view ops (MODE-7 says nothing of detach_ on them)
    hooks: dict = field(default_factory=dict)  # label -> tensor
    updated_leaf: bool = False  # a leaf was updated in place: no hook is registered after (_without_hooks)
    modified: bool = False  # something was updated in place
    packed: bool = False  # a saved-tensor hooks block ran
    unmodifiable: frozenset = frozenset()  # results of SAVED_BY_SOME ops: never updated in place

    def may_modify(self) -> bool:
        """Whether an in-place update may be drawn: not after values were packed by saved-tensor hooks where the
        engines differ on SAVED-6 (whether a packed value's version is checked: saved_hooks_version_check)."""
        return not self.packed or "saved_hooks_version_check" in self.agreed

    def can(self, *keys: str) -> bool:
        """Whether both engines have what steps using these keys need (spec/capabilities.yaml)."""
        return needs(keys) <= self.allowed

    def used_by(self, roots) -> list[str]:
        """The leaves and intermediates that some of the roots were computed from."""
        found = set().union(*(self.depends.get(root, set()) for root in roots))
        return [name for name in self.leaves + self.intermediates if name in found]


@st.composite
def calls(draw, leaves: list[str], intermediates: list[str], hookable: list[str], max_calls: int = 5,
          extras: frozenset = frozenset(), shapes: dict | None = None, roots: tuple = ("loss",),
          agreed: frozenset = frozenset(), depends: dict | None = None, views: frozenset = frozenset(),
          unmodifiable: frozenset = frozenset()) -> list:
    """Autograd calls on the roots (`loss`, and others a sequence made): every step kind of DRAWN whose needs both
    engines have (`extras`: their common capabilities; CAPABILITIES where not given), each with the options both
    have.

    Hooks on leaves and `hookable` return nothing, a scaled or a literal gradient, or raise, so that their order and
    effect show; node hooks go on intermediates; blocks make new results and update leaves in place.
    """
    state = _Draw(list(leaves), list(intermediates), list(hookable), list(roots), dict(shapes or {}),
                  frozenset(extras or CAPABILITIES), agreed, dict(depends or {}), frozenset(views),
                  unmodifiable=frozenset(unmodifiable))
    kinds = [kind for kind in KIND_DRAWERS if state.can(kind) and kind not in ("enable_grad", "barrier")
             for _ in range(WEIGHTS.get(kind, 1))]
    # Whether `backward` over a listed non-leaf runs that tensor's node (so its node hooks fire) is engine-specific
    # (PASS-11): a draw with node hooks lists only leaves.
    node_hooks = state.can("register_node_prehook") and bool(hookable) and draw(st.booleans(), label="node hooks")
    if not node_hooks:
        kinds = [kind for kind in kinds if kind not in ("register_node_prehook", "register_node_hook")]
    steps: list = []
    wanted, made_calls = draw(st.integers(min(3, max_calls), max_calls), label="calls"), 0
    for index in range(3 * max_calls):  # a drawer finds nothing to do now and then: draw another kind
        if made_calls == wanted:
            break
        usable = _without_hooks(kinds) if state.updated_leaf else kinds
        kind = draw(st.sampled_from(usable), label=f"call {index}")
        made = [step for step in KIND_DRAWERS[kind](draw, state, index, node_hooks)
                if needs(step_keys([step])) <= state.allowed]
        steps += made
        made_calls += bool(made)
    registered = [i for i, step in enumerate(steps) if isinstance(step, dict) and any(k.startswith("register_")
                                                                                       or k == "retain_grad" for k in step)]
    passes = [i for i, step in enumerate(steps) if isinstance(step, dict) and {"backward", "grad"} & set(step)]
    if registered and not [i for i in passes if i > registered[-1]]:  # a hook drawn last would never be called
        kind = "backward" if state.can("backward") else "grad"
        steps += KIND_DRAWERS[kind](draw, state, 3 * max_calls, node_hooks)
    return steps


def _gradient(draw, state: _Draw, label: str):
    """An output gradient for a 0-d root: a number, or the 0-d leaf `gw` that requires grad (HIGHER-10's edge)."""
    choices = [1.5, -2.0] + (["gw"] if "gw" in state.shapes else [])
    return draw(st.sampled_from(choices), label=label)


# A pass's options, the likeliest first (hypothesis favours it): a graph retained, so that later calls run; unused
# inputs allowed, so that later calls are not ended by unused_input.
_CHOICES = {"retain_graph": (True, None, False), "create_graph": (None, False, True), "allow_unused": (True, None, False)}


def _draw_backward(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    keys = ["retain_graph", "create_graph"] if state.can("backward.create_graph") else ["retain_graph"]
    options = {key: draw(st.sampled_from(_CHOICES[key]), label=f"{key} of call {index}") for key in keys}
    step: dict = {"backward": "loss", **{key: value for key, value in options.items() if value is not None}}
    if len(state.roots) > 1 and state.can("several_roots") and draw(st.booleans(), label=f"two roots of {index}"):
        step["backward"] = draw(st.lists(st.sampled_from(state.roots), min_size=2, max_size=2, unique=True),
                                label=f"roots of call {index}")
        if draw(st.integers(0, 3), label=f"gradients of call {index}"):
            step["gradients"] = [draw(st.sampled_from([None, 1.5, *(["gw"] if "gw" in state.shapes else [])]),
                                      label=f"gradient {n} of call {index}") for n in range(2)]
    else:
        step["backward"] = draw(st.sampled_from(state.roots), label=f"root of call {index}")
        if draw(st.integers(0, 3), label=f"explicit gradient of call {index}") == 0:
            step["gradient"] = _gradient(draw, state, f"gradient of call {index}")
    # mostly a full pass: two of them over a node that saves is where LIFE-1 must raise on every engine
    if state.can("backward.inputs") and draw(st.integers(0, 3), label=f"inputs of call {index}") == 0:
        listable = state.leaves if node_hooks else state.leaves + state.intermediates
        step["inputs"] = draw(st.lists(st.sampled_from(listable), min_size=1, max_size=2, unique=True),
                              label=f"listed inputs of {index}")
    if "inputs" not in step and not _retains(step) and draw(st.integers(0, 3), label=f"again {index}") == 0:
        # a full pass again, over a root the first may share nodes with: LIFE-1 and LIFE-4's situation, which a user
        # meets by calling backward twice, and which independent draws of two passes rarely make
        again = draw(st.sampled_from(state.roots), label=f"root of the pass after {index}")
        return [step, {"backward": again}]
    if state.can("backward.forms"):
        forms = {}
        if isinstance(step["backward"], str) and state.can("several_roots"):
            forms["backward"] = draw(st.sampled_from(FORMS), label=f"form of the output of {index}")
        if "inputs" in step:
            forms["inputs"] = draw(_form(len(step["inputs"])), label=f"form of the inputs of {index}")
        if forms:
            step["forms"] = forms
    return [step]


def _draw_grad(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    keys = ("retain_graph", "create_graph", "allow_unused")
    options = {key: draw(st.sampled_from(_CHOICES[key]), label=f"{key} of call {index}") for key in keys}
    options = {key: value for key, value in options.items() if value is not None}
    if options.get("allow_unused") and draw(st.booleans(), label=f"materialize of call {index}"):
        options["materialize_grads"] = True
    outputs = draw(st.lists(st.sampled_from(state.roots), min_size=1, max_size=2, unique=True),
                   label=f"outputs of call {index}")
    # an input no output uses raises unused_input on the reference engine; an engine without allow_unused has no
    # such error (JAX, TensorFlow, torch.func give zeros or None): it is asked only for inputs that are used
    pool = state.leaves + state.intermediates if state.can("grad.allow_unused") else state.used_by(outputs)
    if not pool:
        return []
    inputs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True), label=f"inputs of call {index}")
    call = {"outputs": outputs if len(outputs) > 1 else outputs[0], "inputs": inputs,
            "as": [f"g{index}_{n}" for n in inputs], **options}
    if draw(st.integers(0, 3), label=f"grad_outputs of call {index}") == 0:
        call["grad_outputs"] = [_gradient(draw, state, f"grad_output {n} of call {index}") for n in outputs]
    if state.can("grad.forms"):
        call["forms"] = {"outputs": draw(_form(len(outputs)), label=f"form of the outputs of {index}"),
                         "inputs": draw(_form(len(inputs)), label=f"form of the inputs of {index}")}
        if "grad_outputs" in call:
            call["forms"]["grad_outputs"] = draw(_form(len(outputs)), label=f"form of grad_outputs of {index}")
    return [{"grad": call}]


def _draw_derivative(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    """A derivative of a root with respect to leaves it uses (of an unused one, engines give an error, zeros or None:
    a derivative step checks values)."""
    root = draw(st.sampled_from(state.roots), label=f"root of call {index}")
    used = [name for name in state.used_by([root]) if name in state.leaves]
    if not used:
        return []
    wrt = draw(st.lists(st.sampled_from(used), min_size=1, max_size=2, unique=True), label=f"wrt of {index}")
    call = {"of": root, "wrt": wrt,
            "as": [f"d{index}_{n}" for n in wrt]}
    if draw(st.booleans(), label=f"gradient of derivative {index}"):
        call["gradient"] = 0.5
    return [{"derivative": call}]


def _draw_retain_grad(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    if not state.intermediates:
        return []
    return [{"retain_grad": draw(st.sampled_from(state.intermediates), label=f"tensor of call {index}")}]


def _hook_label(state: _Draw, tensor: str) -> str:
    label = f"h{len(state.hooks)}"
    state.hooks[label] = tensor
    return label


def _draw_register_hook(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    hooked = [name for name in state.leaves + state.hookable if name in state.hooks.values()]
    pool = hooked if hooked and draw(st.booleans(), label=f"hooked tensor of {index}") else state.leaves + state.hookable
    tensor = draw(st.sampled_from(pool), label=f"tensor of call {index}")
    steps = []
    for _ in range(draw(st.integers(1, 2), label=f"hooks of call {index}")):  # two: their order shows
        # Hooks on leaves may return a gradient. On a non-leaf, what grad returns for it when it is requested and
        # also on the way to another requested input is engine-specific (HOOK-14): those only observe or raise.
        choices = ["none"] + (["scale", "value"] if tensor in state.leaves else []) + ["raise"]
        returns = draw(st.sampled_from(choices), label=f"hook result of call {index}")
        step: dict = {"register_hook": tensor, "as": _hook_label(state, tensor)}
        if returns == "scale":
            step["returns"] = {"scale": draw(st.sampled_from([2.0, -0.5]), label=f"scale of call {index}")}
        elif returns == "value":
            step["returns"] = {"value": np.full(state.shapes[tensor], 0.25).tolist()}
        elif returns == "raise":
            step["returns"] = "raise"
        steps.append(step)
    return steps


def _draw_post_accumulate(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    tensor = draw(st.sampled_from(state.leaves), label=f"leaf of call {index}")
    step: dict = {"register_post_accumulate_grad_hook": tensor, "as": _hook_label(state, tensor)}
    effect = draw(st.sampled_from(["none", "none", "scale", "clear", "returns"]), label=f"effect of call {index}")
    if effect == "scale":
        step["modifies"] = {"scale": 3.0}
    elif effect == "clear":
        step["modifies"] = "clear"
    elif effect == "returns":
        step["returns"] = {"scale": 2.0}
    return [step]


def _draw_node_hook(kind: str):
    def drawer(draw, state: _Draw, index: int, node_hooks: bool) -> list:
        if not state.hookable:
            return []
        hooked = [name for name in state.hookable if name in state.hooks.values()]  # where the order across kinds
        pool = hooked if hooked and draw(st.booleans(), label=f"hooked tensor of {index}") else state.hookable  # shows
        tensor = draw(st.sampled_from(pool), label=f"tensor of call {index}")
        step: dict = {kind: tensor, "as": _hook_label(state, tensor)}
        if kind == "register_node_prehook" and draw(st.booleans(), label=f"pre-hook result of call {index}"):
            step["returns"] = {"scale": 3.0}
        return [step]
    return drawer


def _draw_remove_hook(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    if not state.hooks:
        return []
    return [{"remove_hook": draw(st.sampled_from(sorted(state.hooks)), label=f"hook of call {index}")}]


def _draw_set_grad(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    leaf = draw(st.sampled_from(state.leaves), label=f"leaf of call {index}")
    value = None if draw(st.booleans(), label=f"None of call {index}") else np.full(state.shapes[leaf], 0.5).tolist()
    return [{"set_grad": {leaf: value}}]


def _draw_zero_grad(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    return [{"zero_grad": [draw(st.sampled_from(state.leaves), label=f"leaf of call {index}")]}]


def _draw_requires_grad(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    """requires_grad_ on a leaf or an intermediate (False there: nonleaf_requires_grad). Where the engines differ on
    LEAF-7 (torch_leaf_requires_grad_at_pass), a leaf turned off is turned on again before any pass."""
    tensor = draw(st.sampled_from(state.leaves + state.intermediates), label=f"tensor of call {index}")
    flag = draw(st.sampled_from([False, True, None]), label=f"flag of call {index}")
    step = {"requires_grad_": {tensor: flag}}
    if flag is False and tensor in state.leaves and "torch_leaf_requires_grad_at_pass" not in state.agreed:
        return [step, {"requires_grad_": {tensor: True}}]
    return [step]


def _draw_detach_(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    """detach_ of an intermediate; where the engines disagree on MODE-8 (whether a node that saved the tensor may
    still run is engine-specific: torch_detach_inplace), of a new result that no node has saved."""
    leaf = draw(st.sampled_from(state.leaves), label=f"leaf of call {index}")
    plain = [name for name in state.intermediates if name not in state.views]
    if "torch_detach_inplace" in state.agreed and plain:
        target = draw(st.sampled_from(plain), label=f"tensor of call {index}")
        if target in state.hookable:  # now a leaf without a node: a node hook has nothing to go on
            state.hookable.remove(target)
        return [{"detach_": target}]
    state.shapes[f"t{index}"] = state.shapes[leaf]
    return [f"t{index} = {leaf} * 2", {"detach_": f"t{index}"}, f"q{index} = t{index} * {leaf}"]


def _draw_compute(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    """A detach, or an in-place update or assignment of a leaf (refused: leaf_inplace) or of an intermediate (a later
    pass through a node that saved it raises inplace_modified)."""
    kind = draw(st.sampled_from(["detach", "inplace", "setitem"]), label=f"compute of call {index}")
    # mostly an intermediate: a leaf's update is refused (leaf_inplace), which ends the sequence
    pool = state.intermediates if state.intermediates and draw(st.integers(0, 3), label=f"leaf of {index}") else \
        state.leaves
    target = draw(st.sampled_from(pool), label=f"target of call {index}")
    if kind != "detach" and target in state.unmodifiable:
        return []
    if kind == "detach":
        state.shapes[f"c{index}"] = state.shapes[target]
        return [f"c{index} = detach({target})"]
    if not state.can("raises:inplace_modified") or not state.may_modify():
        return []  # the reference engine's version counters would refuse what the engine runs
    state.modified = True
    if kind == "setitem":
        if not state.shapes[target]:
            return []
        return [f"{target}[0] = 0.5"]
    return [f"{target} {draw(st.sampled_from(['*=', '+=']), label=f'update of call {index}')} 2"]


def _draw_grad_mode(kind: str):
    def drawer(draw, state: _Draw, index: int, node_hooks: bool) -> list:
        """MODE-1, MODE-3, MODE-9, MODE-11: a result made in the block (its requires_grad and is_leaf are compared
        after) and a leaf updated in place there (an optimizer's step): allowed, unrecorded, and it moves the leaf's
        version, so a later pass through a node that saved it raises inplace_modified; written as a with block, a
        decorated function or a decorated generator resumed once per step, so a mode that lapses between resumes makes
        the second update raise leaf_inplace. Never a pass inside it: its gradients are engine-specific (MODE-13)."""
        leaf = draw(st.sampled_from(state.leaves), label=f"leaf of call {index}")
        body: list = [f"n{index} = {leaf} * 2"]
        state.shapes[f"n{index}"] = state.shapes[leaf]
        if kind != "enable_grad" and state.can("inplace", "raises:inplace_modified") and state.may_modify():
            body += [f"{leaf} *= 0.5", f"{leaf} *= 3"]
            state.updated_leaf = state.modified = True
        if kind == "no_grad" and state.can("enable_grad") and draw(st.booleans(), label=f"enable_grad in {index}"):
            inner: dict = {"enable_grad": [f"e{index} = {leaf} * 3"]}
            state.shapes[f"e{index}"] = state.shapes[leaf]
            body.append(_with_form(draw, state, inner, "enable_grad", index))
        if kind == "set_grad_enabled":
            block: dict = {"set_grad_enabled": draw(st.sampled_from([False, True]), label=f"mode of call {index}"),
                           "steps": body}
            if block["set_grad_enabled"]:
                block["steps"] = body[:1]  # grad on: an in-place update of a leaf would be refused (leaf_inplace)
        else:
            block = {kind: body}
        return [_with_form(draw, state, block, kind, index)]
    return drawer


def _with_form(draw, state: _Draw, block: dict, kind: str, index: int) -> dict:
    if state.can(f"{kind}.form"):
        form = draw(st.sampled_from(["context", "decorator", "generator"]), label=f"form of {kind} {index}")
        if form != "context":
            block["form"] = form
    return block


def _draw_saved_tensor_hooks(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    """A new root made inside saved-tensor hooks that scale what they pack and unpack: later calls differentiate it
    (SAVED-1..3: the unpacked values are what backward uses)."""
    if state.modified and "saved_hooks_version_check" not in state.agreed:
        return []  # SAVED-6: see _Draw.may_modify
    a, b = (draw(st.sampled_from(state.leaves + state.intermediates), label=f"operand {n} of call {index}")
            for n in range(2))
    try:
        np.broadcast_shapes(state.shapes[a], state.shapes[b])
    except ValueError:
        return []
    root = f"s{index}"
    block = {"saved_tensor_hooks": f"k{index}", "steps": [f"{root} = sum({a} * {b})"]}
    if draw(st.booleans(), label=f"pack of call {index}"):
        block["pack"] = {"scale": 2.0}
    if draw(st.booleans(), label=f"unpack of call {index}"):
        block["unpack"] = {"scale": 0.5}
    state.roots.append(root)
    state.shapes[root] = ()
    state.depends[root] = {a, b} | state.depends.get(a, set()) | state.depends.get(b, set())
    state.packed = True
    return [block]


def _draw_repeat(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    root = draw(st.sampled_from(state.roots), label=f"root of call {index}")
    return [{"repeat": draw(st.integers(2, 3), label=f"count of call {index}"),
             "steps": [{"backward": root, "retain_graph": True}]}]


def _draw_threads(draw, state: _Draw, index: int, node_hooks: bool) -> list:
    root = draw(st.sampled_from(state.roots), label=f"root of call {index}")
    body = [{"barrier": "all"}, {"backward": root, "retain_graph": True}]
    return [{"threads": [body, copy.deepcopy(body)]}]


# How many times each kind is in the list drawn from: passes and hooks most, as most rules are about them.
WEIGHTS = {"backward": 4, "grad": 3, "register_hook": 3, "register_node_prehook": 2, "register_node_hook": 2,
           "register_post_accumulate_grad_hook": 2, "retain_grad": 2}
KIND_DRAWERS = {  # hypothesis shrinks toward the first: a hook, then a pass
    "register_hook": _draw_register_hook, "backward": _draw_backward, "grad": _draw_grad, "compute": _draw_compute,
    "derivative": _draw_derivative, "retain_grad": _draw_retain_grad,
    "register_post_accumulate_grad_hook": _draw_post_accumulate,
    "register_node_prehook": _draw_node_hook("register_node_prehook"),
    "register_node_hook": _draw_node_hook("register_node_hook"), "remove_hook": _draw_remove_hook,
    "set_grad": _draw_set_grad, "zero_grad": _draw_zero_grad, "requires_grad_": _draw_requires_grad,
    "detach_": _draw_detach_, "no_grad": _draw_grad_mode("no_grad"), "enable_grad": _draw_grad_mode("enable_grad"),
    "set_grad_enabled": _draw_grad_mode("set_grad_enabled"), "inference_mode": _draw_grad_mode("inference_mode"),
    "saved_tensor_hooks": _draw_saved_tensor_hooks, "repeat": _draw_repeat, "threads": _draw_threads,
    "barrier": _draw_threads,  # drawn inside threads
}


def _without_hooks(kinds: list[str]) -> list[str]:
    """The call kinds left after a leaf was updated in place under a grad-mode block: none that registers a hook.

    PyTorch crashes the process (a segfault) when a hook is registered on a view of a leaf that was updated in place
    since the view was made (PyTorch issue 196459; seen on 2.13.0 and 2.14.1): a recorded bug
    (hooks/hook-on-view-after-base-updated-in-place.yaml, spec/versions.yaml), which a fuzz run in one process must
    not meet again, or it loses every other draw.
    """
    return [kind for kind in kinds if not kind.startswith("register_")] or ["set_grad"]


def _form(count: int) -> st.SearchStrategy[str]:
    """A form for an argument of `count` tensors: a bare tensor stands for one only."""
    return st.sampled_from(FORMS if count == 1 else FORMS[1:])


def _ran_and_freed_everything(earlier, step) -> bool:
    """Whether an earlier pass, retaining nothing, freed what its nodes had saved (over any output: two roots share
    the nodes of their common part).

    If so, and the reference engine can still run the nodes this pass needs, those saved nothing
    there: whether such a node may run again is engine-specific (LIFE-5), not a disagreement. (A
    node may save in one engine what is an attribute in the other: PyTorch's indexing saves its
    index tensor, found by the view-sequence property; masked_fill its mask.) Passes inside repeat and threads
    blocks count too.
    """
    return any(not _retains(_options(s)) for s in _passes(earlier))


# Call kinds after which the graph is still the one the compute steps built: nothing rebinds, updates, detaches,
# toggles requires_grad or runs a block, so which nodes a full backward ran and freed follows from the steps alone.
_PLAIN_CALLS = frozenset({"backward", "grad", "derivative", "retain_grad", "register_hook",
                          "register_post_accumulate_grad_hook", "register_node_prehook", "register_node_hook",
                          "remove_hook", "set_grad", "zero_grad"})


def _reruns_a_freed_saving_node(sequence: Sequence, steps: list, index: int) -> bool:
    """Whether LIFE-1 makes pass `index` raise freed_graph in every engine: an earlier pass that retained nothing ran a
    node of an op that saves values by spec/ops.yaml's `saves` (sin, mul, ...), and this pass must run it again. A
    pass runs the nodes between its outputs and its inputs (all that require grad, without inputs). Then the second
    pass meets values that are gone, whatever else an engine saves. Unsure (a custom function that updates in place, an
    update between, a block, a listed non-leaf): False, and either outcome stands (LIFE-5)."""
    calls = steps[sequence.first_call:index + 1]
    if any(step.kind not in _PLAIN_CALLS for step in calls):
        return False
    reaches = _saving_nodes(sequence.data, sequence.first_call)
    if reaches is None:
        return False
    freed = set().union(*(_runs(earlier, reaches) for earlier in calls[:-1] if not _retains(_options(earlier))))
    return bool(freed & _runs(steps[index], reaches))


def _runs(step, reaches: dict) -> set:
    """The saving nodes a pass surely runs: those its outputs reach that lead to one of its inputs (every one, for a
    backward without inputs); none where an input is no leaf (the pass may stop there)."""
    if step.kind == "derivative":
        inputs = as_list(step.args["derivative"]["wrt"])
    elif step.kind == "grad":
        inputs = as_list(step.args["grad"]["inputs"])
    elif step.kind == "backward":
        inputs = None if step.args.get("inputs") is None else as_list(step.args["inputs"])
    else:
        return set()
    nodes = {}
    for name in _outputs_of(step):
        nodes.update(reaches.get(name, {}))
    if inputs is None:
        return set(nodes)
    if set(inputs) - reaches.get(_LEAVES, set()):
        return set()
    return {node for node, leaves in nodes.items() if leaves & set(inputs)}


_LEAVES = "<leaves>"  # the key under which _saving_nodes lists the leaves that require grad


def _retains(options: Mapping) -> bool:
    """Whether a pass with these options keeps its graph: retain_graph, or by default create_graph (LIFE-2)."""
    return bool(options.get("retain_graph") or (options.get("create_graph") and options.get("retain_graph") is None))


def _saving_nodes(data: dict, first_call: int) -> dict[str, dict] | None:
    """Per name the compute steps bind, the op applications that save values (ops.yaml `saves` other than nothing)
    and require grad, which a full backward from that name runs, each with the leaves that require grad it leads to
    (under _LEAVES, those leaves); None where a step is not plain (an in-place update, a function marking one dirty)."""
    from gradspec import contracts
    from gradspec.language.expressions import ExpressionError, parse_statement
    ops, functions = contracts.ops(), data.get("functions", {})
    leaves = {name for name, entry in data["tensors"].items() if entry.get("requires_grad")}
    depends: dict[str, frozenset] = {name: frozenset({name}) for name in leaves}  # the requiring leaves behind it
    reaches: dict = {_LEAVES: set(leaves)}

    def walk(expr, where) -> tuple[frozenset, dict]:
        """(the requiring leaves behind, saving nodes reached with theirs) of an expression."""
        if hasattr(expr, "name"):
            return depends.get(expr.name, frozenset()), dict(reaches.get(expr.name, {}))
        op = getattr(expr, "op", None) or getattr(expr, "function", None)
        if op is None:
            return frozenset(), {}
        entry = ops.get(op) or {"saves": "inputs" if functions[op].get("save") else "nothing"}  # ctx.save_for_backward
        if op in ("detach", "data") or entry.get("differentiable", True) is False:
            return frozenset(), {}
        cut = {entry.get("index_operand"), entry.get("condition_operand")}
        behind, found = frozenset(), {}
        for position, arg in enumerate(getattr(expr, "args", ())):
            if position not in cut:
                arg_behind, arg_found = walk(arg, (*where, position))
                behind, found = behind | arg_behind, {**found, **arg_found}
        if behind and entry.get("saves", "nothing") != "nothing":
            found[where] = behind
        return behind, found

    for number, text in enumerate(data["steps"][:first_call]):
        try:
            statement = parse_statement(text, frozenset(functions))
        except ExpressionError:
            return None
        op = getattr(statement.expr, "op", None) or getattr(statement.expr, "function", None)
        if statement.inplace_op is not None or op is None or "dirty" in functions.get(op, {}):
            return None  # an update in place, in a step or inside a function (mark_dirty)
        behind, found = walk(statement.expr, (number,))
        constant = set(functions.get(op, {}).get("non_differentiable", ()))
        outputs = functions[op]["outputs"] if op in functions else statement.targets or (statement.target,)
        for target, output in zip(statement.targets or (statement.target,), outputs, strict=False):
            reaches[target] = {} if output in constant else found
            depends[target] = frozenset() if output in constant else behind
    return reaches


def _passes(steps):
    """The backward, grad and derivative steps among `steps`, inside blocks and threads too."""
    for step in steps:
        if step.kind in ("backward", "grad", "derivative"):
            yield step
        yield from _passes(step.body)


def _options(step) -> dict:
    """A pass's options (a derivative step retains nothing)."""
    return step.args if step.kind == "backward" else step.args.get("grad", {})


def _outputs_of(step) -> list[str]:
    found = (step.args.get("backward") or step.args.get("grad", {}).get("outputs")
             or step.args.get("derivative", {}).get("of"))
    return as_list(found)


class Disagreement(AssertionError):
    """The engine under test and the reference engine observed different things: `observable` (raised, value, grad,
    result, hooks, hook_calls, hook_grad, hook_order, grad_mode, flags) of `name` (a tensor or a hook label, where
    one is concerned), what the engine `got` and what the judge `expected`, at `step` (the step kind), and the
    engine's `error` where it raised."""

    def __init__(self, message: str, observable: str = "", name: str | None = None, got=None, expected=None,
                 step: str | None = None, error: str = ""):
        super().__init__(message)
        self.observable, self.name, self.got, self.expected, self.step = observable, name, got, expected, step
        self.error = error  # the engine's exception, where it raised one


def compare(sequence: Sequence, engine, reference) -> list[dict]:
    """Run the sequence on both; raise Disagreement at the first difference; return the reference's observations.

    After every step: the error kind, the values of `sequence.values`; after every call besides: .grad of every leaf
    (where the sequence reads .grad), grad's and derivative's results, each hook's gradients, the order of the hooks
    of one tensor, the grad mode inside hooks (grad_mode), and requires_grad, is_leaf and grad_fn of every name
    (introspection).
    """
    case = build_case(sequence.data, "<fuzz sequence>", "fuzz/sequence.yaml")
    ours, theirs = Session(case, engine), Session(case, reference)
    reads_grad = bool({"backward", "grad_assignment"} & case.capabilities)
    introspects = "introspection" in engine.capabilities and "introspection" in reference.capabilities
    modes = "grad_mode" in engine.capabilities and "grad_mode" in reference.capabilities
    hooked = _hooked_tensors(case.steps)
    observed = []
    for index, step in enumerate(case.steps):
        try:
            try:
                kind = ours.run(step)
            except AdapterFault as fault:  # the adapter refused: tolerated only where the engine records that it can't
                refusal = Disagreement(str(fault), "unsupported", step=step.kind, error=str(fault.__cause__ or fault))
                if isinstance(fault.__cause__, Unsupported) and tolerated(engine, refusal):
                    break
                raise
            expected_kind = theirs.run(step)
            where = f"step {index + 1} ({step.kind})"
            if step.kind == "derivative" and not {"grad", "grad_assignment"} & engine.capabilities:
                reads_grad = False  # its backward left the derivative in .grad, which nothing can put back
            if expected_kind == "unclassified":
                raise Disagreement(f"{where}: the reference engine itself raised an unclassified "
                                   f"error, a bug in gradspec's reference engine or its adapter: {theirs.last_error!r}")
            if kind == "crash_avoided":
                break  # the adapter refused what its engine crashes on (a recorded bug): nothing more to compare
            if ({kind, expected_kind} == {"freed_graph", None} and _ran_and_freed_everything(case.steps[:index], step)
                    and not _reruns_a_freed_saving_node(sequence, case.steps, index)):
                break  # LIFE-5: what a node saves is the engine's business, and a node that saved nothing may run again
            if (step.kind == "backward" and kind != expected_kind and {kind, expected_kind} - {None} <= EITHER_ERROR
                    and set(as_list(step.args.get("inputs") or ())) - set(sequence.leaves)):
                break  # PASS-11: whether backward runs a listed non-leaf's own node (and meets its errors) is the engine's
            if kind != expected_kind and {kind, expected_kind} <= EITHER_ERROR:
                break  # LIFE-7: a pass that meets both may raise either, by the order it runs independent nodes
            if expected_kind == "freed_graph" and kind is None and "graph_lifetime" not in engine.capabilities:
                break  # an engine that differentiates functions frees nothing: the LIFE rules are not its (graph_lifetime)
            if kind != expected_kind:
                detail = f" ({ours.last_error!r})" if kind is not None else ""
                raise Disagreement(f"{where}: the engine raised {kind or 'nothing'}{detail}, "
                                   f"the reference engine {expected_kind or 'nothing'}", "raised", None, kind,
                                   expected_kind, step.kind, error=repr(ours.last_error) if kind else "")
            for name in sequence.values:
                _same(where, "value", name, ours.value(name), theirs.value(name), step.kind)
            if index < sequence.first_call:
                if expected_kind is not None and step.kind == "compute":
                    break  # both refused to make a value; the steps that read it cannot run
                continue
            seen = {"raised": expected_kind, "grad": {}, "value": {}, "hooks": theirs.hook_calls(), "flags": {}}
            if expected_kind is not None:
                ours.hook_calls()
                observed.append(seen)
                break  # .grad is unspecified after an error (LIFE-6)
            if reads_grad:
                for leaf in sequence.leaves:
                    _same(where, "grad", leaf, ours.grad(leaf), theirs.grad(leaf), step.kind)
                    seen["grad"][leaf] = theirs.grad(leaf)
            call = step.args.get("grad") or step.args.get("derivative") or {}
            for name in call.get("as", ()):
                _same(where, "result", name, ours.value(name), theirs.value(name), step.kind)
                seen["value"][name] = theirs.value(name)
            mine = ours.hook_calls()
            if sorted(mine) != sorted(seen["hooks"]):
                raise Disagreement(f"{where}: hooks called {sorted(mine)}, the reference engine called "
                                   f"{sorted(seen['hooks'])}", "hooks", None, sorted(mine), sorted(seen["hooks"]), step.kind)
            concurrent = step.kind == "threads"  # which thread's pass a hook sees first is the scheduler's
            if not concurrent:
                _same_hook_order(where, ours.last_hook_order, theirs.last_hook_order, hooked, step.kind)
            if modes and not concurrent and ours.last_hook_modes != theirs.last_hook_modes:
                raise Disagreement(f"{where}: grad mode inside the hooks was "
                                   f"{ours.last_hook_modes}, in the reference engine {theirs.last_hook_modes} (PASS-1)",
                                   "grad_mode", None, ours.last_hook_modes, theirs.last_hook_modes, step.kind)
            for label, grads in seen["hooks"].items():
                if len(grads) != len(mine[label]):
                    raise Disagreement(f"{where}: hook {label} called {len(mine[label])} times, "
                                       f"the reference engine {len(grads)}", "hook_calls", label, len(mine[label]),
                                       len(grads), step.kind)
                for number, (a, b) in enumerate(zip(mine[label], grads, strict=True), start=1):
                    if not concurrent:  # in threads, calls are counted: what each saw depends on the interleaving
                        _same(where, "hook_grad", label, a, b, step.kind, f"hook {label}, call {number}")
            if introspects:
                for name in sorted(set(ours.names()) & set(theirs.names())):
                    flags = theirs.introspect(name)
                    if flags is None:
                        continue
                    if ours.introspect(name) != flags:
                        raise Disagreement(f"{where}: {name} has (requires_grad, is_leaf, has grad_fn) "
                                           f"{ours.introspect(name)}, in the reference engine {flags}", "flags", name,
                                           ours.introspect(name), flags, step.kind)
                    seen["flags"][name] = flags
            observed.append(seen)
        except Disagreement as found:
            if tolerated(engine, found) is None:
                raise
            break  # a difference the engine's expectation file records: what follows may differ for that reason
    return observed


def _hooked_tensors(steps) -> dict[str, str]:
    """Hook label -> the tensor it is registered on, through blocks too."""
    found = {}
    for step in steps:
        for key in ("register_hook", "register_post_accumulate_grad_hook", "register_node_prehook",
                    "register_node_hook"):
            if key in step.args:
                found[step.args["as"]] = step.args[key]
        found.update(_hooked_tensors(step.body))
    return found


def _same_hook_order(where: str, mine: list[str], theirs: list[str], hooked: dict[str, str], kind: str) -> None:
    """The hooks of one tensor (and one kind) run in the order they were registered (HOOK-2, PASS-2): the calls of each
    tensor's hooks, in order, must agree; the order across tensors follows the graph and is free."""
    for target in set(hooked.values()):
        a = [label for label in mine if hooked.get(label) == target]
        b = [label for label in theirs if hooked.get(label) == target]
        if a != b:
            raise Disagreement(f"{where}: the hooks of {target} ran in the order {a}, in the "
                               f"reference engine {b}", "hook_order", target, a, b, kind)


_SAID = {"value": "value of {}", "grad": ".grad of {}", "result": "result {}"}


def _same(where: str, observable: str, name: str, got: np.ndarray | None, expected: np.ndarray | None, kind: str,
          said: str | None = None) -> None:
    what = f"{where}: {said or _SAID[observable].format(name)}"
    if (got is None) != (expected is None):
        raise Disagreement(f"{what}: the engine has {'None' if got is None else got}, "
                           f"the reference engine {'None' if expected is None else expected}", observable, name,
                           got, expected, kind)
    if got is not None and (got.shape != expected.shape or not np.allclose(got, expected, rtol=RTOL, atol=ATOL)):
        raise Disagreement(f"{what}: the engine has {got}, the reference engine {expected}", observable, name, got,
                           expected, kind)


def as_case(sequence: Sequence, observed: list[dict], engine: str) -> dict:
    """The sequence with the reference engine's observations as expectations after every call."""
    data = copy.deepcopy(sequence.data)
    steps = data["steps"][:sequence.first_call]
    raised_in_block = None
    for call, seen in zip(data["steps"][sequence.first_call:], observed, strict=False):
        call = call if isinstance(call, dict) else {"compute": call}
        if seen["raised"] is not None:
            if {"repeat", "threads"} & set(call):  # blocks that expect nothing themselves: the block, then the end
                steps.append(call)
                raised_in_block = seen["raised"]
            else:
                steps.append({**call, "raises": seen["raised"]})
            break
        steps.append(call)
        expect = {"grad": {leaf: plain(value) for leaf, value in seen["grad"].items()}} if seen["grad"] else {}
        if seen["value"]:
            expect["value"] = {name: plain(value) for name, value in seen["value"].items()}
        if seen["hooks"]:
            expect["hook_grads"] = {label: [plain(g) for g in grads] for label, grads in seen["hooks"].items()}
        flags = {name: f for name, f in seen["flags"].items() if f[0] != "raises"}
        if flags:
            expect.update(requires_grad={name: f[0] for name, f in flags.items()},
                          is_leaf={name: f[1] for name, f in flags.items()},
                          has_grad_fn={name: f[2] for name, f in flags.items()})
        if expect:
            steps.append({"expect": expect})
    data.update(
        steps=steps,
        title=f"fuzz: a sequence of autograd calls where {engine} and the reference engine disagree",
        rules=list(sequence.rules),
        derivation="Expected values are what gradspec's reference engine observed after each call of a shrunk fuzz "
                   "draw. Derive them by hand from the rule book before moving this case into cases/."
                   + (f" The last block raised {raised_in_block} on the reference engine (a repeat or threads block "
                      "cannot expect an error)." if raised_in_block else ""),
        tolerance={"rtol": RTOL, "atol": ATOL, "reason": "two engines in float64 on the same graph"},
    )
    data["capabilities"] = sorted(needed_capabilities(data))  # the expectations need some too (expect.grad: backward)
    return data
