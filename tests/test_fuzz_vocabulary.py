"""Every op of spec/ops.yaml that is not `fuzz: false` is drawn by the random-graph strategy, as a valid case, and
faults that only the newly drawable ops and their shapes expose are found (issue 26, item 1)."""

from __future__ import annotations

import itertools
import re
from random import Random

import numpy as np
import pytest
from gradspec import contracts
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.fuzz import definition, operands, oracle, properties
from gradspec.fuzz.strategies import Draw, fuzzable_ops, graphs, indexing_only
from gradspec.language.loader import build_case, load_case
from gradspec.reference_engine import ops
from gradspec.running.interpreter import FAILED, run_case
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import NoSuchExample

QUICK = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# Generation only, from a fixed seed: a draw that sees what is wanted ends the search, nothing is shrunk.
SEARCH = settings(max_examples=3000, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))


def _first_draw_after(strategy, done, seed: int = 0):
    """Draw from `strategy` (deterministically) until `done(draw)` holds; the draws are what `done` recorded."""
    try:
        return find(strategy, done, settings=SEARCH, random=Random(seed))
    except NoSuchExample:
        return None


@pytest.mark.parametrize("indexing", [False, True], ids=["plain graphs", "graphs that index"])
def test_every_drawable_op_is_drawn_within_3000_graphs(indexing):
    """Ops that imply view_ops or index_ops are drawn in the graphs of engines that have them (indexing) only."""
    wanted = {op for op in fuzzable_ops() if indexing_only(op) == indexing}
    seen: set[str] = set()

    def done(draw: Draw) -> bool:
        seen.update(draw.ops)
        return wanted <= seen
    _first_draw_after(graphs(indexing=indexing), done)
    assert sorted(wanted - seen) == []


def test_only_ops_with_a_written_reason_are_not_drawn():
    undrawn = {name: entry.get("fuzz_reason") for name, entry in contracts.ops().items() if entry.get("fuzz") is False}
    assert all(undrawn.values()), f"fuzz: false without a fuzz_reason: {[n for n, r in undrawn.items() if not r]}"
    assert set(fuzzable_ops()) == set(contracts.ops()) - set(undrawn)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(plain=graphs(), indexing=graphs(indexing=True))
def test_drawn_graphs_are_cases_that_pass_the_schema_and_declare_what_they_need(plain, indexing):
    for draw in (plain, indexing):
        case = build_case(draw.data, "<fuzz draw>", "fuzz/draw.yaml", schema=True)  # capabilities checked too
        assert set(draw.leaves) == {t.name for t in case.tensors if t.requires_grad}
        assert draw.output in draw.names
    assert not {op for op in plain.ops if indexing_only(op)}, "plain graphs need no view_ops or index_ops"


def _draws_of(op: str, indexing: bool, count: int, keep=lambda draw: True) -> list[Draw]:
    """`count` distinct draws calling `op` (from a vocabulary of op and sum alone where op is drawn on its own)."""
    found: list[Draw] = []
    exclude = frozenset(fuzzable_ops()) - {op, "sum"}

    def done(draw: Draw) -> bool:
        if op in draw.ops and keep(draw) and draw.data["steps"] not in [d.data["steps"] for d in found]:
            found.append(draw)
        return len(found) >= count
    _first_draw_after(graphs(indexing=indexing, exclude=exclude), done)
    return found


def _attribute_values(draws: list[Draw], op: str, key: str) -> set:
    values = set()
    for draw in draws:
        for step in draw.case.steps:
            expr = step.statement.expr
            if getattr(expr, "op", None) == op:
                values.add(dict(expr.kwargs)[key])
    return values


def test_permutations_are_drawn_from_all_of_s3_not_only_swaps():
    three_d = _draws_of("permute", True, 40, keep=lambda d: any(
        len(dims) == 3 for dims in _attribute_values([d], "permute", "dims")))
    drawn = {dims for dims in _attribute_values(three_d, "permute", "dims") if len(dims) == 3}
    assert {(1, 2, 0), (2, 0, 1)} <= drawn, f"no 3-cycle among {sorted(drawn)}"


def test_products_are_drawn_with_one_and_with_two_exact_zeros_in_a_slice():
    zeros: set[int] = set()

    def done(draw: Draw) -> bool:
        tensors = {t.name: t.value for t in draw.case.tensors}
        for step in draw.case.steps:
            expr = step.statement.expr
            if expr.op in ("prod", "cumprod") and getattr(expr.args[0], "name", None) in tensors:
                zeros.add(int(np.sum(tensors[expr.args[0].name] == 0)))
        return {1, 2} <= zeros
    _first_draw_after(graphs(exclude=frozenset(fuzzable_ops()) - {"prod", "cumprod", "sum"}), done)
    assert {1, 2} <= zeros


