"""The fuzzer's judges catch planted errors, and a planted failure becomes a case file that reproduces it."""

from __future__ import annotations

import gradspec.reference_engine.engine as reference_engine_core
import numpy as np
import pytest
import yaml
from gradspec import cli, contracts, reference_engine
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.fuzz import definition, oracle, properties, staging
from gradspec.fuzz.strategies import Draw, graphs
from gradspec.language.loader import build_case, load_case
from gradspec.reference_engine import ops
from gradspec.running.interpreter import FAILED, PASSED, run_case
from gradspec.running.registry import adapter_problems
from hypothesis import HealthCheck, given, settings

from .conftest import REPO

QUICK = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class SmallVocabulary(ReferenceAdapter):
    """The reference engine with a few ops, so that a fault planted in one of them (sin) is drawn often, however
    large the vocabulary grows."""

    name = "small-vocabulary"
    lacks_ops = frozenset(contracts.ops()) - {"sum", "mean", "add", "mul", "sub", "exp", "sin", "tanh"}


def draw_of(steps: list[str], tensors: dict, output: str, grad_output=None) -> Draw:
    data = {"schema_version": 1, "title": "a hand-made draw", "rules": ["VJP-2"], "source": "tests/test_fuzz.py",
            "derivation": "not needed", "capabilities": ["grad"], "dtypes": ["float64"],
            "tensors": {name: {"value": value, "requires_grad": True} for name, value in tensors.items()},
            "steps": steps}
    return Draw(data, tuple(tensors), output, grad_output)


def problem(draw: Draw) -> oracle.Problem:
    return oracle.Problem(ReferenceAdapter("cpu", "float64"), draw)


SIN = draw_of(["v0 = sin(x0)", "v1 = mul(v0, x1)"], {"x0": [0.7, -1.3], "x1": [1.5, 0.4]}, "v1", (1.0, -2.0))
BROADCAST = draw_of(["v0 = mul(x0, x1)"], {"x0": [0.5, -1.2, 2.0], "x1": [[1.0, 2.0, 3.0], [-1.0, 0.5, 1.5]]},
                    "v0", ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0)))


SIN_OFF_BY_1E_4 = ops.Op(np.sin, (lambda g, a, b, o, t: g * ops.cos(a) * (1 + 1e-4),), ("a",))


@pytest.fixture
def sin_derivative_off_by_1e_4(monkeypatch):
    monkeypatch.setitem(ops.OPS, "sin", SIN_OFF_BY_1E_4)


@pytest.fixture
def sin_second_derivative_wrong(monkeypatch):
    """The first derivative stays right, but it is recorded as a constant: no second derivative."""
    planted = ops.Op(np.sin, (lambda g, a, b, o, t: g * ops.constant(np.cos(ops.data_of(a)), g),), ("a",))
    monkeypatch.setitem(ops.OPS, "sin", planted)


@pytest.fixture
def broadcast_reduction_wrong(monkeypatch):
    conform = reference_engine_core._conform

    def halving(gradient, node):
        data = gradient.data if hasattr(gradient, "data") and not isinstance(gradient, np.ndarray) else gradient
        reduced = conform(gradient, node)
        return reduced * 0.5 if np.shape(data) != node.shape else reduced

    monkeypatch.setattr(reference_engine_core, "_conform", halving)


def test_correct_engine_passes_both_checks():
    rng = np.random.default_rng(1)
    for draw in (SIN, BROADCAST):
        oracle.check_first_order(problem(draw), oracle.directions(rng, problem(draw)))
        oracle.check_second_order(problem(draw), oracle.directions(rng, problem(draw)),
                                  oracle.directions(rng, problem(draw)))


def test_a_derivative_off_by_relative_1e_4_is_caught_and_located(sin_derivative_off_by_1e_4):
    p = problem(SIN)
    with pytest.raises(oracle.OracleMismatch, match=r"worst element: d f / d x0\[\d\]"):
        oracle.check_first_order(p, oracle.directions(np.random.default_rng(1), p))


