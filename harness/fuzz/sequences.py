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
from dataclasses import dataclass

import numpy as np
from gradspec.fuzz.staging import plain
from gradspec.fuzz.strategies import graphs
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import build_case
from gradspec.running.interpreter import Session
from hypothesis import reject
from hypothesis import strategies as st

RTOL, ATOL = 1e-9, 1e-12
EITHER_ERROR = {"freed_graph", "inplace_modified", "custom_grad_count", "custom_grad_shape"}  # LIFE-7

# What a drawn sequence may call: an engine lacking any of these cannot be compared so.
CAPABILITIES = frozenset({"grad", "backward", "allow_unused", "create_graph", "graph_lifetime", "retain_grad",
                          "tensor_hooks", "grad_assignment"})
# What it calls besides, where the engine has them: post-accumulate hooks, hooks on the nodes of intermediates,
# backward over some inputs (and with create_graph), the grad mode inside hooks and custom backwards (compared),
# calls of custom functions (FUNCTIONS), and inference_mode blocks that update a leaf in place (with inplace, and
# version_counters: a later pass through a node that saved the leaf raises inplace_modified on the reference engine).
OPTIONAL = frozenset({"post_accumulate_grad_hooks", "node_hooks", "backward_inputs", "backward_create_graph",
                      "grad_mode", "custom_function", "custom_multiple_outputs", "argument_forms", "several_roots",
                      "inference_mode", "inplace", "version_counters", "grad_mode_forms"})
BLOCKS = frozenset({"inplace", "version_counters"})  # what a grad-mode block's in-place update of a leaf needs
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
}


@dataclass(frozen=True)
class Sequence:
    data: dict  # the case: the graph, `loss = ...`, then the calls
    leaves: tuple[str, ...]
    first_call: int  # index in data["steps"] of the first autograd call
    values: tuple[str, ...] = ()  # names whose values must agree after every step (views alias their base)
    rules: tuple[str, ...] = ("ACC-1", "LIFE-1")  # what a staged case cites


@st.composite
def sequences(draw, max_calls: int = 5, exclude: frozenset = frozenset(), extras: frozenset = frozenset()) -> Sequence:
    """A graph, `loss` over it (and over calls of custom functions, with `custom_function` in `extras`), then
    autograd calls; `extras` are the OPTIONAL capabilities the engine under test has."""
    graph = draw(graphs(max_ops=4, exclude=exclude))
    data = copy.deepcopy(graph.data)
    steps = list(data["steps"])
    intermediates = [step.split(" = ")[0] for step in graph.data["steps"]]
    if graph.grad_output is None:
        loss = f"sum({graph.output})"
    else:
        data["tensors"]["weights"] = {"value": [list(r) if isinstance(r, tuple) else r for r in graph.grad_output]}
        loss = f"sum(mul({graph.output}, weights))"
    used = set()
    if "custom_function" in extras:
        custom_steps, outputs, used = draw(custom_calls(list(graph.leaves) + intermediates, extras, exclude))
        steps += custom_steps
        loss = " + ".join([loss, *(f"sum({name})" for name in outputs)])
        if used:
            data["functions"] = {name: FUNCTIONS[name] for name in sorted(used)}
    steps.append(f"loss = {loss}")
    first_call = len(steps)
    steps += draw(calls(list(graph.leaves), intermediates, intermediates, max_calls, extras))
    needed = used and {"custom_function"} | ({"custom_multiple_outputs"} if "Pair" in used else set())
    data.update(steps=steps, capabilities=sorted(CAPABILITIES | (extras & (_called(steps) | set(needed or ())))))
    if used:  # a custom call's operands may not broadcast together (Product): such a draw is not a case
        try:
            build_case(data, "<fuzz sequence>", "fuzz/sequence.yaml")
        except CaseFileError:
            reject()
    return Sequence(data, tuple(graph.leaves), first_call)


@st.composite
def custom_calls(draw, names: list[str], extras: frozenset,
                 exclude: frozenset = frozenset()) -> tuple[list[str], list[str], set[str]]:
    """Up to two calls of custom functions on values of the graph: the steps, the outputs, the functions used; none
    whose steps call an op in `exclude`."""
    steps, outputs, used = [], [], set()
    choices = sorted(name for name, function in FUNCTIONS.items()
                     if (name != "Pair" or "custom_multiple_outputs" in extras)
                     and not set(re.findall(r"(\w+)\(", " ".join(function["forward"] + function["backward"]))) & exclude)
    if not choices:
        return steps, outputs, used
    for index in range(draw(st.integers(0, 2), label="custom calls")):
        name = draw(st.sampled_from(choices), label=f"custom function {index}")
        operands = [draw(st.sampled_from(names), label=f"operand {slot} of custom call {index}")
                    for slot in FUNCTIONS[name]["inputs"]]
        results = [f"c{index}_{output}" for output in FUNCTIONS[name]["outputs"]]
        steps.append(f"{', '.join(results)} = {name}({', '.join(operands)})")
        outputs += results
        used.add(name)
    return steps, outputs, used


