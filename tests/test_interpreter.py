"""The interpreter judges engines: it passes conforming behaviour and fails every kind of deviation with a precise message."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.adapters.torch_adapter import TorchAdapter
from gradspec.language.loader import build_case, load_case
from gradspec.running.interpreter import FAILED, NOT_APPLICABLE, PASSED, run_case

from .conftest import CASES, VALID_CASE

torch = pytest.importorskip("torch")


def case_from(text: str, **changes):
    data = yaml.safe_load(text)
    data.update(changes)
    return build_case(data, "<test>", "test/case.yaml")


def run(text: str, adapter_cls=TorchAdapter, dtype="float64", **changes):
    return run_case(case_from(text, **changes), adapter_cls("cpu", dtype))


def test_conforming_case_passes():
    assert run(VALID_CASE).status == PASSED


def test_wrong_expected_value_fails_naming_step_tensor_values_and_tolerance():
    outcome = run(VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [6.5]}"))
    assert outcome.status == FAILED
    assert outcome.step == "step 3 (expect)"
    assert ".grad of x: expected [6.5], got [6.]" in outcome.message
    assert "rtol=1e-12" in outcome.message and "float64" in outcome.message


def test_wrong_shape_fails_even_when_values_agree():
    """The loader refuses such a case (tests/test_loader.py); an engine's own wrong shape must still fail."""
    data = yaml.safe_load(VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [[6.0]]}"))
    case = build_case(data, "<test>", "test/case.yaml", schema=False)  # past the static checks
    outcome = run_case(case, TorchAdapter("cpu", "float64"))
    assert outcome.status == FAILED
    assert "expected shape [1, 1], got shape [1]" in outcome.message


def test_none_versus_value_fails_both_ways():
    assert "expected None, got [6.]" in run(VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: null}")).message
    text = VALID_CASE.replace("  - backward: y\n", "")
    assert "expected [6.], got None" in run(text).message


def test_float32_uses_the_float32_tolerance():
    near = VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [6.00001]}")
    assert run(near, dtype="float32").status == PASSED  # 1.7e-6 relative: inside float32's rtol of 1e-5
    assert run(near, dtype="float64").status == FAILED  # outside float64's rtol of 1e-7


def test_expected_error_that_does_not_happen_fails():
    text = VALID_CASE.replace("  - backward: y\n", "  - backward: y\n    raises: freed_graph\n")
    text = text.replace("capabilities: [backward]", "capabilities: [backward, graph_lifetime]")
    outcome = run(text)
    assert outcome.status == FAILED
    assert outcome.message == "expected error 'freed_graph', but the step completed"


def test_unexpected_error_fails_with_its_kind():
    text = VALID_CASE.replace("  - expect:", "  - backward: y\n  - expect:")
    outcome = run(text)
    assert outcome.status == FAILED
    assert outcome.step == "step 3 (backward)"
    assert "(error kind freed_graph)" in outcome.message


def test_error_of_another_kind_fails():
    text = VALID_CASE.replace("  - expect:", "  - backward: y\n    raises: nonscalar_implicit\n  - expect:")
    text = text.replace("capabilities: [backward]", "capabilities: [backward, graph_lifetime]")
    outcome = run(text)
    assert outcome.status == FAILED
    assert "expected error 'nonscalar_implicit', got freed_graph" in outcome.message


def test_error_message_pattern_is_checked():
    base = VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward, graph_lifetime]")
    matching = base.replace("  - expect:", "  - backward: y\n    raises: {kind: freed_graph, match: 'second time'}\n  - expect:")
    other = base.replace("  - expect:", "  - backward: y\n    raises: {kind: freed_graph, match: 'no such words'}\n  - expect:")
    assert run(matching).status == PASSED
    assert "does not match 'no such words'" in run(other).message


def test_missing_expected_warning_fails():
    extra = "  - expect:\n      is_leaf: {x: true}\n    warns: nonleaf_grad_access\n"
    text = VALID_CASE.replace("  - expect:\n", extra + "  - expect:\n")
    text = text.replace("capabilities: [backward]", "capabilities: [backward, introspection, warnings]")
    outcome = run(text)
    assert outcome.status == FAILED
    assert outcome.message == "expected warning 'nonleaf_grad_access'"