def test_a_wrong_broadcast_reduction_is_caught(broadcast_reduction_wrong):
    p = problem(BROADCAST)
    with pytest.raises(oracle.OracleMismatch, match=r"worst element: d f / d x0\["):
        oracle.check_first_order(p, oracle.directions(np.random.default_rng(1), p))


def test_an_engine_wrong_the_same_way_forward_and_backward_is_caught(monkeypatch):
    """The difference quotients come from the case's definition in numpy, not from the engine's forward."""
    torch_like = pytest.importorskip("gradspec.adapters.torch_like")
    from gradspec.adapters.torch_adapter import TorchAdapter

    monkeypatch.setitem(torch_like.OPS, "sin", lambda a: a.cos())  # torch differentiates its cos correctly
    p = oracle.Problem(TorchAdapter("cpu", "float64"), SIN)
    with pytest.raises(oracle.OracleMismatch, match="first derivative"):
        oracle.check_first_order(p, oracle.directions(np.random.default_rng(0), p))


def test_the_definition_is_the_cases_function_in_numpy():
    f = definition.numpy_function(SIN.case, "v1")
    x0, x1 = np.array([0.7, -1.3]), np.array([1.5, 0.4])
    np.testing.assert_allclose(f({"x0": x0, "x1": x1}), np.sin(x0) * x1)  # sin, then mul, by hand


def test_the_definition_refuses_what_is_not_a_function_of_the_leaves():
    steps = ["v0 = sin(x0)", {"backward": "v0", "gradient": [1.0, 1.0]}]
    data = dict(draw_of(steps, {"x0": [0.7, -1.3]}, "v0").data, capabilities=["grad", "backward"])
    with pytest.raises(ValueError, match="compute steps only"):
        definition.numpy_function(build_case(data, "test", "test.yaml"), "v0")


def test_the_definition_holds_detach_at_its_value_at_the_first_point_or_the_frozen_one():
    """detach(x0) * x0 is a function of x0 only once detach is a constant: p * x0 near the point p."""
    data = dict(draw_of(["v0 = detach(x0) * x0"], {"x0": [0.7, -1.3]}, "v0").data, capabilities=["grad", "detach"])
    case = build_case(data, "test", "test.yaml")
    p, q = np.array([0.7, -1.3]), np.array([1.0, 2.0])
    f = definition.numpy_function(case, "v0")
    np.testing.assert_allclose(f({"x0": p}), p * p)
    np.testing.assert_allclose(f({"x0": q}), p * q)  # held at the first point evaluated
    frozen = definition.frozen_cuts(case, "v0", {"x0": q})
    np.testing.assert_allclose(definition.numpy_function(case, "v0", frozen)({"x0": p}), q * p)


def test_a_wrong_second_derivative_is_caught_while_the_first_passes(sin_second_derivative_wrong):
    p = problem(SIN)
    rng = np.random.default_rng(1)
    oracle.check_first_order(p, oracle.directions(rng, p))
    with pytest.raises(oracle.OracleMismatch, match="second derivative"):
        oracle.check_second_order(p, oracle.directions(rng, p), oracle.directions(rng, p))


def test_a_planted_failure_is_shrunk_and_written_as_a_case_that_reproduces_it(sin_derivative_off_by_1e_4, tmp_path):
    adapter = SmallVocabulary("cpu", "float64")
    with pytest.raises(oracle.OracleMismatch, match=r"shrunk draw written to (\S+\.yaml)") as info:
        properties.run(properties.first_order, adapter, QUICK, tmp_path, "first-order")
    path = tmp_path / "cases" / next(p.name for p in (tmp_path / "cases").glob("*.yaml"))
    assert str(path) in str(info.value)
    case = load_case(path)
    assert any("sin" in step.statement.expr.op for step in case.steps if step.statement is not None)
    assert run_case(case, adapter).status == FAILED  # the written case reproduces the failure ...