def _called(steps: list) -> set[str]:
    """The optional capabilities the drawn calls use."""
    found = set()
    for step in steps:
        if isinstance(step, dict):
            if "register_post_accumulate_grad_hook" in step:
                found.add("post_accumulate_grad_hooks")
            if "inputs" in step and "backward" in step:
                found.add("backward_inputs")
            if step.get("create_graph") and "backward" in step:
                found.add("backward_create_graph")
            forms = step.get("forms") or (step.get("grad") or {}).get("forms")
            if forms:
                found.add("argument_forms")
                if forms.get("backward") in ("list", "tuple"):
                    found.add("several_roots")  # autograd.backward([loss])
            if "register_node_prehook" in step or "register_node_hook" in step:
                found.add("node_hooks")
            if "inference_mode" in step:
                found |= {"inference_mode", *BLOCKS}  # the block updates a leaf in place
            if "no_grad" in step or "set_grad_enabled" in step:
                found |= {"grad_mode", *BLOCKS}
            if "form" in step:
                found.add("grad_mode_forms")
            if any(key.startswith("register_") for key in step):
                found.add("grad_mode")  # the grad mode inside hooks is compared (PASS-1)
    return found


@st.composite
def calls(draw, leaves: list[str], intermediates: list[str], hookable: list[str], max_calls: int = 5,
          extras: frozenset = frozenset()) -> list:
    """Autograd calls on `loss`: backward (over some inputs, with backward_inputs), grad, retain_grad (on
    intermediates), hooks (on leaves and `hookable`; returning nothing or a scaled gradient, so that their order
    shows), post-accumulate hooks on leaves, pre- and post-hooks on the nodes of intermediates (PASS-7), and
    resetting a leaf's .grad."""
    steps: list = []
    hooks = 0
    kinds = ["backward", "grad", "retain_grad", "register_hook", "set_grad"]
    if "post_accumulate_grad_hooks" in extras:
        kinds.append("register_post_accumulate_grad_hook")
    # Whether `backward` over a listed non-leaf runs that tensor's node (so its node hooks fire) is engine-specific
    # (PASS-11): a draw with node hooks lists only leaves.
    node_hooks = "node_hooks" in extras and bool(hookable) and draw(st.booleans(), label="node hooks")
    if node_hooks:
        kinds += ["register_node_prehook", "register_node_hook"]
    # Grad-mode blocks update a leaf in place, after which no hook is registered (_without_hooks): one sequence in
    # four has them, so that hooks keep most of the draws.
    blocks = draw(st.integers(0, 3), label="grad-mode blocks") == 0
    if blocks and {"inference_mode", *BLOCKS} <= extras:
        kinds.append("inference_mode")
    if blocks and {"grad_mode", *BLOCKS} <= extras:
        kinds.append("grad_mode_block")
    for index in range(draw(st.integers(1, max_calls), label="calls")):
        kind = draw(st.sampled_from(kinds), label=f"call {index}")
        if kind in ("backward", "grad"):
            # Paddle's backward has no create_graph (backward_create_graph); grad always has it
            keys = ("retain_graph", "create_graph") if kind == "grad" or "backward_create_graph" in extras \
                else ("retain_graph",)
            options = {key: draw(st.sampled_from([None, False, True]), label=f"{key} of call {index}")
                       for key in keys}
            options = {key: value for key, value in options.items() if value is not None}
            if kind == "backward":
                if "backward_inputs" in extras and draw(st.booleans(), label=f"inputs of call {index}"):
                    listable = leaves if node_hooks else leaves + intermediates
                    options["inputs"] = draw(st.lists(st.sampled_from(listable), min_size=1,
                                                      max_size=2, unique=True), label=f"listed inputs of {index}")
                forms = {}
                if "argument_forms" in extras:  # loss.backward, or autograd.backward([loss]) / ((loss,))
                    if "several_roots" in extras:
                        forms["backward"] = draw(st.sampled_from(FORMS), label=f"form of the output of {index}")
                    if "inputs" in options:
                        forms["inputs"] = draw(_form(len(options["inputs"])), label=f"form of the inputs of {index}")
                steps.append({"backward": "loss", **options, **({"forms": forms} if forms else {})})
            else:
                inputs = draw(st.lists(st.sampled_from(leaves + intermediates), min_size=1, max_size=3, unique=True),
                              label=f"inputs of call {index}")
                names = [f"g{index}_{n}" for n in inputs]
                if "argument_forms" in extras:
                    options["forms"] = {"outputs": draw(_form(1), label=f"form of the output of {index}"),
                                        "inputs": draw(_form(len(inputs)), label=f"form of the inputs of {index}")}
                steps.append({"grad": {"outputs": "loss", "inputs": inputs, "allow_unused": True, "as": names,
                                       **options}})
        elif kind == "retain_grad" and intermediates:
            steps.append({"retain_grad": draw(st.sampled_from(intermediates), label=f"tensor of call {index}")})
        elif kind == "register_hook":
            tensor = draw(st.sampled_from(leaves + hookable), label=f"tensor of call {index}")
            for _ in range(draw(st.integers(1, 2), label=f"hooks of call {index}")):  # two: their order shows
                # Hooks on leaves may return a scaled gradient. On a non-leaf, what grad returns for it when it is
                # requested and also on the way to another requested input is engine-specific (HOOK-14).
                returns = draw(st.sampled_from([None, 2.0, -0.5]), label=f"hook result of call {index}") \
                    if tensor in leaves else None
                steps.append({"register_hook": tensor, "as": f"h{hooks}", **({} if returns is None else
                                                                            {"returns": {"scale": returns}})})
                hooks += 1
        elif kind == "register_post_accumulate_grad_hook":
            tensor = draw(st.sampled_from(leaves), label=f"leaf of call {index}")
            steps.append({"register_post_accumulate_grad_hook": tensor, "as": f"h{hooks}"})
            hooks += 1
        elif kind in ("register_node_prehook", "register_node_hook"):
            tensor = draw(st.sampled_from(hookable), label=f"tensor of call {index}")
            returns = draw(st.sampled_from([None, 3.0]), label=f"pre-hook result of call {index}") \
                if kind == "register_node_prehook" else None
            steps.append({kind: tensor, "as": f"h{hooks}", **({} if returns is None else
                                                              {"returns": {"scale": returns}})})
            hooks += 1
        elif kind == "set_grad":
            steps.append({"set_grad": {draw(st.sampled_from(leaves), label=f"leaf of call {index}"): None}})
        elif kind == "inference_mode":
            # MODE-11: an in-place update of a leaf inside inference_mode is allowed and unrecorded, and moves its
            # version, so a later pass through a node that saved it raises inplace_modified; MODE-9: a result made
            # there (unused) is recorded nowhere. Never a pass inside it: its gradients are engine-specific (MODE-13).
            leaf = draw(st.sampled_from(leaves), label=f"leaf of call {index}")
            steps.append({"inference_mode": [f"{leaf} *= 1.5", f"i{index} = {leaf} * 2"]})
            kinds = _without_hooks(kinds)
        elif kind == "grad_mode_block":
            # MODE-1, MODE-3: a leaf updated in place under no_grad (an optimizer's step) is allowed, unrecorded, and
            # moves its version; written as a with block, a decorated function or a decorated generator resumed
            # once per step, so a mode that lapses between resumes makes the second update raise leaf_inplace.
            leaf = draw(st.sampled_from(leaves), label=f"leaf of call {index}")
            body = [f"{leaf} *= 0.5", f"{leaf} *= 3"]
            mode = draw(st.sampled_from(["no_grad", "set_grad_enabled"]), label=f"grad mode of call {index}")
            block = {"no_grad": body} if mode == "no_grad" else {"set_grad_enabled": False, "steps": body}
            form = "context"
            if "grad_mode_forms" in extras:
                form = draw(st.sampled_from(["context", "decorator", "generator"]), label=f"form of call {index}")
            if form != "context":
                block["form"] = form
            steps.append(block)
            kinds = _without_hooks(kinds)
    return steps


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
    """Whether an earlier pass over the same output, retaining nothing, freed what its nodes had saved.

    If so, and the reference engine can still run the nodes this pass needs, those saved nothing
    there: whether such a node may run again is engine-specific (LIFE-5), not a disagreement. (A
    node may save in one engine what is an attribute in the other: PyTorch's indexing saves its
    index tensor, found by the view-sequence property.)
    """
    output = _output_of(step)
    return any(s.kind in ("backward", "grad") and _output_of(s) == output and not _options(s).get("retain_graph")
               and not (_options(s).get("create_graph") and _options(s).get("retain_graph") is None)
               for s in earlier)