class TorchWithoutHooks(TorchAdapter):
    name = "torch-without-hooks"
    capabilities = TorchAdapter.capabilities - {"tensor_hooks"}


def test_missing_capability_makes_the_case_not_applicable_not_passed():
    text = VALID_CASE.replace("  - backward: y", "  - register_hook: x\n    as: h\n  - backward: y")
    text = text.replace("capabilities: [backward]", "capabilities: [backward, tensor_hooks]")
    assert run(text).status == PASSED
    outcome = run(text, adapter_cls=TorchWithoutHooks)
    assert outcome.status == NOT_APPLICABLE
    assert outcome.message == "torch-without-hooks lacks tensor_hooks"


def test_hook_call_order_is_checked():
    hooks = "  - register_hook: x\n    as: h1\n  - register_hook: x\n    as: h2\n"
    text = VALID_CASE.replace("  - backward: y", hooks + "  - backward: y")
    text = text.replace("capabilities: [backward]", "capabilities: [backward, tensor_hooks]")
    right = text.replace("grad: {x: [6.0]}", "hook_calls: [{hook: h1, grad: [6.0]}, {hook: h2, grad: [6.0]}]")
    wrong = text.replace("grad: {x: [6.0]}", "hook_calls: [{hook: h2}, {hook: h1}]")
    assert run(right).status == PASSED
    assert "hook calls: expected ['h2', 'h1'], got ['h1', 'h2']" in run(wrong).message


class MisclassifyingTorch(TorchAdapter):
    name = "misclassifying"

    def classify(self, error):
        return None


def test_unclassified_engine_error_is_a_failure_not_a_pass():
    text = VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward, graph_lifetime]")
    text = text.replace("  - expect:", "  - backward: y\n    raises: freed_graph\n  - expect:")
    outcome = run(text, adapter_cls=MisclassifyingTorch)
    assert outcome.status == FAILED
    assert "got an unclassified error: RuntimeError" in outcome.message


@pytest.mark.parametrize("adapter_cls", [TorchAdapter, ReferenceAdapter], ids=["torch", "reference"])
def test_corpus_passes_on_both_engines_in_both_dtypes(adapter_cls):
    """The corpus is trusted only while PyTorch and the reference engine both pass it, but for PyTorch's bugs
    against MUST rules (expectations/torch.txt), which it must go on failing: a fixed bug is news."""
    from pathlib import Path

    from gradspec.language.loader import load_case
    from gradspec.running import expectations

    from .conftest import CASES, REPO

    known = [e for e in expectations.load(REPO / "expectations" / "torch.txt")]
    failures = []
    for path in sorted(Path(CASES).rglob("*.yaml")):
        case = load_case(path)
        for dtype in case.dtypes or ("float64", "float32"):
            expected = any(e.matches(case.id, f"{adapter_cls.name}-cpu-{dtype}", adapter_cls.name) for e in known)
            if expected:  # a known bug may crash the process (a segfault): judged in a child process
                if _still_fails_in_a_child(path, adapter_cls, dtype):
                    continue
                failures.append(f"{case.id} [{dtype}]: known to fail, but passes")
                continue
            outcome = run_case(case, adapter_cls("cpu", dtype))
            if (outcome.status == FAILED) != expected and (outcome.status != PASSED or expected):
                failures.append(f"{case.id} [{dtype}]: {'known to fail, but ' if expected else ''}{outcome.report()}")
    assert failures == []


def _still_fails_in_a_child(path, adapter_cls, dtype: str) -> bool:
    """Whether the case fails (or crashes the process) on the adapter, run in a child process."""
    import subprocess
    import sys
    code = ("import sys\nfrom gradspec.language.loader import load_case\nfrom gradspec.running.interpreter import run_case\n"
            f"from {adapter_cls.__module__} import {adapter_cls.__name__} as A\n"
            f"outcome = run_case(load_case({str(path)!r}), A('cpu', {dtype!r}))\n"
            "print(outcome.status)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    return run.returncode < 0 or run.stdout.strip().endswith(("failed", "error"))


def test_a_case_can_loosen_the_tolerance_with_a_reason():
    near = VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [6.001]}")
    assert run(near).status == FAILED
    loosened = run(near, tolerance={"rtol": 1e-3, "reason": "test of the override"})
    assert loosened.status == PASSED
    with pytest.raises(Exception, match="reason"):
        case_from(near, tolerance={"rtol": 1e-3})  # a tolerance without a reason is refused