def test_the_written_case_passes_once_the_bug_is_gone(tmp_path, monkeypatch):
    """... and only the failure: the same file passes on the correct engine."""
    planted = ops.Op(np.sin, (lambda g, a, b, o, t: g * ops.cos(a) * (1 + 1e-4),), ("a",))
    original = ops.OPS["sin"]
    monkeypatch.setitem(ops.OPS, "sin", planted)
    with pytest.raises(oracle.OracleMismatch):
        properties.run(properties.first_order, SmallVocabulary("cpu", "float64"), QUICK, tmp_path, "first-order")
    monkeypatch.setitem(ops.OPS, "sin", original)
    (path,) = (tmp_path / "cases").glob("*.yaml")
    assert run_case(load_case(path), ReferenceAdapter("cpu", "float64")).status == PASSED


@settings(max_examples=40, deadline=None, database=None)
@given(graphs())
def test_every_draw_is_a_case_that_survives_a_trip_through_yaml(tmp_path_factory, draw):
    text = yaml.safe_dump(draw.data, sort_keys=False)
    folder = tmp_path_factory.mktemp("draws")
    path = staging.write_case(yaml.safe_load(text), folder, "draw")
    loaded, drawn = load_case(path), draw.case
    assert [step.statement for step in loaded.steps] == [step.statement for step in drawn.steps]
    assert all(np.array_equal(a.value, b.value) for a, b in zip(loaded.tensors, drawn.tensors, strict=True))


def test_fuzz_properties_run_per_engine_and_can_be_turned_off(pytester):
    pytester.makeconftest("")
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--engine", "reference", "--fuzz-examples", "5",
                                "--hypothesis-profile", "ci", "-v")
    result.assert_outcomes(passed=5, skipped=2)  # the sequence properties do not judge the judge
    result.stdout.fnmatch_lines(["*test_first_order_gradients_match_finite_differences?reference-cpu-float64? PASSED*"])
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--engine", "reference", "--fuzz-examples", "0", "-rs")
    result.assert_outcomes(skipped=7)
    result.stdout.fnmatch_lines(["*fuzzing is off (--fuzz-examples 0)*"])


class NeverFreesGraphs(ReferenceAdapter):
    """A planted engine bug: backward keeps every graph, so a second backward never raises freed_graph."""

    name = "never-frees"

    def backward(self, output, gradient, retain_graph, create_graph, inputs):
        super().backward(output, gradient, True, create_graph, inputs)


def test_a_planted_sequence_disagreement_is_written_as_a_case_that_reproduces_it(tmp_path):
    with pytest.raises(AssertionError, match=r"shrunk sequence written to (\S+\.yaml)"):
        properties.run_sequences(NeverFreesGraphs("cpu", "float64"), QUICK, tmp_path)
    (path,) = (tmp_path / "cases").glob("*.yaml")
    case = load_case(path)
    assert any(step.raises and step.raises.kind == "freed_graph" for step in case.steps)
    assert run_case(case, NeverFreesGraphs("cpu", "float64")).status == FAILED
    assert run_case(case, ReferenceAdapter("cpu", "float64")).status == PASSED


class RefusesEveryRerun(ReferenceAdapter):
    """Within LIFE-5: after a plain backward, the output's graph never runs again, even where nothing was saved."""

    name = "refuses-reruns"

    def __init__(self, device, dtype):
        super().__init__(device, dtype)
        self.freed: list = []

    def backward(self, output, gradient, retain_graph, create_graph, inputs):
        if any(output is done for done in self.freed):
            raise reference_engine.FreedGraphError("this graph ran before and was freed")
        super().backward(output, gradient, retain_graph, create_graph, inputs)
        if inputs is None and not retain_graph and not (create_graph and retain_graph is None):
            self.freed.append(output)


def test_rerunning_nodes_that_saved_nothing_is_the_engines_choice_not_a_disagreement(tmp_path):
    # (1,000 draws: a second plain backward through a graph that saved nothing is a rare draw)
    properties.run_sequences(RefusesEveryRerun("cpu", "float64"), settings(QUICK, max_examples=1000), tmp_path)


def _sin_with_second_derivative_off(g, a, b, o, t):
    """sin's first derivative, exact; under create_graph it also records a term worth 0 whose derivative is 0.05."""
    if isinstance(a, np.ndarray):
        return g * np.cos(a)
    return g * (ops.cos(a) + 0.05 * (a - ops.constant(ops.data_of(a), a)))


