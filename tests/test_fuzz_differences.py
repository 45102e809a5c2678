"""Known differences the sequence fuzzer tolerates: each one exactly, and each backed by a line of the engine's
expectation file (gradspec.fuzz.differences)."""

from __future__ import annotations

import pytest
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.fuzz import sequences
from gradspec.fuzz.differences import KNOWN, tolerated
from gradspec.running import expectations
from gradspec.running.registry import load_adapter, registered

from .conftest import CASES, REPO


def test_every_tolerated_difference_is_known_and_recorded_in_the_engines_expectation_file():
    declared = {engine: load_adapter(engine).fuzz_tolerates for engine in sorted(registered())}
    assert any(declared.values()), "no engine tolerates anything: this test would check nothing"
    for engine, tolerates in declared.items():
        lines = {line.pattern for line in expectations.load(REPO / "expectations" / f"{engine}.txt")} if tolerates else ()
        for name, case in tolerates.items():
            assert name in KNOWN or name.startswith("op:"), (
                f"{engine} tolerates {name!r}, which gradspec.fuzz.differences.KNOWN does not have")
            assert (CASES / case).is_file(), f"{engine}: {name} names {case}, which is no case of the corpus"
            assert case in lines or any(line.startswith(f"{case}::{engine}") for line in lines), (
                f"{engine}: {name} names {case}, but expectations/{engine}.txt has no line for it: a tolerated "
                "difference must be one the corpus shows and the expectation file records")


class _LeavesWithGradFn(ReferenceAdapter):
    """An engine that gives leaves a grad_fn (as Paddle does), and otherwise is the reference engine."""
    name = "leaves-with-grad-fn"

    def has_grad_fn(self, tensor) -> bool:
        return True if self.is_leaf(tensor) else super().has_grad_fn(tensor)


class _ResultsLoseRequiresGrad(ReferenceAdapter):
    """An engine whose results report requires_grad false after a pass: not what either known difference says."""
    name = "results-lose-requires-grad"
    fuzz_tolerates = {"leaf_has_grad_fn": "leaves/leaves-and-results.yaml"}

    def requires_grad(self, tensor) -> bool:
        return super().requires_grad(tensor) and (self.is_leaf(tensor) or not tensor_passed(tensor))


def tensor_passed(tensor) -> bool:
    return getattr(tensor, "grad_fn", None) is not None


SEQUENCE = sequences.Sequence(
    data={"schema_version": 1, "title": "t", "rules": ["LIFE-1"], "source": "s", "derivation": "d",
          "capabilities": ["backward", "introspection", "graph_lifetime"],
          "tensors": {"x0": {"value": [0.5, -1.25], "requires_grad": True}},
          "steps": ["v0 = sin(x0)", "loss = sum(v0)", {"backward": "loss", "retain_graph": True},
                    {"backward": "loss"}]},
    leaves=("x0",), first_call=2)


def test_a_tolerated_difference_ends_the_draw_and_an_undeclared_one_fails_it():
    reference = ReferenceAdapter("cpu", "float64")
    engine = _LeavesWithGradFn("cpu", "float64")
    with pytest.raises(sequences.Disagreement) as found:
        sequences.compare(SEQUENCE, engine, reference)
    assert found.value.observable == "flags" and found.value.name == "x0"
    assert found.value.got == (True, True, True) and found.value.expected == (True, True, False)
    tolerant = type("Tolerant", (_LeavesWithGradFn,), {"fuzz_tolerates": {"leaf_has_grad_fn": "x"}})("cpu", "float64")
    assert tolerated(tolerant, found.value) == "leaf_has_grad_fn"
    sequences.compare(SEQUENCE, tolerant, reference)  # ends the draw at the difference, without failing


