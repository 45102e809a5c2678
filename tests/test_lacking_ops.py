"""One answer to "which ops does this engine lack, and why": Adapter.lacking_ops, for every consumer.

The interpreter, every fuzz property, `gradspec engines` and the registry read the declared
`lacks_ops` and the gaps of the adapter's op table together: an op the table lacks is never
drawn (no KeyError mid-run), and is listed with its reason.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from gradspec import cli, contracts
from gradspec.adapter import Lacking
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.functional import FunctionalAdapter
from gradspec.fuzz import properties, sequences, view_sequences, wrapping
from gradspec.fuzz.strategies import graphs
from gradspec.language.loader import build_case
from gradspec.running.interpreter import NOT_APPLICABLE, run_case
from gradspec.running.registry import adapter_problems
from hypothesis import HealthCheck, given, settings

QUICK = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
KEPT = {"sum", "mean", "add", "mul", "sub", "exp", "sin", "tanh", "clone", "getitem", "select", "unsqueeze",
        "expand", "transpose", "diagonal"}
GAPS = {"exp": "its op table does not map it", "diagonal": "the toy engine has no diagonal"}


class TableGaps(ReferenceAdapter):
    """The reference engine behind an op table: exp is missing from it and diagonal a `Lacking` entry; neither is in
    `lacks_ops`. Applying either raises KeyError, as a table-driven adapter's `self.ops[op]` would."""

    name = "table-gaps"
    lacks_ops = frozenset(contracts.ops()) - KEPT

    def __init__(self, device, dtype):
        super().__init__(device, dtype)
        self.applied: set[str] = set()

    def op_table(self):
        apply = super().apply
        return {**{op: apply for op in KEPT - {"exp"}}, "diagonal": Lacking(GAPS["diagonal"])}

    def apply(self, op, args, kwargs):
        if op in GAPS:
            raise KeyError(op)
        self.applied.add(op)
        return super().apply(op, args, kwargs)


def test_lacking_ops_are_the_declared_ones_and_the_table_gaps_with_their_reasons():
    lacking = TableGaps("cpu", "float64").lacking_ops()
    assert {op: lacking[op] for op in GAPS} == GAPS
    assert lacking["cos"] == "declared absent by its adapter (lacks_ops)"
    assert set(lacking) == (set(contracts.ops()) - KEPT) | set(GAPS)


def test_the_first_order_properties_never_draw_an_op_the_table_lacks():
    """The old fuzzer excluded `lacks_ops` only: it drew exp (a raw KeyError) and, through indexing, diagonal."""
    adapter = TableGaps("cpu", "float64")
    properties.run(properties.first_order, adapter, QUICK, None, "first-order")
    properties.run(properties.first_order, adapter, QUICK, None, "first-order-indexing", indexing=True)
    assert not adapter.applied & set(GAPS)
    assert {"sin", "transpose", "getitem"} <= adapter.applied  # the rest is drawn


STEP_CALL = re.compile(r"([a-z_]\w*)\(")


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=graphs(indexing=True, exclude=frozenset({"diagonal", "transpose", "select", "clone"})),
       view_sequence=view_sequences.view_sequences(exclude=frozenset({"diagonal", "select", "detach", "unbind"})),
       wrapped=wrapping.wrapped_graphs(exclude=frozenset({"sin", "cos", "sigmoid"})),
       custom=sequences.custom_calls(["x"], frozenset(), exclude=frozenset({"sum"})))
def test_no_strategy_draws_an_excluded_op_by_name(graph, view_sequence, wrapped, custom):
    """The strategies name ops of their own (indexing steps, views, the chain of a wrapped function, custom
    functions' bodies, the copy of a lone leaf): each honours `exclude`."""
    def called(steps):
        return {op for step in steps if isinstance(step, str) for op in STEP_CALL.findall(step)}
    assert not called(graph.data["steps"]) & {"diagonal", "transpose", "select", "clone"}
    assert not called(view_sequence.data["steps"]) & {"diagonal", "select", "detach", "unbind"}
    chain = wrapped.custom["functions"]["Chain"]
    assert not called(chain["forward"] + chain["backward"]) & {"sin", "cos", "sigmoid"}
    assert "Flattened" not in custom[2]