class SinOnceDifferentiable(SmallVocabulary):
    """An engine that records sin's lack of a second derivative as a known difference (as Paddle does for 48 ops)."""

    name = "sin-once-differentiable"
    once_differentiable_ops = {"sin": "no double-grad kernel for sin"}


def test_declared_ops_without_a_second_derivative_are_drawn_once_differentiated_only(tmp_path, monkeypatch):
    """The second-order property kept re-finding a recorded difference; now it looks past it, and the first-order
    property still draws the op (where sin's first derivative is still checked)."""
    adapter = SinOnceDifferentiable("cpu", "float64")
    assert "sin" in properties.excluded_ops(adapter, twice=True) and "sin" not in properties.excluded_ops(adapter)
    monkeypatch.setitem(ops.OPS, "sin", ops.Op(np.sin, (_sin_with_second_derivative_off,), ("a",)))
    properties.run(properties.second_order, adapter, QUICK, tmp_path, "second-order")  # no failure: sin not drawn
    with pytest.raises(oracle.OracleMismatch):  # without the declaration, the same run finds the planted fault
        properties.run(properties.second_order, SmallVocabulary("cpu", "float64"), QUICK, tmp_path, "second-order")
    monkeypatch.setitem(ops.OPS, "sin", SIN_OFF_BY_1E_4)
    with pytest.raises(oracle.OracleMismatch):  # and sin's first derivative is still fuzzed
        properties.run(properties.first_order, adapter, QUICK, tmp_path, "first-order")


def test_gradspec_engines_lists_the_ops_without_a_second_derivative(capsys):
    assert cli.engines(["tests.test_fuzz:SinOnceDifferentiable"]) == 0
    out = capsys.readouterr().out
    assert "  ops without a second derivative: 1\n    sin: no double-grad kernel for sin\n" in out


def test_an_adapter_naming_no_op_as_once_differentiable_is_refused():
    class Typo(ReferenceAdapter):
        name = "typo"
        once_differentiable_ops = {"sinn": "no such op"}
    assert any("`once_differentiable_ops` names 'sinn'" in p for p in adapter_problems(Typo))


def test_a_second_order_failure_is_written_as_a_second_order_case_that_reproduces_it(tmp_path, monkeypatch):
    adapter = SmallVocabulary("cpu", "float64")
    original = ops.OPS["sin"]
    monkeypatch.setitem(ops.OPS, "sin", ops.Op(np.sin, (_sin_with_second_derivative_off,), ("a",)))
    with pytest.raises(oracle.OracleMismatch, match=r"second derivative.*\n.*shrunk draw written to"):
        properties.run(properties.second_order, adapter, QUICK, tmp_path, "second-order")
    (path,) = (tmp_path / "cases").glob("*.yaml")
    case = load_case(path)
    assert "create_graph" in case.capabilities and case.rules == ("DERIV-2", "HIGHER-1")
    assert run_case(case, adapter).status == FAILED  # it reproduces the second-order failure ...
    monkeypatch.setitem(ops.OPS, "sin", original)
    assert run_case(case, adapter).status == PASSED  # ... and passes once the bug is gone


class WithoutAllowUnused(SmallVocabulary):
    name = "without-allow-unused"
    capabilities = ReferenceAdapter.capabilities - {"allow_unused"}


def test_a_staged_case_replays_on_the_failing_engine_by_its_engine_spec(sin_derivative_off_by_1e_4, tmp_path):
    """It declares only what that engine has, so replaying it judges instead of saying not applicable."""
    adapter = WithoutAllowUnused("cpu", "float64")
    spec = "tests.test_fuzz:WithoutAllowUnused"
    with pytest.raises(oracle.OracleMismatch, match=f"--engine {spec} --device cpu --dtype float64"):
        properties.run(properties.first_order, adapter, QUICK, tmp_path, "first-order", engine=spec)
    (path,) = (tmp_path / "cases").glob("*.yaml")
    case = load_case(path)
    assert case.capabilities <= adapter.capabilities
    assert run_case(case, adapter).status == FAILED