def test_inv_det_and_solve_are_given_non_symmetric_well_conditioned_matrices():
    for op in ("inv", "det", "solve"):
        for draw in _draws_of(op, False, 5):
            matrices = []

            def apply(name, args, kwargs, op=op, matrices=matrices):
                if name == op:
                    matrices.append(np.asarray(args[0]))
                return definition.numpy_forward(name, args, kwargs)
            point = oracle.Problem(ReferenceAdapter("cpu", "float64"), draw).point
            definition.compile_steps(draw.case, draw.output, apply)(point)
            assert matrices, f"{op} not called in {draw.data['steps']}"
            for matrix in matrices:
                assert not np.allclose(matrix, np.swapaxes(matrix, -1, -2)), f"{op}: a symmetric matrix {matrix}"
                assert np.max(np.linalg.cond(matrix)) <= operands.CONDITION_LIMIT


def _reference_with(name: str, keep: set[str]) -> ReferenceAdapter:
    """The reference engine with a small vocabulary around op `name`, so that the fuzzer draws it often."""
    class Planted(ReferenceAdapter):
        lacks_ops = frozenset(contracts.ops()) - keep - {name}
    Planted.name = f"planted-{name}"
    return Planted("cpu", "float64")


def _op_like(name: str, rules: tuple) -> ops.Op:
    """Op `name` of the reference engine with other derivative rules (a new Op: plans are worked out afresh)."""
    op = ops.OPS[name]
    return ops.Op(op.forward, rules, op.uses, op.attrs, op.reads_input_meta, op.differentiable, op.view)


def _permuted_by_dims(g, a, b, out, attrs):
    """permute's backward by the permutation itself, not its inverse: right for every swap, wrong for a 3-cycle."""
    return ops.call("permute", g, dims=tuple(attrs["dims"]))


def test_a_permute_backward_without_the_inverse_permutation_is_found_and_hides_from_swaps(tmp_path, monkeypatch):
    adapter = _reference_with("permute", {"sum", "mul", "sin"})
    monkeypatch.setitem(ops.OPS, "permute", _op_like("permute", (_permuted_by_dims,)))
    # Found as a wrong gradient, or as the engine refusing its own gradient of the wrong shape (2, 3, 4 is no cube)
    with pytest.raises((oracle.OracleMismatch, ValueError)) as found:
        properties.run(properties.first_order, adapter, QUICK, tmp_path / "all", "first-order-indexing",
                       indexing=True)
    written = list((tmp_path / "all" / "cases").glob("*.yaml"))
    text = "\n".join([str(found.value), *getattr(found.value, "__notes__", ()), *(p.read_text() for p in written)])
    assert re.search(r"permute\(x0, dims=\((1, 2, 0|2, 0, 1)\)\)", text), text  # shrunk to a 3-cycle
    for path in written:
        assert run_case(load_case(path), adapter).status == FAILED
    swaps = operands.ATTRIBUTE_WORDS["permutation"]

    def swap_only(ctx):  # what a fuzzer drawing swaps only would draw: self-inverse permutations
        dims = list(range(ctx.a.value.ndim))
        if len(dims) > 1:
            i, j = ctx.draw(operands.st.sampled_from(list(itertools.combinations(dims, 2))), "swap")
            dims[i], dims[j] = dims[j], dims[i]
        return tuple(dims)
    monkeypatch.setitem(operands.ATTRIBUTE_WORDS, "permutation", (swaps[0], swap_only))
    properties.run(properties.first_order, adapter, QUICK, tmp_path / "swaps", "first-order-indexing", indexing=True)


def _solve_with_a_not_its_transpose():
    def grad_b(g, a, b, out, attrs):
        return ops.solve(a, g)

    def grad_a(g, a, b, out, attrs):
        gb = ops.solve(a, g)
        if len(ops.shape_of(out)) == 1:
            return -ops.call("outer", gb, out)
        return -(gb @ ops.swap_last(out))
    return grad_a, grad_b


def test_solve_differentiated_with_a_instead_of_its_transpose_is_found_on_non_symmetric_matrices(tmp_path,
                                                                                                  monkeypatch):
    adapter = _reference_with("solve", {"sum", "mul", "sin", "add"})
    monkeypatch.setitem(ops.OPS, "solve", _op_like("solve", _solve_with_a_not_its_transpose()))
    with pytest.raises(oracle.OracleMismatch, match=r"shrunk draw written to (\S+\.yaml)"):
        properties.run(properties.first_order, adapter, QUICK, tmp_path, "first-order")
    (path,) = (tmp_path / "cases").glob("*.yaml")
    case = load_case(path)
    assert any("solve" in str(step.statement.expr) for step in case.steps if step.statement is not None)
    assert run_case(case, adapter).status == FAILED


class DetachPassesGradients(ReferenceAdapter):
    """A planted fault: detach copies its operand but keeps it on the graph."""

    name = "detach-passes-gradients"
    lacks_ops = frozenset(contracts.ops()) - {"detach", "mul", "add", "sum", "sin", "exp"}

    def apply(self, op, args, kwargs):
        return super().apply("clone" if op == "detach" else op, args, kwargs)