def _options(step) -> dict:
    return step.args if step.kind == "backward" else step.args.get("grad", {})


def _output_of(step):
    return step.args.get("backward") or step.args.get("grad", {}).get("outputs")


class Disagreement(AssertionError):
    """The engine under test and the reference engine observed different things."""


def compare(sequence: Sequence, engine, reference) -> list[dict]:
    """Run the sequence on both; raise Disagreement at the first difference; return the reference's observations."""
    case = build_case(sequence.data, "<fuzz sequence>", "fuzz/sequence.yaml")
    ours, theirs = Session(case, engine), Session(case, reference)
    observed = []
    for index, step in enumerate(case.steps):
        kind, expected_kind = ours.run(step), theirs.run(step)
        if expected_kind == "unclassified":
            raise Disagreement(f"step {index + 1} ({step.kind}): the reference engine itself raised an unclassified "
                               f"error, a bug in gradspec's reference engine or its adapter: {theirs.last_error!r}")
        if kind == "freed_graph" and expected_kind is None and _ran_and_freed_everything(case.steps[:index], step):
            break  # LIFE-5: the nodes left to run saved nothing in the reference engine, and may run again or not
        if kind != expected_kind and {kind, expected_kind} <= EITHER_ERROR:
            break  # LIFE-7: a pass that meets both may raise either, by the order it runs independent nodes
        if kind != expected_kind:
            raise Disagreement(f"step {index + 1} ({step.kind}): the engine raised {kind or 'nothing'}, "
                               f"the reference engine {expected_kind or 'nothing'}")
        for name in sequence.values:
            _same(f"step {index + 1} ({step.kind}): value of {name}", ours.value(name), theirs.value(name))
        if index < sequence.first_call:
            if expected_kind is not None and step.kind == "compute":
                break  # both refused to make a value; the steps that read it cannot run
            continue
        seen = {"raised": expected_kind, "grad": {}, "value": {}, "hooks": theirs.hook_calls()}
        if expected_kind is not None:
            ours.hook_calls()
            observed.append(seen)
            break  # .grad is unspecified after an error (LIFE-6)
        for leaf in sequence.leaves:
            _same(f"step {index + 1} ({step.kind}): .grad of {leaf}", ours.grad(leaf), theirs.grad(leaf))
            seen["grad"][leaf] = theirs.grad(leaf)
        for name in step.args.get("grad", {}).get("as", ()):
            _same(f"step {index + 1} (grad): result {name}", ours.value(name), theirs.value(name))
            seen["value"][name] = theirs.value(name)
        mine = ours.hook_calls()
        if sorted(mine) != sorted(seen["hooks"]):
            raise Disagreement(f"step {index + 1} ({step.kind}): hooks called {sorted(mine)}, "
                               f"the reference engine called {sorted(seen['hooks'])}")
        if "grad_mode" in case.capabilities and ours.last_hook_modes != theirs.last_hook_modes:
            raise Disagreement(f"step {index + 1} ({step.kind}): grad mode inside the hooks was "
                               f"{ours.last_hook_modes}, in the reference engine {theirs.last_hook_modes} (PASS-1)")
        for label, grads in seen["hooks"].items():
            if len(grads) != len(mine[label]):
                raise Disagreement(f"step {index + 1}: hook {label} called {len(mine[label])} times, "
                                   f"the reference engine {len(grads)}")
            for call, (a, b) in enumerate(zip(mine[label], grads, strict=True), start=1):
                _same(f"step {index + 1}: hook {label}, call {call}", a, b)
        observed.append(seen)
    return observed