# -- views and in-place updates --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["VIEW-3", "VIEW-5", "VIEW-11"], ids=["base history not rewritten",
                                                                      "version counter not shared",
                                                                      "repeated indices not summed"])
def test_the_view_sequence_property_finds_a_planted_view_fault(rule, tmp_path):
    """PyTorch is the engine under test; the judge, the reference engine, carries the fault, so they disagree."""
    from gradspec.adapters.torch_adapter import TorchAdapter
    from gradspec.faults import FAULTS, planted
    from gradspec.fuzz import sequences, view_sequences

    with planted(FAULTS[rule]), pytest.raises(sequences.Disagreement):
        properties.run_sequences(TorchAdapter("cpu", "float64"), settings(QUICK, max_examples=500), tmp_path,
                                 strategy=view_sequences.view_sequences(), stem="view-sequence")


def test_the_view_sequence_property_passes_torch_against_the_healthy_reference(tmp_path):
    from gradspec.adapters.torch_adapter import TorchAdapter
    from gradspec.fuzz import view_sequences

    properties.run_sequences(TorchAdapter("cpu", "float64"), settings(QUICK, max_examples=300), tmp_path,
                             strategy=view_sequences.view_sequences(), stem="view-sequence")
    assert not (tmp_path / "cases").exists()


def test_finite_differences_through_indexing_find_repeated_reads_not_summed(tmp_path):
    from gradspec.faults import FAULTS, planted

    with planted(FAULTS["VIEW-11"]), pytest.raises(oracle.OracleMismatch):
        properties.run(properties.first_order, ReferenceAdapter("cpu", "float64"), QUICK, tmp_path,
                       "first-order-indexing", indexing=True)


# -- the op vocabulary's faults that the fuzzer must find (issue 16) ------------------------------------------


def _mirrored_axis(patch):
    """A reduction's gradient spread along the mirrored axis: dim d of an n-d input read as n - 1 - d."""
    def rule(g, a, b, out, attrs):
        shape, dim = attrs["in_shape"], attrs.get("dim")
        wrong = dict(attrs, dim=None if dim is None else len(shape) - 1 - dim % len(shape))
        return ops._sum_grad(g, a, b, out, wrong)
    patch.op("sum", rules=(rule,))


def _mean_by_every_element(patch):
    patch.op("mean", rules=(lambda g, a, b, out, attrs: ops._sum_grad(g, a, b, out, attrs)
                            / int(np.prod(attrs["in_shape"])),))


def _mul_derivative_in_float32(patch):
    """mul's derivative with respect to its first operand computed in float32 (the other stays right)."""
    def rule(g, a, b, out, attrs):
        product = (ops.data_of(g) * ops.data_of(b)).astype(np.float32).astype(ops.data_of(g).dtype)
        return ops.constant(product, g)
    patch.op("mul", rules=(rule, ops.OPS["mul"].rules[1]))


def _ties_to_the_first(patch):
    def rule(g, a, b, out, attrs):
        first = np.zeros_like(ops.data_of(a))
        first.flat[np.argmax(ops.data_of(a))] = 1
        return g * ops.constant(first, g)
    patch.op("max", rules=(rule,))


def _planted(plant):
    from gradspec.faults import Fault
    return Fault("DERIV-1", plant.__doc__ or plant.__name__, plant)


class SumsAndMeans(ReferenceAdapter):
    """The reference engine with a small vocabulary, so that the fuzzer's draws are mostly sums and means."""

    name = "sums-and-means"
    lacks_ops = frozenset(contracts.ops()) - {"sum", "mean", "add", "mul", "sub", "exp", "sin"}


@pytest.mark.parametrize("plant", [_mirrored_axis, _mean_by_every_element], ids=["reduction along the wrong axis",
                                                                               "mean by the wrong count"])
def test_finite_differences_find_a_planted_reduction_fault(plant, tmp_path):
    from gradspec.faults import planted
    with planted(_planted(plant)), pytest.raises((oracle.OracleMismatch, ValueError)):
        properties.run(properties.first_order, SumsAndMeans("cpu", "float64"), settings(QUICK, max_examples=500),
                       tmp_path, "first-order")