def test_a_tolerance_matches_only_its_own_difference():
    reference = ReferenceAdapter("cpu", "float64")
    with pytest.raises(sequences.Disagreement) as found:
        sequences.compare(SEQUENCE, _ResultsLoseRequiresGrad("cpu", "float64"), reference)
    assert found.value.observable == "flags" and found.value.got[0] is False
    flags = sequences.Disagreement("d", "flags", "y", (True, True, True), (True, False, True), "backward")
    assert KNOWN["leaf_has_grad_fn"].matches(flags) is False  # a result called a leaf is another difference
    values = sequences.Disagreement("d", "value", "y", (True, True, True), (True, True, False), "backward")
    assert KNOWN["leaf_has_grad_fn"].matches(values) is False
    became = sequences.Disagreement("d", "flags", "y", (True, True, False), (True, False, True), "backward")
    assert KNOWN["results_become_leaves"].matches(became)
    also_constant = sequences.Disagreement("d", "flags", "y", (False, True, False), (True, False, True), "backward")
    assert not KNOWN["results_become_leaves"].matches(also_constant)


def _sequence(steps: list, first_call: int, tensors: dict | None = None, functions: dict | None = None):
    data = {"schema_version": 1, "title": "t", "rules": ["LIFE-1"], "source": "s", "derivation": "d",
            "capabilities": ["backward", "graph_lifetime", "custom_function"],
            "tensors": tensors or {"x0": {"value": [0.5, -1.25], "requires_grad": True},
                                   "x1": {"value": [2.0, 0.25], "requires_grad": True}},
            "steps": steps, **({"functions": functions} if functions else {})}
    return sequences.Sequence(data, leaves=tuple(data["tensors"]), first_call=first_call)


def _must_raise(steps: list, first_call: int, **kwargs) -> bool:
    from gradspec.language.loader import build_case, needed_capabilities
    sequence = _sequence(steps, first_call, **kwargs)
    sequence.data["capabilities"] = sorted(needed_capabilities(sequence.data))
    case = build_case(sequence.data, "<t>", "t.yaml")
    return sequences._reruns_a_freed_saving_node(sequence, case.steps, len(case.steps) - 1)


@pytest.mark.parametrize(("steps", "expected"), [
    (["v0 = sin(x0)", "loss = sum(v0)", {"backward": "loss"}, {"backward": "loss"}], True),
    (["v0 = x0 + x1", "loss = sum(v0)", {"backward": "loss"}, {"backward": "loss"}], False),  # saves nothing: LIFE-5
    (["v0 = sin(x0)", "loss = sum(v0)", {"backward": "loss", "retain_graph": True}, {"backward": "loss"}], False),
    (["v0 = sin(x0)", "loss = sum(v0)", {"backward": "loss"}, {"backward": "loss", "inputs": ["x0"]}], True),
    (["v0 = sin(x0)", "loss = sum(v0 + x1)", {"backward": "loss"}, {"backward": "loss", "inputs": ["x1"]}], False),
    (["v0 = sin(x0)", "loss = sum(v0 + x1)", {"backward": "loss"},
      {"grad": {"outputs": "loss", "inputs": ["x0"], "as": ["g"]}}], True),
    (["v0 = sin(x0)", "loss = sum(v0 + x1)", {"grad": {"outputs": "loss", "inputs": ["x1"], "as": ["g"]}},
      {"backward": "loss"}], False),  # the grad ran no node of sin, so freed nothing of it
    (["v0 = sin(x0)", "loss = sum(v0)", {"backward": "loss"}, {"backward": "loss", "inputs": ["v0"]}], False),
    (["v0 = sin(x0)", "loss = sum(v0)", "loss2 = sum(v0 * 2)", {"backward": "loss"}, {"backward": "loss2"}], True),
    (["v0 = sin(x0)", "v1 = x1 * 3", "loss = sum(v0)", "loss2 = sum(v1)", {"backward": "loss"},
      {"backward": "loss2"}], False),  # the second pass meets no node the first freed
    (["v0 = sin(detach(x0))", "loss = sum(v0 + x1)", {"backward": "loss"}, {"backward": "loss"}], False),  # no node
    (["v0 = sin(x0)", "loss = sum(v0)", {"backward": "loss"}, "x1 *= 2", {"backward": "loss"}], False),  # not plain
], ids=["sin twice", "additions twice", "retained first", "second over x", "second over another input",
        "grad over x", "a grad that ran no sin", "second stops at a non-leaf", "another root shares sin",
        "another root shares nothing", "sin of a detached value", "an update between"])