class BackwardOnly(ReferenceAdapter):
    """A teaching engine's shape: backward into .grad, no functional grad."""

    name = "backward-only"
    capabilities = ReferenceAdapter.capabilities - {"grad"}

    def grad(self, *args):
        raise AssertionError("a derivative step must not call grad on an engine that lacks it")


def test_derivative_steps_run_through_backward_where_an_engine_has_no_grad():
    paths = sorted((CASES / "derivatives").glob("*.yaml"))
    outcomes = {path.name: run_case(load_case(path), BackwardOnly("cpu", "float64")).status for path in paths}
    assert outcomes.pop("higher-order-by-grad.yaml") == NOT_APPLICABLE  # create_graph needs grad there
    assert set(outcomes.values()) == {PASSED} and len(outcomes) == len(paths) - 1


def test_the_backward_route_reports_a_wrong_derivative(monkeypatch):
    from gradspec.reference_engine import ops
    monkeypatch.setitem(ops.OPS, "sin", ops.Op(np.sin, (lambda g, a, b, o, t: g * ops.cos(a) * 2,), ("a",)))
    outcome = run_case(load_case(CASES / "derivatives" / "unary-smooth.yaml"), BackwardOnly("cpu", "float64"))
    assert outcome.status == FAILED and "d_sin" in outcome.message + " ".join(outcome.details)


class ReplacingBackward(BackwardOnly):
    """mygrad's way: backward replaces every leaf's .grad instead of adding to it."""

    name = "replacing-backward"

    def __init__(self, device, dtype):
        super().__init__(device, dtype)
        self.leaves: list = []

    def tensor(self, value, requires_grad, dtype):
        self.leaves.append(super().tensor(value, requires_grad, dtype))
        return self.leaves[-1]

    def backward(self, output, gradient, retain_graph, create_graph, inputs):
        for leaf in self.leaves:
            self.set_grad(leaf, None)
        super().backward(output, gradient, retain_graph, create_graph, inputs)


TWO_DERIVATIVES = """\
schema_version: 1
title: two derivative steps in a row, then .grad as the backward steps left it
rules: [DERIV-1]
source: test
derivation: d/dx sum(3x) = 3, d/dx sum(x*x) = 2x = [2, 4]; backward of sum(5x) leaves .grad 5
capabilities: [backward]
tensors:
  x: {value: [1.0, 2.0], requires_grad: true}
steps:
  - w = sum(x * 5)
  - backward: w
  - y = sum(x * 3)
  - derivative: {of: y, wrt: x, as: d1}
  - z = sum(x * x)
  - derivative: {of: z, wrt: x, as: d2}
  - expect:
      value: {d1: [3.0, 3.0], d2: [2.0, 4.0]}
  - expect:
      grad: {x: [5.0, 5.0]}
"""


@pytest.mark.parametrize("adapter_cls", [ReplacingBackward, BackwardOnly], ids=["replaces", "accumulates"])
def test_derivative_steps_judge_the_derivative_and_leave_grad_as_it_was(adapter_cls):
    """Not .grad after less before: 2x - 3 where backward replaces .grad; and no change ACC steps would see after."""
    outcome = run(TWO_DERIVATIVES, adapter_cls, capabilities=["backward", "derivatives"])
    assert outcome.status == PASSED, outcome.report()


def test_without_grad_assignment_a_derivative_step_is_the_change_of_grad():
    """The only reading of backward there is; an engine without .grad assignment that accumulates passes."""
    class NoAssignment(BackwardOnly):
        capabilities = BackwardOnly.capabilities - {"grad_assignment"}

        def set_grad(self, tensor, value):
            raise AssertionError("set_grad called on an engine without grad_assignment")

    text = TWO_DERIVATIVES.replace("grad: {x: [5.0, 5.0]}", "grad: {x: [10.0, 12.0]}")  # 5 + 3 + 2x
    assert run(text, NoAssignment, capabilities=["backward", "derivatives"]).status == PASSED