def test_the_sequence_property_finds_a_derivative_computed_in_float32_inside_float64(tmp_path):
    """Finite differences cannot see a 1e-8 error; PyTorch, compared at 1e-9, can."""
    from gradspec.adapters.torch_adapter import TorchAdapter
    from gradspec.faults import planted
    from gradspec.fuzz import sequences

    with planted(_planted(_mul_derivative_in_float32)), pytest.raises(sequences.Disagreement):
        properties.run_sequences(TorchAdapter("cpu", "float64"), settings(QUICK, max_examples=500), tmp_path)


@pytest.mark.parametrize("rule", ["HOOK-2", "PASS-1", "CUSTOM-4", "PASS-7", "LIFE-1", "LIFE-4"],
                         ids=["hook order", "grad mode during backward", "a custom backward's shape check",
                              "order around a node", "a pass that frees nothing", "a shared node left usable"])
def test_the_sequence_property_finds_planted_faults_of_the_backward_pass(rule, tmp_path):
    """PyTorch is the engine under test and the reference engine, the judge, carries the fault (gradspec.faults):
    hooks on one tensor run in reverse, hooks run without grad mode under create_graph, a custom backward's
    gradient of the wrong shape is resized instead of refused, a node's pre-hooks run before its tensor's hooks."""
    from gradspec.adapters.torch_adapter import TorchAdapter
    from gradspec.faults import FAULTS, planted
    from gradspec.fuzz import sequences

    with planted(FAULTS[rule]), pytest.raises(sequences.Disagreement):
        properties.run_sequences(TorchAdapter("cpu", "float64"), settings(QUICK, max_examples=500), tmp_path)


def test_the_sequence_property_finds_a_grad_mode_that_lapses_in_a_decorated_generator(tmp_path):
    """The realistic MODE-1 fault of gradspec.faults: a decorator that covers only the creation of a generator.
    Sequences draw no_grad and set_grad_enabled blocks in every form, updating a leaf in place step by step."""
    from gradspec.adapters.torch_adapter import TorchAdapter
    from gradspec.faults import REALISTIC, planted
    from gradspec.fuzz import sequences

    fault, = [f for f in REALISTIC if f.rule == "MODE-1" and "generator" in f.description]
    with planted(fault), pytest.raises(sequences.Disagreement):
        properties.run_sequences(TorchAdapter("cpu", "float64"), settings(QUICK, max_examples=300), tmp_path)


@pytest.mark.parametrize("form", ["tuple", "tensor"])
def test_the_sequence_property_finds_an_argument_form_read_wrongly(form, tmp_path):
    """The reference engine's grad taking a tuple for one tensor, or iterating a bare tensor over its first
    dimension (the GRAD-13 faults of gradspec.faults): sequences draw each argument's form."""
    from gradspec.adapters.torch_adapter import TorchAdapter
    from gradspec.faults import all_faults, planted
    from gradspec.fuzz import sequences

    fault, = [f for f in all_faults() if f.rule == "GRAD-13" and f"a {'bare tensor' if form == 'tensor' else 'tuple'} "
              "given to grad" in f.description]
    with planted(fault), pytest.raises(sequences.Disagreement):
        properties.run_sequences(TorchAdapter("cpu", "float64"), settings(QUICK, max_examples=300), tmp_path)


def test_the_kink_property_finds_a_planted_tie_convention(tmp_path):
    from gradspec.faults import planted
    from gradspec.fuzz import kinks

    with planted(_planted(_ties_to_the_first)), pytest.raises(kinks.KinkMismatch):
        properties.run_kinks(ReferenceAdapter("cpu", "float64"), QUICK, tmp_path)


@pytest.mark.parametrize("rule", ["KINK-7", "KINK-8"])
def test_the_kink_property_finds_the_planted_faults_of_the_reduction_conventions(rule, tmp_path):
    """max along a dim splitting its ties, and the 2-norm's 0 / 0 at the zero vector (gradspec.faults)."""
    from gradspec.faults import FAULTS, planted
    from gradspec.fuzz import kinks

    with planted(FAULTS[rule]), pytest.raises(kinks.KinkMismatch):
        properties.run_kinks(ReferenceAdapter("cpu", "float64"), settings(QUICK, max_examples=300), tmp_path)


