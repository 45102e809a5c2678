"""The pytest plugin end to end, in a fresh pytest run per test (pytester)."""

from __future__ import annotations

import pytest

from .conftest import VALID_CASE

pytest.importorskip("torch")

WRONG_CASE = VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}")
BROKEN_CASE = VALID_CASE.replace("  - backward: y", "  - backwards: y")


def test_ids_are_path_engine_device_dtype(pytester, cases):
    cases(**{"area/good": VALID_CASE})
    result = pytester.runpytest("cases", "--engine", "torch", "--device", "cpu", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "cases/area/good.yaml::torch-cpu-float64",
        "cases/area/good.yaml::torch-cpu-float32",
    ])


def test_passing_case_and_summary(pytester, cases):
    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "--engine", "torch", "--device", "cpu")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*gradspec * conformance summary*", "torch-cpu-float64 * 1/1 * passed*"])


def test_failure_shows_case_engine_step_values_tolerance_and_rules(pytester, cases):
    cases(wrong=WRONG_CASE)
    result = pytester.runpytest("cases", "--engine", "torch", "--device", "cpu", "--dtype", "float64")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "wrong.yaml: y = x^2 at 3 has gradient 6",
        "engine torch * on cpu, float64",
        "step 3 (expect, line 12): .grad of x: expected [7.], got [6.] (tolerance rtol=1e-12, atol=1e-12, float64)",
        "rules:",
        "  ACC-1: *",
    ])
    assert "Traceback" not in result.stdout.str()


def test_broken_file_is_one_collection_error_and_the_rest_still_runs(pytester, cases):
    cases(good=VALID_CASE, broken=BROKEN_CASE, wrong=WRONG_CASE)
    result = pytester.runpytest("cases", "--engine", "torch", "--device", "cpu", "--dtype", "float64")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR collecting cases/broken.yaml*",
        "cases/broken.yaml:11:5: no step key in *'backwards'* (did you mean 'backward'?); step keys are: *",
        "1 case file(s) could not be loaded: cases/broken.yaml",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_collection_errors_outside_case_files_still_stop_the_run(pytester, cases):
    """The plugin only relaxes pytest's rule for case files, never for a user's Python tests."""
    cases(good=VALID_CASE)
    pytester.makepyfile(test_bad="import no_such_module_anywhere")
    result = pytester.runpytest("cases", "test_bad.py", "--engine", "torch", "--device", "cpu")
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])


def test_unknown_engine_is_one_usage_error_with_a_suggestion(pytester, cases):
    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "--engine", "torhc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown engine 'torhc' (did you mean 'torch'?); registered engines: *torch*"])


def test_unknown_device_and_dtype_are_usage_errors(pytester, cases):
    cases(good=VALID_CASE)
    assert pytester.runpytest("cases", "--device", "tpu").ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest("cases", "--dtype", "float46")
    result.stderr.fnmatch_lines(["*unknown dtype 'float46' (did you mean 'float64'?)*"])


def test_adapter_given_as_module_and_class_plugs_in_without_registration(pytester, cases):
    pytester.makepyfile(my_engine='''
        from gradspec.adapters.torch_adapter import TorchAdapter

        class NoHooks(TorchAdapter):
            name = "nohooks"
            devices = ("cpu",)
            capabilities = TorchAdapter.capabilities - {"tensor_hooks"}
    ''')
    hooked = VALID_CASE.replace("  - backward: y", "  - register_hook: x\n    as: h\n  - backward: y")
    hooked = hooked.replace("capabilities: [backward]", "capabilities: [backward, tensor_hooks]")
    cases(plain=VALID_CASE, hooked=hooked)
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "my_engine:NoHooks", "--dtype", "float64", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*not applicable: nohooks lacks tensor_hooks*"])


def test_bad_adapter_reference_is_a_usage_error(pytester, cases):
    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "--engine", "no_such_module:Adapter")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot load adapter 'no_such_module:Adapter'*"])