def test_a_second_full_pass_must_raise_only_where_it_reruns_a_node_that_saved(steps, expected):
    first_call = next(i for i, step in enumerate(steps) if isinstance(step, dict))
    assert _must_raise(steps, first_call) is expected


def test_a_custom_function_saves_only_what_it_says():
    functions = {name: sequences.FUNCTIONS[name] for name in ("Cube", "Flattened", "WithIndex")}
    assert _must_raise(["c0_y = Cube(x0)", "loss = sum(c0_y)", {"backward": "loss"}, {"backward": "loss"}], 2,
                       functions=functions)
    assert not _must_raise(["c0_y = Flattened(x0)", "loss = sum(c0_y)", {"backward": "loss"}, {"backward": "loss"}],
                           2, functions=functions)
    # the marked output does not require grad: mul over it alone records nothing
    assert not _must_raise(["c0_y, c0_m = WithIndex(x0)", "loss = sum(c0_m * c0_m) + sum(c0_y)",
                            {"backward": "loss"}, {"backward": "loss"}], 2, functions=functions)


def _common():
    from gradspec.fuzz.properties import common_capabilities
    return common_capabilities(ReferenceAdapter("cpu", "float64"), ReferenceAdapter("cpu", "float64"))


@pytest.mark.parametrize("unmodifiable", [frozenset({"v0"}), frozenset()], ids=["prod's result", "any other"])
def test_a_result_that_some_engine_saves_is_never_updated_in_place(unmodifiable):
    from gradspec.language.expressions import ExpressionError, parse_statement
    from hypothesis import HealthCheck, given, settings
    both, agreed = _common()
    updated = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(sequences.calls(["x0"], ["v0"], ["v0"], 6, both, shapes={"x0": (2, 3), "v0": (2, 3), "loss": ()},
                           agreed=agreed, depends={"v0": {"x0"}, "loss": {"x0", "v0"}}, unmodifiable=unmodifiable))
    def check(steps):
        for step in steps:
            for text in _updates(step):
                try:
                    statement = parse_statement(text)
                except ExpressionError:
                    continue
                if statement.inplace_op is not None and statement.target == "v0":
                    updated.append(text)

    check()
    assert bool(updated) is not bool(unmodifiable), updated  # drawn where allowed: the filter is what stops it


def test_drawn_custom_functions_take_operands_of_one_shape():
    from hypothesis import HealthCheck, given, settings
    both, agreed = _common()
    seen = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(sequences.sequences(extras=both, agreed=agreed))
    def check(sequence):
        prefix = sequence.data["steps"][:sequence.first_call]
        graph = [text for text in prefix if not _calls_function(text, sequence.data) and not text.startswith("loss")]
        shapes = sequences._shapes({**sequence.data, "steps": graph})
        for text in prefix:
            if _calls_function(text, sequence.data):
                operands = [a.strip() for a in text.split("(", 1)[1].rstrip(")").split(",")]
                assert len({shapes.get(a) for a in operands}) == 1, text  # CUSTOM-5 is engine-specific
                seen.extend(operands[1:])

    check()
    assert seen  # functions of two operands were drawn


def _calls_function(text: str, data: dict) -> bool:
    return any(f"{name}(" in text for name in data.get("functions", {}))


def _updates(step):
    """The compute statements of a call and of the blocks inside it."""
    if isinstance(step, str):
        yield step
    elif isinstance(step, dict):
        if "compute" in step:
            yield step["compute"]
        for value in step.values():
            if isinstance(value, list):
                for inner in value:
                    yield from _updates(inner)