def test_operands_that_do_not_broadcast_are_skipped_before_their_values_are_compared():
    """Found on the GPU machine: `apart` compared (3, 1) with (2, 3) elementwise before the broadcast check."""
    from gradspec.fuzz.strategies import _apply, fuzzable_ops
    assert _apply("maximum", fuzzable_ops()["maximum"], [np.zeros((3, 1)), np.ones((2, 3))], {}) is None
    assert _apply("maximum", fuzzable_ops()["maximum"], [np.zeros((2, 1)), np.ones((2, 3))], {}) is not None
    assert _apply("maximum", fuzzable_ops()["maximum"], [np.zeros((2, 1)), np.full((2, 3), 0.1)], {}) is None


def test_the_wrapping_property_finds_a_custom_backward_without_grad_mode(tmp_path):
    """A custom backward that records nothing under create_graph (CUSTOM-10) shows in Hessian-vector products."""
    from gradspec.faults import FAULTS, planted
    from gradspec.fuzz import wrapping

    properties.run_wrapping(ReferenceAdapter("cpu", "float64"), settings(QUICK, max_examples=100), tmp_path)
    with planted(FAULTS["CUSTOM-10"]), pytest.raises(wrapping.NotTransparent, match="Hessian-vector product"):
        properties.run_wrapping(ReferenceAdapter("cpu", "float64"), settings(QUICK, max_examples=300), tmp_path)


def test_a_chain_function_backward_is_the_chain_rule_over_recomputed_values():
    from gradspec.fuzz.wrapping import chain_function

    function = chain_function(["sin", "square"])
    assert function["forward"] == ["u1 = sin(x)", "y = u1 * u1"]
    assert function["backward"] == ["u1 = sin(x)", "g1 = grad_y * (u1 * 2)", "gx = g1 * (cos(x))"]


# -- engines with backward but no grad (issue 25) ----------------------------------------------------------------


class BackwardOnly(ReferenceAdapter):
    """A teaching engine's shape: backward into .grad, no functional grad."""

    name = "backward-only"
    capabilities = ReferenceAdapter.capabilities - {"grad"}

    def grad(self, *args):
        raise AssertionError("the oracle must not call grad on an engine that lacks it")


class BackwardOnlySmall(BackwardOnly, SmallVocabulary):
    name = "backward-only-small"


class BackwardOnlyAccumulating(BackwardOnlySmall):
    """Nor .grad assignment: the second backward of a Hessian-vector product adds to the first gradient."""

    name = "backward-only-accumulating"
    capabilities = BackwardOnlySmall.capabilities - {"grad_assignment"}

    def set_grad(self, tensor, value):
        raise AssertionError("set_grad called on an engine without grad_assignment")


def test_the_fuzz_properties_run_on_an_engine_without_grad(pytester):
    """Finite differences judge it through backward and .grad, and the sequence property compares what it can call
    with the reference engine; only the views property, which calls grad, is skipped."""
    pytester.makeconftest("")
    pytester.makepyfile(backward_only_engine="from tests.test_fuzz import BackwardOnly as Engine\n")
    pytester.syspathinsert()
    pytester.syspathinsert(str(REPO))  # for tests.test_fuzz
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--engine", "backward_only_engine:Engine",
                                "--fuzz-examples", "5", "--hypothesis-profile", "ci", "-v")
    for name in ("first_order_gradients_match_finite_differences",
                 "first_order_gradients_through_views_and_indexing_match_finite_differences",
                 "hessian_vector_products_match_finite_differences_of_the_gradient",
                 "gradients_exactly_at_kinks_follow_the_rule_book",
                 "a_custom_function_with_the_ops_own_derivative_changes_no_derivative",
                 "sequences_of_autograd_calls_behave_as_on_the_reference_engine"):
        result.stdout.fnmatch_lines([f"*test_{name}?backward-only-cpu-float64? PASSED*"])
    result.assert_outcomes(passed=6, skipped=1)  # the views property calls grad