OTHER_LEAF = """\
schema_version: 1
title: a derivative step with respect to one leaf leaves another leaf's .grad alone
rules: [DERIV-1]
source: test
derivation: d/dx sum(x * y) = y = [3, 4]; y.grad stays 1 from the backward of sum(y) before
capabilities: [backward, backward_inputs]
tensors:
  x: {value: [1.0, 2.0], requires_grad: true}
  y: {value: [3.0, 4.0], requires_grad: true}
steps:
  - s = sum(y)
  - backward: s
  - p = sum(x * y)
  - derivative: {of: p, wrt: x, as: dx}
  - expect:
      value: {dx: [3.0, 4.0]}
      grad: {y: [1.0, 1.0]}
"""


def test_a_derivative_step_by_backward_touches_no_other_leaf():
    """The backward ran over every leaf: y.grad became [4, 5]."""
    assert run(OTHER_LEAF, BackwardOnly, capabilities=["backward", "backward_inputs", "derivatives"]).status == PASSED


THREADS = """\
schema_version: 1
title: a thread fails while the other waits at a barrier
rules: [PASS-9]
source: test
derivation: by hand
capabilities: [backward, threads]
tensors:
  x: {value: [1.0, 2.0], requires_grad: true}
steps:
  - threads:
      - - y = sum(x * 2)
        - backward: y
        - expect:
            grad: {x: [5.0, 5.0]}
        - barrier: all
      - - barrier: all
        - z = sum(x * 3)
  - expect:
      grad: {x: [2.0, 2.0]}
"""


@pytest.mark.parametrize("adapter_cls", [TorchAdapter, ReferenceAdapter], ids=["torch", "reference"])
def test_a_failing_thread_is_the_step_that_fails_and_its_partners_do_not_hang(adapter_cls):
    outcome = run(THREADS, adapter_cls)
    assert outcome.status == FAILED
    assert outcome.step.startswith("step 1.t1.3 (expect"), outcome.step
    assert ".grad of x" in outcome.message


@pytest.mark.parametrize("adapter_cls", [TorchAdapter, ReferenceAdapter], ids=["torch", "reference"])
def test_threads_run_to_the_end_and_their_names_are_defined_after(adapter_cls):
    text = THREADS.replace("grad: {x: [5.0, 5.0]}", "grad: {x: [2.0, 2.0]}").replace(
        "  - expect:\n      grad:", "  - expect:\n      requires_grad: {z: true}\n      grad:").replace(
        "capabilities: [backward, threads]", "capabilities: [backward, threads, introspection]")
    assert run(text, adapter_cls).status == PASSED


def test_an_engine_that_can_clear_grad_but_not_assign_it_is_judged_on_its_derivatives():
    """mygrad's shape: backward replaces .grad, null_grad clears it, nothing assigns it."""
    class ClearsOnly(ReplacingBackward):
        capabilities = ReplacingBackward.capabilities - {"grad_assignment"}

        def set_grad(self, tensor, value):
            if value is not None:
                raise AssertionError("set_grad with a value on an engine without grad_assignment")
            super().set_grad(tensor, None)

        def clear_grad(self, tensor):
            self.set_grad(tensor, None)

    text = TWO_DERIVATIVES.replace("grad: {x: [5.0, 5.0]}", "grad: {x: [2.0, 4.0]}")  # its backward's own .grad
    assert run(text, ClearsOnly, capabilities=["backward", "derivatives"]).status == PASSED


class WithoutVersionCounters(ReferenceAdapter):
    """In-place operations, but no version counters: mygrad's shape."""

    name = "without-version-counters"
    capabilities = ReferenceAdapter.capabilities - {"version_counters"}


def test_in_place_value_cases_run_without_version_counters_and_inplace_modified_cases_are_not_applicable():
    from gradspec.faults import FAULTS, planted

    inplace = [load_case(path) for path in sorted(CASES.rglob("*.yaml"))]
    inplace = [case for case in inplace if "inplace" in case.capabilities or "version_counters" in case.capabilities]
    with planted(FAULTS["INPLACE-1"]):  # the engine really has none: saved values are used whatever their version
        outcomes = {case.id: run_case(case, WithoutVersionCounters("cpu", "float64")).status for case in inplace}
    guarded = {case.id for case in inplace if "version_counters" in case.capabilities}
    assert "inplace/saved-value-modified.yaml" in guarded
    assert {outcomes[case] for case in guarded} == {NOT_APPLICABLE}
    values = {case.id for case in inplace if case.id not in guarded
              and not case.capabilities & {"torch_detach_inplace", "torch_no_grad_views"}}
    assert len(values) >= 20 and {case: outcomes[case] for case in values if outcomes[case] != PASSED} == {}