def test_a_property_whose_every_program_needs_a_lacking_op_is_not_applicable(pytester):
    pytester.makeconftest("")
    pytester.syspathinsert()
    pytester.makepyfile(toy_engine="""
from gradspec.adapters.reference_adapter import ReferenceAdapter

class WithoutSum(ReferenceAdapter):
    name = "without-sum"
    lacks_ops = {"sum": "the toy engine has no sum"}
""")
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--engine", "toy_engine:WithoutSum", "--fuzz-examples",
                                "3", "-rs", "-k", "sequences or views_and_in_place")
    result.stdout.fnmatch_lines(["*not applicable: without-sum lacks op:sum (the toy engine has no sum)*"])
    result.assert_outcomes(skipped=2)


def test_a_case_calling_a_lacking_op_is_not_applicable_with_the_reason():
    case = build_case({"schema_version": 1, "title": "t", "rules": ["DERIV-1"], "source": "s", "derivation": "d",
                       "capabilities": ["derivatives"], "tensors": {"x": {"value": [1.0], "requires_grad": True}},
                       "steps": ["y = exp(x)", "z = sin(y)"]}, "<test>", "t.yaml")
    outcome = run_case(case, TableGaps("cpu", "float64"))
    assert outcome.status == NOT_APPLICABLE
    assert outcome.message == "table-gaps lacks op:exp (its op table does not map it)"


def test_gradspec_engines_prints_each_lacking_op_with_its_reason(capsys):
    """It printed `lacks_ops` alone: "lacks ops: none" for a functional adapter whose table maps few ops."""
    assert cli.engines(["tests.test_lacking_ops:TableGaps", "tests.test_lacking_ops:FewOps"]) == 0
    out = capsys.readouterr().out
    assert "    exp: its op table does not map it\n" in out
    assert "    diagonal: the toy engine has no diagonal\n" in out
    few = out[out.index("test_lacking_ops:FewOps:"):]
    assert f"  lacks ops: {len(contracts.ops()) - 3}\n" in few and "    sin: its op table does not map it\n" in few


class FewOps(FunctionalAdapter):
    """A functional adapter whose table maps two ops (and detach, its own)."""

    name = "few-ops"
    ops = {"add": np.add, "mul": np.multiply}

    def array(self, value, dtype):
        return np.asarray(value, dtype=dtype)

    def numpy(self, array):
        return np.asarray(array)

    def stop_gradient(self, array):
        return array

    def vjp(self, function, primals, cotangents, materialize):
        raise NotImplementedError


def test_the_registry_refuses_an_op_table_naming_no_op():
    class Misspelt(FewOps):
        ops = {"add": np.add, "mull": np.multiply}
    problems = adapter_problems(Misspelt)
    assert any("its op table `ops` maps 'mull', which is no op of spec/ops.yaml" in p for p in problems), problems


@pytest.mark.parametrize("declared", [frozenset({"erf"}), {"erf": "no special functions"}])
def test_lacks_ops_may_be_a_set_or_give_reasons(declared):
    class Declared(FewOps):
        lacks_ops = declared
    reason = Declared("cpu", "float64").lacking_ops()["erf"]
    assert reason == ("no special functions" if isinstance(declared, dict) else
                      "declared absent by its adapter (lacks_ops)")
    assert not adapter_problems(Declared)


def test_the_kink_property_is_not_applicable_to_an_engine_lacking_every_op_with_a_kink(pytester):
    """It crashed: hypothesis refuses to sample from the empty list of kink ops the engine has."""
    from gradspec.fuzz import kinks
    pytester.makeconftest("")
    pytester.syspathinsert()
    lacking = sorted({kinks.OPS_OF.get(name, name) for name in kinks.KINKS})
    pytester.makepyfile(toy_engine=f"""
from gradspec.adapters.reference_adapter import ReferenceAdapter

class WithoutKinks(ReferenceAdapter):
    name = "without-kinks"
    lacks_ops = frozenset({lacking!r})
""")
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--engine", "toy_engine:WithoutKinks", "--fuzz-examples",
                                "3", "-rs", "-k", "exactly_at_kinks")
    result.stdout.fnmatch_lines(["*not applicable: without-kinks lacks every op with a kink*"])
    result.assert_outcomes(skipped=1)