@pytest.mark.parametrize("adapter_cls", [BackwardOnlySmall, BackwardOnlyAccumulating])
def test_a_planted_fault_is_found_through_backward_and_staged_as_a_case_that_reproduces_it(adapter_cls, tmp_path,
                                                                                             monkeypatch):
    adapter = adapter_cls("cpu", "float64")
    original = ops.OPS["sin"]
    monkeypatch.setitem(ops.OPS, "sin", SIN_OFF_BY_1E_4)
    with pytest.raises(oracle.OracleMismatch, match=r"(?s)first derivative.*shrunk draw written to"):
        properties.run(properties.first_order, adapter, QUICK, tmp_path, "first-order")
    (path,) = (tmp_path / "cases").glob("*.yaml")
    case = load_case(path)
    assert any(step.kind == "derivative" for step in case.steps) and "grad" not in case.capabilities
    assert run_case(case, adapter).status == FAILED  # it replays on the engine without grad ...
    monkeypatch.setitem(ops.OPS, "sin", original)
    assert run_case(case, adapter).status == PASSED  # ... and passes once the bug is gone
    properties.run(properties.first_order, adapter, QUICK, tmp_path / "healthy", "first-order")


@pytest.mark.parametrize("adapter_cls", [BackwardOnlySmall, BackwardOnlyAccumulating])
def test_a_second_order_fault_is_found_through_backward_with_create_graph(adapter_cls, tmp_path, monkeypatch):
    adapter = adapter_cls("cpu", "float64")
    properties.run(properties.second_order, adapter, QUICK, tmp_path / "healthy", "second-order")
    original = ops.OPS["sin"]
    monkeypatch.setitem(ops.OPS, "sin", ops.Op(np.sin, (_sin_with_second_derivative_off,), ("a",)))
    with pytest.raises(oracle.OracleMismatch, match=r"second derivative.*\n.*shrunk draw written to"):
        properties.run(properties.second_order, adapter, QUICK, tmp_path, "second-order")
    (path,) = (tmp_path / "cases").glob("*.yaml")
    case = load_case(path)
    assert case.rules == ("DERIV-2", "HIGHER-4") and "grad" not in case.capabilities
    assert run_case(case, adapter).status == FAILED
    monkeypatch.setitem(ops.OPS, "sin", original)
    assert run_case(case, adapter).status == PASSED


def test_sequences_call_backward_with_create_graph_only_on_engines_that_have_it():
    """Paddle's Tensor.backward has no create_graph (capability backward_create_graph): a drawn sequence must not ask
    it for one there, while its grad calls keep create_graph, and a draw that does use it declares the capability."""
    from gradspec.fuzz import sequences
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    def calls(sequence, kind):
        return [step for step in sequence.data["steps"] if isinstance(step, dict) and kind in step]

    def backward_with_create_graph(sequence):
        return any(step.get("create_graph") for step in calls(sequence, "backward"))

    quick = settings(max_examples=300, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    drawn = find(sequences.sequences(extras=sequences.CAPABILITIES | {"backward_create_graph"}),
                 backward_with_create_graph, settings=quick)
    assert "backward_create_graph" in drawn.data["capabilities"]
    with pytest.raises(NoSuchExample):
        find(sequences.sequences(), backward_with_create_graph, settings=quick)
    find(sequences.sequences(), lambda s: any(step["grad"].get("create_graph") for step in calls(s, "grad")),
         settings=quick)


class Float32Gradients(SmallVocabulary):
    """Computes right, but hands gradients back in float32 in a float64 run."""

    name = "float32-gradients"

    def grad(self, *args):
        return [None if g is None else self.tensor(self.to_numpy(g).astype(np.float32), False, "float32")
                for g in super().grad(*args)]


def test_gradients_in_another_dtype_than_their_leaf_fail_the_fuzz_property(tmp_path):
    """Finite differences compared them under float64's tolerance and passed: the fuzzer missed what the corpus
    catches (SHAPE-1)."""
    with pytest.raises(oracle.OracleMismatch, match=r"has dtype float32, expected float64.*\(SHAPE-1\)"):
        properties.run(properties.first_order, Float32Gradients("cpu", "float64"), QUICK, tmp_path, "first-order")