def _same(what: str, got: np.ndarray | None, expected: np.ndarray | None) -> None:
    if (got is None) != (expected is None):
        raise Disagreement(f"{what}: the engine has {'None' if got is None else got}, "
                           f"the reference engine {'None' if expected is None else expected}")
    if got is not None and (got.shape != expected.shape or not np.allclose(got, expected, rtol=RTOL, atol=ATOL)):
        raise Disagreement(f"{what}: the engine has {got}, the reference engine {expected}")


def as_case(sequence: Sequence, observed: list[dict], engine: str) -> dict:
    """The sequence with the reference engine's observations as expectations after every call."""
    data = copy.deepcopy(sequence.data)
    steps = data["steps"][:sequence.first_call]
    for call, seen in zip(data["steps"][sequence.first_call:], observed, strict=False):
        call = call if isinstance(call, dict) else {"compute": call}
        if seen["raised"] is not None:
            steps.append({**call, "raises": seen["raised"]})
            break
        steps.append(call)
        expect = {"grad": {leaf: plain(value) for leaf, value in seen["grad"].items()}}
        if seen["value"]:
            expect["value"] = {name: plain(value) for name, value in seen["value"].items()}
        if seen["hooks"]:
            expect["hook_grads"] = {label: [plain(g) for g in grads] for label, grads in seen["hooks"].items()}
        steps.append({"expect": expect})
    data.update(
        steps=steps,
        title=f"fuzz: a sequence of autograd calls where {engine} and the reference engine disagree",
        rules=list(sequence.rules),
        derivation="Expected values are what gradspec's reference engine observed after each call of a shrunk fuzz "
                   "draw. Derive them by hand from the rule book before moving this case into cases/.",
        tolerance={"rtol": RTOL, "atol": ATOL, "reason": "two engines in float64 on the same graph"},
    )
    return data