def test_case_restricted_to_a_dtype_runs_only_there(pytester, cases):
    cases(only64=VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward]\ndtypes: [float64]"))
    result = pytester.runpytest("cases", "--engine", "torch", "--device", "cpu", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases/only64.yaml::torch-cpu-float64", "1 test collected*"])


def test_cuda_runs_where_present_and_is_a_usage_error_where_asked_for_and_absent(pytester, cases):
    import torch

    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "--engine", "torch", "--device", "cuda", "-rs")
    if torch.cuda.is_available():
        result.assert_outcomes(passed=2)
    else:  # skipping every case would judge nothing and still exit 0
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--device cuda: engine 'torch' cannot use it here: no CUDA device here*"])


def test_default_devices_skip_cuda_with_a_reason_where_absent(pytester, cases):
    import torch

    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "--engine", "torch", "-rs")
    if not torch.cuda.is_available():
        result.assert_outcomes(passed=2, skipped=2)
        result.stdout.fnmatch_lines(["torch-cuda-float64 * not run: no CUDA device here*"])


def test_only_case_files_are_collected_wherever_they_lie(pytester, cases):
    pytester.makefile(".yaml", config="not: a case")
    (pytester.path / "ci").mkdir()
    (pytester.path / "ci" / "workflow.yaml").write_text("on: push")
    (pytester.path / "tests" / "cases").mkdir(parents=True)  # another project's test data in a folder named cases
    (pytester.path / "tests" / "cases" / "input1.yaml").write_text("shape: [2, 3]\nsteps: 4\n")
    result = pytester.runpytest(".", "--engine", "torch", "--device", "cpu", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    cases(good=VALID_CASE)
    (pytester.path / "mine").mkdir()
    (pytester.path / "mine" / "own.yaml").write_text(VALID_CASE)  # a case file in a folder of any name
    result = pytester.runpytest(".", "--engine", "torch", "--device", "cpu", "--dtype", "float64", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases/good.yaml::torch-cpu-float64", "mine/own.yaml::torch-cpu-float64",
                                 "2 tests collected*"])


def test_the_plugin_can_be_turned_off(pytester, cases):
    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "-p", "no:gradspec", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_parallel_run_with_xdist_keeps_isolation_and_summary(pytester, cases):
    pytest.importorskip("xdist")
    cases(good=VALID_CASE, broken=BROKEN_CASE, wrong=WRONG_CASE)
    result = pytester.runpytest("cases", "-n", "2", "--engine", "torch", "--device", "cpu", "--dtype", "float64")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "torch-cpu-float64 * 1/2 * passed*(1 passed, 1 failed)",
        "1 case file(s) could not be loaded: cases/broken.yaml",
    ])


def test_engine_all_collects_every_registered_engine(pytester, cases):
    from gradspec.running.registry import registered

    cases(good=VALID_CASE)
    result = pytester.runpytest("cases", "--engine", "all", "--device", "cpu", "--dtype", "float64", "--collect-only", "-q")
    result.stdout.fnmatch_lines_random([f"cases/good.yaml::{name}-cpu-float64" for name in registered()])


def test_a_run_that_judges_nothing_fails(pytester, cases):
    cases(good=VALID_CASE)
    pytester.makepyfile(bare='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class NothingAtAll(ReferenceAdapter):
            name = "bare"
            capabilities = frozenset()
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "bare:NothingAtAll")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*no case was judged*this run says nothing about any engine, and fails*"])


def test_an_engine_asked_for_that_cannot_run_is_a_usage_error_but_all_skips_it(pytester, cases):
    cases(good=VALID_CASE)
    pytester.makepyfile(absent='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class NotInstalled(ReferenceAdapter):
            name = "absent"

            @classmethod
            def unavailable_reason(cls):
                return "absent-engine is not installed (pip install absent-engine)"
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "absent:NotInstalled")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*engine 'absent' cannot run here: absent-engine is not installed*"])