class ReturnsFloat32(ReferenceAdapter):
    """Computes in float64 and gives back float32: judged in the dtype it gave, it passed 67 of mygrad's 68 cases."""

    name = "returns-float32"

    def to_numpy(self, tensor):
        values = super().to_numpy(tensor)
        return values.astype(np.float32) if values.dtype == np.float64 else values

    def dtype_name(self, tensor):
        name = super().dtype_name(tensor)
        return "float32" if name == "float64" else name


HOOKED = """\
schema_version: 1
title: a hook's gradient
rules: [HOOK-1]
source: test
derivation: dy/dx = 3
capabilities: [backward, tensor_hooks]
tensors:
  x: {value: [1.0], requires_grad: true}
steps:
  - y = sum(x * 3)
  - register_hook: x
    as: h
  - backward: y
  - expect:
      hook_grads: {h: [[3.0]]}
"""


@pytest.mark.parametrize(("text", "what"), [
    (VALID_CASE.replace("grad: {x: [6.0]}", "value: {y: 9.0}"), "value of y: dtype float32, expected float64 (SHAPE-6)"),
    (VALID_CASE, ".grad of x: dtype float32, expected float64 (SHAPE-1)"),
    (HOOKED, "hook h, call 1: dtype float32, expected float64 (SHAPE-1)"),
], ids=["value", "grad", "hook"])
def test_a_result_in_another_dtype_than_asked_for_fails_naming_both(text, what):
    """Exact in float32 (9, 6, 3), so only the dtype tells: the dtype asked for decides, not the one given."""
    outcome = run(text, ReturnsFloat32, "float64")
    assert outcome.status == FAILED and outcome.message == what
    assert run(text, ReturnsFloat32, "float32").status == PASSED


def test_the_tolerance_is_the_dtype_asked_fors_not_the_one_given():
    """0.1 * 3 in float32 is 0.30000001192..., inside float32's tolerance of 0.30000000000000004 but not float64's."""
    text = VALID_CASE.replace("x: {value: [3.0], requires_grad: true}", "x: {value: [0.1], requires_grad: true}")
    text = text.replace("y = sum(x ** 2)", "y = sum(x * 3)").replace("grad: {x: [6.0]}", "value: {y: 0.30000000000000004}")
    outcome = run(text, ReturnsFloat32, "float64")
    assert outcome.status == FAILED
    assert "dtype float32, expected float64 (SHAPE-6); expected 0.30000000000000004" in outcome.message
    assert "rtol=1e-12" in outcome.message


def test_an_engine_that_declares_it_lacks_a_dtype_is_judged_in_the_one_it_gives():
    """A tensor fixed to float64 on an engine without float64: no dtype failure, float32's tolerance."""
    class Float32Only(ReturnsFloat32):
        dtypes = ("float32",)

    text = VALID_CASE.replace("x: {value: [3.0], requires_grad: true}", "x: {value: [0.1], dtype: float64}")
    text = text.replace("capabilities: [backward]", "capabilities: []").replace("  - backward: y\n", "")
    text = text.replace("y = sum(x ** 2)", "y = sum(x * 3)").replace("grad: {x: [6.0]}", "value: {y: 0.30000000000000004}")
    assert run(text, Float32Only, "float32").status == PASSED
    assert "dtype float32, expected float64" in run(text, ReturnsFloat32, "float32").message


def test_an_engine_returning_float32_in_a_float64_run_fails_every_derivative_case():
    outcomes = [run_case(load_case(path), ReturnsFloat32("cpu", "float64")).status
                for path in sorted((CASES / "derivatives").glob("*.yaml"))]
    assert outcomes.count(PASSED) == 0 and outcomes.count(FAILED) > 50


class RunsOutOfMemory(ReferenceAdapter):
    name = "out-of-memory"

    def apply(self, op, args, kwargs):
        if op == "pow":
            raise MemoryError("cannot allocate 7.3 GiB")
        return super().apply(op, args, kwargs)


def test_running_out_of_memory_is_no_verdict_on_the_engine():
    """A case whose size exhausts the machine was reported as the engine's failure."""
    outcome = run(VALID_CASE, RunsOutOfMemory)
    assert outcome.status == "error" and "ran out of memory" in outcome.message, outcome.report()