def test_detach_is_a_constant_of_the_function_the_oracle_differentiates(tmp_path):
    x = np.array([0.7, -1.3])
    draw = Draw({"schema_version": 1, "title": "t", "rules": ["VJP-2"], "source": "s", "derivation": "d",
                 "capabilities": ["grad", "detach"], "dtypes": ["float64"],
                 "tensors": {"x0": {"value": x.tolist(), "requires_grad": True}},
                 "steps": ["v0 = mul(detach(x0), x0)"]}, ("x0",), "v0", (1.0, 1.0), ("v0",))
    problem = oracle.Problem(ReferenceAdapter("cpu", "float64"), draw)
    np.testing.assert_allclose(oracle.elementwise_gradient(problem)["x0"], x, rtol=1e-6)  # x, not 2x: held constant
    rng = np.random.default_rng(0)
    oracle.check_first_order(problem, oracle.directions(rng, problem))
    oracle.check_second_order(problem, oracle.directions(rng, problem), oracle.directions(rng, problem))
    properties.run(properties.first_order, ReferenceAdapter("cpu", "float64"), QUICK, tmp_path, "first-order")
    with pytest.raises(oracle.OracleMismatch):
        properties.run(properties.first_order, DetachPassesGradients("cpu", "float64"), QUICK, tmp_path,
                       "first-order")


def test_the_spec_words_and_the_fuzzers_words_are_the_same():
    import json
    from importlib import resources
    schema = json.loads(resources.files("gradspec.spec").joinpath("ops.schema.json").read_text())
    fuzz = schema["$defs"]["op"]["properties"]["fuzz"]["oneOf"][1]
    listed = set(fuzz["additionalProperties"]["enum"]) | set(fuzz["properties"]["operands"]["enum"])
    listed |= set(fuzz["properties"]["drawn_as"]["enum"])
    known = set(operands.words()) | set(operands.DRAWN_AS)
    assert listed == known


def test_the_new_kink_conventions_give_the_values_worked_out_by_hand():
    from gradspec.fuzz.kinks import KINKS
    one = np.ones(3)
    da, db = KINKS["pow"].gradient(np.array([0.0, 0.0, 2.0]), np.array([0.0, 1.0, 0.0]), one)
    np.testing.assert_allclose(da, [0.0, 1.0, 0.0])  # b a^(b - 1): 0 where b == 0, 1 * 0^0 = 1
    np.testing.assert_allclose(db, [0.0, 0.0, np.log(2.0)])  # log(a) a^b: 0 where a == 0
    da, db = KINKS["atan2"].gradient(np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, -1.0]), one)
    np.testing.assert_allclose(da, [0.0, 0.5, -1.0])  # b / (a^2 + b^2), 0 at the origin
    np.testing.assert_allclose(db, [0.0, -0.5, 0.0])  # -a / (a^2 + b^2)
    (g,) = KINKS["norm_one"].gradient(np.array([[0.0, -2.0, 1.0]]), None, np.array([[1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(g, [[0.0, -3.0, 3.0]])  # sign(x) times the row's weight 3
    (g,) = KINKS["min"].gradient(np.array([1.0, -1.0, -1.0]), None, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(g, [0.0, 3.0, 3.0])  # the two tied minima share sum(w) = 6
    (g,) = KINKS["amin"].gradient(np.array([[0.0, 0.0, 1.0]]), None, np.array([[1.0, 1.0, 2.0]]))
    np.testing.assert_allclose(g, [[2.0, 2.0, 0.0]])


def test_the_kink_property_finds_pows_exponent_derivative_at_a_zero_base_taken_from_the_formula(tmp_path,
                                                                                                  monkeypatch):
    """log(0) * 0^b is nan or -inf * 0; KINK-4 and DERIV-1 give 0 there."""
    from gradspec.fuzz import kinks

    def exponent(g, a, b, out, attrs):
        with np.errstate(all="ignore"):
            return g * np.log(a) * np.power(a, b)
    monkeypatch.setitem(ops.OPS, "pow", _op_like("pow", (ops.OPS["pow"].rules[0], exponent)))
    with pytest.raises(kinks.KinkMismatch, match="pow"):
        properties.run_kinks(ReferenceAdapter("cpu", "float64"), QUICK, tmp_path)


@pytest.mark.parametrize(("op", "kwargs"), [("expand", {"shape": ()}), ("view", {"shape": ()}),
                                            ("permute", {"dims": ()})])
def test_torch_applies_shape_ops_to_a_0d_value_with_an_empty_shape(op, kwargs):
    """Found by the fuzzer once views were drawn on 0-d values: `a.expand(*())` is a TypeError in PyTorch."""
    pytest.importorskip("torch")
    from gradspec.adapters.torch_adapter import TorchAdapter
    adapter = TorchAdapter("cpu", "float64")
    out = adapter.apply(op, [adapter.tensor(np.asarray(0.3), True, "float64")], kwargs)
    assert adapter.to_numpy(out).shape == () and float(adapter.to_numpy(out)) == 0.3