@pytest.mark.parametrize(("body", "message"), [
    ("pass", "*does not implement apply, apply_inplace, backward*"),
    ("capabilities = frozenset({'backwards'})", "*unknown capability 'backwards' (did you mean 'backward'?)*"),
    ("devices = 'cpu'", "*`devices` must be a non-empty tuple of names, got 'cpu'*"),
])
def test_a_broken_adapter_is_one_usage_error_at_start(pytester, cases, body, message):
    cases(good=VALID_CASE)
    base = "Adapter" if body == "pass" else "ReferenceAdapter"
    pytester.makepyfile(broken=f'''
        from gradspec.adapter import Adapter
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class Broken({base}):
            name = "broken"
            {body}
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "broken:Broken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len(result.stderr.lines) < 5  # one message, not a traceback per case


def test_k_selects_cases_by_rule_id(pytester, cases):
    cases(good=VALID_CASE, hooked=VALID_CASE.replace("rules: [ACC-1]", "rules: [HOOK-1]"))
    result = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "-k", "HOOK-1", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases/hooked.yaml::reference-cpu-float64", "1/2 tests collected*"])


def test_gradspec_traceback_shows_where_an_engine_exception_came_from(pytester, cases):
    cases(good=VALID_CASE)
    pytester.makepyfile(raising='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class EngineRaises(ReferenceAdapter):
            name = "raising"

            def backward(self, output, *args):
                output.backward(gradient=object())  # fails inside the engine
    ''')
    pytester.syspathinsert()
    plain = pytester.runpytest("cases", "--engine", "raising:EngineRaises", "--dtype", "float64")
    plain.stdout.fnmatch_lines(["*raised TypeError: gradients can be either Tensors or None*"])
    assert "Traceback" not in plain.stdout.str()
    full = pytester.runpytest("cases", "--engine", "raising:EngineRaises", "--dtype", "float64", "--gradspec-traceback")
    full.stdout.fnmatch_lines(["*Traceback (most recent call last)*", "*reference_engine*engine.py*"])


def test_gradspec_engines_lists_what_each_engine_has_and_why_it_cannot_run(capsys):
    from gradspec.cli import main
    assert main(["engines", "reference", "torch"]) == 0
    out = capsys.readouterr().out
    assert "reference: 0.1.0\n  devices: cpu   dtypes: float64, float32\n" in out
    assert "torch: 2." in out and "lacks: saved_hooks_version_check\n" in out  # SAVED-6: PyTorch skips that check
    assert main(["engines", "nosuch"]) == 1
    assert "unknown engine 'nosuch'" in capsys.readouterr().out


def test_devices_and_dtypes_an_adapter_declares_can_be_chosen(pytester, cases):
    cases(good=VALID_CASE)
    pytester.makepyfile(accelerated='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class OnAnAccelerator(ReferenceAdapter):
            name = "accelerated"
            devices = ("cpu", "npu")  # the reference engine runs on the host whatever it is called
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "accelerated:OnAnAccelerator", "--device", "npu", "--dtype", "float64")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["accelerated-npu-float64 * 1/1 * passed*"])


def test_many_unmatched_expectations_are_one_summary_line(pytester, cases):
    cases(good=VALID_CASE)
    (pytester.path / "known.txt").write_text("".join(f"area/gone{i}.yaml   no longer there\n" for i in range(6)))
    result = pytester.runpytest("cases", "--engine", "reference", "--expectations", "known.txt")
    result.stdout.fnmatch_lines(["6 expectations match no case collected in this run*known.txt:1, known.txt:2*"])
    assert "gone3" not in result.stdout.str()


def test_several_case_files_of_one_folder_given_as_arguments_all_run(pytester, cases):
    """pytest asks the plugin for a folder's files once per argument; each named file must be collected every time."""
    cases(**{"area/one": VALID_CASE, "area/two": VALID_CASE})
    result = pytester.runpytest("cases/area/one.yaml", "cases/area/two.yaml", "--engine", "reference",
                                "--dtype", "float64")
    result.assert_outcomes(passed=2)
