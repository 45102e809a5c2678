"""Hostile and broken inputs: each costs one clean error naming its file, and everything else still runs.

Large inputs are generated here rather than stored. Each test reproduces an item of the
review that found crashes, hangs and memory blow-ups in the loader (issue 14).
"""

from __future__ import annotations

import os
import time

import pytest
from gradspec.cli import main as cli
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import load_case

from .conftest import VALID_CASE


def refused(path, pattern: str, seconds: float = 5.0) -> str:
    """Loading `path` fails quickly with one CaseFileError whose text matches `pattern`."""
    start = time.monotonic()
    with pytest.raises(CaseFileError, match=pattern) as info:
        load_case(path)
    assert time.monotonic() - start < seconds, "refusing took too long"
    return str(info.value)


def test_deep_nesting_is_refused_before_the_c_composer_can_crash(write_case):
    depth = 20_000  # about 40 KB; PyYAML's C composer segfaulted on such files
    path = write_case(VALID_CASE.replace("value: [3.0]", "value: " + "[" * depth + "3.0" + "]" * depth))
    refused(path, r"nested deeper than 64 levels")


def test_alias_bombs_are_refused(write_case):
    laughs = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    path = write_case("l0: &l0 [lol]\n" + laughs + VALID_CASE)
    refused(path, r"YAML aliases \(\*name\) are not allowed")


@pytest.mark.parametrize(("change", "pattern"), [
    (("  - y = sum(x ** 2)", "  - y = sum(" + " + ".join(["x"] * 4000) + ")"), r"could not be loaded \(RecursionError"),
    (("x: {value: [3.0]", "? [a, b]\n  : 1\n  x: {value: [3.0]"), r"a mapping key must be a plain value"),
    (("value: [3.0]", "value: [" + "9" * 400 + "]"), r"rectangular array|could not be loaded"),
])
def test_every_failure_to_load_is_that_files_error(write_case, change, pattern):
    refused(write_case(VALID_CASE.replace(*change)), pattern)


def test_validate_goes_on_past_every_broken_file(write_case, capsys):
    write_case(VALID_CASE.replace("  - y = sum(x ** 2)", "  - y = sum(" + " + ".join(["x"] * 4000) + ")"), "a.yaml")
    write_case(VALID_CASE.replace("value: [3.0]", "value: " + "[" * 5000 + "3.0" + "]" * 5000), "b.yaml")
    good = write_case(VALID_CASE, "c.yaml")
    assert cli(["validate", str(good.parent)]) == 1
    captured = capsys.readouterr()
    assert "1 valid, 2 invalid case file(s)" in captured.out
    assert "Traceback" not in captured.err and captured.err.count("\n") == 2


def test_files_beyond_the_size_limit_are_refused_unread(write_case):
    big = "[" + ", ".join(["1.0"] * 400_000) + "]"  # about 2 MB; validating such a value took 91 s
    refused(write_case(VALID_CASE.replace("value: [3.0]", f"value: {big}")), r"more than the limit of 1000000")


def test_the_limits_can_be_changed(write_case, monkeypatch):
    monkeypatch.setenv("GRADSPEC_MAX_ELEMENTS", "2")
    refused(write_case(VALID_CASE.replace("value: [3.0]", "value: [1.0, 2.0, 3.0]")), r"3 elements, more than .* 2")


def test_a_step_that_would_allocate_gigabytes_is_refused_from_its_shapes(write_case):
    column = "[" + ", ".join(["[1.0]"] * 2000) + "]"  # 2,000 x 1
    row = "[" + ", ".join(["1.0"] * 2000) + "]"  # 2,000: broadcast together, 4,000,000 elements
    text = VALID_CASE.replace("x: {value: [3.0], requires_grad: true}",
                              f"x: {{value: [3.0], requires_grad: true}}\n  a: {{value: {column}}}\n  b: {{value: {row}}}")
    text = text.replace("  - y = sum(x ** 2)", "  - big = a * b\n  - y = sum(x ** 2)")
    refused(write_case(text), r":12: mul would make a tensor of 4000000 elements, more than the limit of 1000000")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_special_files_are_never_read(write_case, tmp_path):
    link = write_case(VALID_CASE).parent / "zero.yaml"
    link.symlink_to("/dev/zero")
    refused(link, r"not a regular file")
    fifo = link.parent / "pipe.yaml"
    os.mkfifo(fifo)
    refused(fifo, r"not a regular file")


@pytest.mark.parametrize(("change", "pattern"), [
    (("derivation: dy/dx = 2x = 6 at x = 3", "derivation: dy/dx = 2x = 6 at x = 3\ntolerance: {rtol: .inf, reason: r}"),
     r":6:\d+: inf is greater than or equal to the maximum of 1; expected: below 1"),
    (("x: {value: [3.0], requires_grad: true}", "x: {value: [3.0], requires_grad: true}\n  n: {value: [.inf], dtype: int64}"),
     r"whole, finite numbers"),
])
def test_tolerances_and_values_that_would_accept_anything_are_refused(write_case, change, pattern):
    refused(write_case(VALID_CASE.replace(*change)), pattern)


@pytest.mark.parametrize(("content", "pattern"), [
    (b"area/x.yaml   reason \xff\xfe\n", r"not UTF-8 text"),
    (b"area/x.yaml   once\narea/x.yaml   twice\n", r":2: 'area/x.yaml' is listed twice \(first at line 1\)"),
])
def test_expectation_files_give_clean_errors(tmp_path, content, pattern):
    from gradspec.running import expectations
    path = tmp_path / "known.txt"
    path.write_bytes(content)
    with pytest.raises(expectations.ExpectationFileError, match=pattern):
        expectations.load(path)


def test_a_byte_order_mark_does_not_break_the_first_id(tmp_path):
    from gradspec.running import expectations
    path = tmp_path / "known.txt"
    path.write_bytes("\ufeffarea/x.yaml   the first line\n".encode())
    assert expectations.load(path)[0].pattern == "area/x.yaml"


def test_values_that_are_not_real_numbers_never_compare_equal():
    import numpy as np
    from gradspec.running.compare import array_mismatch
    assert "expected real numbers, got values of dtype complex128" in array_mismatch([6.0], np.array([6 + 1j]), "float64")
    assert "expected real numbers" in array_mismatch([6.0], np.array(["6.0"]), "float64")


def test_an_engine_message_of_megabytes_is_cut_in_every_report(pytester, cases):
    cases(good=VALID_CASE)
    pytester.makepyfile(loud='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class Loud(ReferenceAdapter):
            name = "loud"

            def backward(self, output, *args):
                output.backward(gradient="x" * 5_000_000)  # the engine fails with a 5 MB message
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "loud:Loud", "--dtype", "float64", "--gradspec-report", "r.json",
                                "--gradspec-html", "r.html", "--junitxml", "j.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for name in ("r.json", "r.html", "j.xml"):
        assert (pytester.path / name).stat().st_size < 200_000, name


def test_two_engines_of_one_name_are_a_usage_error_and_a_crashing_version_is_no_broken_file(pytester, cases):
    cases(good=VALID_CASE)
    pytester.makepyfile(odd='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class Impostor(ReferenceAdapter):
            name = "reference"

        class NoVersion(ReferenceAdapter):
            name = "no-version"

            @classmethod
            def version(cls):
                raise RuntimeError("cannot tell")
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "reference,odd:Impostor")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*two chosen engines are both named 'reference': reference, odd:Impostor*"])
    result = pytester.runpytest("cases", "--engine", "odd:NoVersion", "--dtype", "float64", "--gradspec-report", "r.json")
    result.assert_outcomes(passed=1)
    import json
    engines = json.loads((pytester.path / "r.json").read_text())["engines"]
    assert "version() raised RuntimeError" in engines["no-version"]["version"]


def test_an_interrupted_run_writes_a_report_that_says_so_and_diff_fails_on_it(pytester, cases, tmp_path):
    import json
    cases(a=VALID_CASE, b=VALID_CASE, c=VALID_CASE)
    pytester.makepyfile(stopping='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        calls = []

        class StopsAtB(ReferenceAdapter):
            name = "stops"

            def backward(self, output, *args):
                calls.append(1)
                if len(calls) == 2:
                    raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the second case
                return super().backward(output, *args)
    ''')
    pytester.syspathinsert()
    full = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--gradspec-report", "full.json",
                              "--gradspec-isolation", "none")
    assert full.ret == 0
    pytester.runpytest_subprocess("cases", "--engine", "stopping:StopsAtB", "--dtype", "float64", "--gradspec-report",
                                  "cut.json", "--gradspec-markdown", "cut.md", "--gradspec-isolation", "none")
    cut = json.loads((pytester.path / "cut.json").read_text())
    assert cut["complete"] is False and cut["reported_items"] < cut["expected_items"] == 3
    assert (pytester.path / "cut.md").read_text().count("INCOMPLETE") == 1
    from gradspec.cli import main
    assert main(["diff", str(pytester.path / "full.json"), str(pytester.path / "cut.json")]) == 1


def test_one_report_that_cannot_be_written_does_not_stop_the_others(pytester, cases, monkeypatch):
    from gradspec import plugin
    cases(a=VALID_CASE)
    original = plugin.write_atomically

    def flaky(path, text):
        if path.suffix == ".md":
            raise OSError(28, "No space left on device")
        original(path, text)

    monkeypatch.setattr(plugin, "write_atomically", flaky)
    result = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--gradspec-report", "r.json",
                                "--gradspec-markdown", "r.md", "--gradspec-html", "r.html", "--gradspec-isolation", "none")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*could not write the report r.md: No space left on device*"])
    assert (pytester.path / "r.json").exists() and (pytester.path / "r.html").exists()
    assert not list(pytester.path.glob(".r.*.tmp"))  # no half-written file left behind


PLANTED = '''
    import ctypes
    import os
    import time

    from gradspec.adapters.reference_adapter import ReferenceAdapter

    def planted():
        return os.environ.get("GRADSPEC_TEST_PLANT") == "1"

    class Segfaults(ReferenceAdapter):
        name = "segfaults"

        def backward(self, *args):
            if planted():
                ctypes.string_at(0)  # reads address 0: SIGSEGV
            return super().backward(*args)

    class Hangs(ReferenceAdapter):
        name = "hangs"

        def backward(self, *args):
            if planted():
                time.sleep(3600)
            return super().backward(*args)

    class Exits(ReferenceAdapter):
        name = "exits"

        def backward(self, *args):
            if planted():
                os._exit(0)  # "success", from the middle of a case
            return super().backward(*args)
'''


@pytest.mark.parametrize("parallel", [[], ["-n", "2"]], ids=["one process", "xdist -n 2"])
def test_a_crashing_a_hanging_and_an_exiting_engine_cost_their_own_cases_only(pytester, cases, monkeypatch, parallel):
    import json

    from gradspec.cli import main
    if parallel:
        pytest.importorskip("xdist")
    cases(a=VALID_CASE, b=VALID_CASE)
    pytester.makepyfile(planted=PLANTED)
    engines = "reference,planted:Segfaults,planted:Hangs,planted:Exits"

    def run(report: str):
        # A process of its own, whose PYTHONPATH (set by pytester) finds planted.py in xdist's workers too.
        return pytester.runpytest_subprocess("cases", "--engine", engines, "--dtype", "float64", "--gradspec-timeout",
                                             "3", "--gradspec-report", f"{report}.json", "--gradspec-markdown",
                                             f"{report}.md", "--gradspec-html", f"{report}.html",
                                             "--junitxml", f"{report}.xml", *parallel)

    assert run("clean").ret == pytest.ExitCode.OK
    monkeypatch.setenv("GRADSPEC_TEST_PLANT", "1")
    result = run("planted")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((pytester.path / "planted.json").read_text())
    outcomes = {(r["engine"], r["case"]): r["outcome"] for r in report["results"]}
    assert outcomes == {**{("reference", c): "passed" for c in ("a.yaml", "b.yaml")},
                        **{(e, c): "error" for e in ("segfaults", "hangs", "exits") for c in ("a.yaml", "b.yaml")}}
    messages = " ".join(r["message"] for r in report["results"])
    assert "killed by signal SIGSEGV" in messages and "no verdict within 3 s" in messages and "exit code 0" in messages
    assert report["complete"] is True
    summary = (pytester.path / "planted.md").read_text()
    assert "FAILED: 6 error" in summary and "None." not in summary
    assert (pytester.path / "planted.html").read_text().count('<section class="failure"') == 6
    assert (pytester.path / "planted.xml").read_text().count("<error") + \
        (pytester.path / "planted.xml").read_text().count("<failure") == 6
    assert main(["diff", str(pytester.path / "clean.json"), str(pytester.path / "planted.json")]) == 1


def test_without_isolation_a_crashed_xdist_worker_is_still_an_error_in_every_report(pytester, cases, monkeypatch):
    import json
    pytest.importorskip("xdist")
    cases(a=VALID_CASE, b=VALID_CASE)
    pytester.makepyfile(planted=PLANTED)
    monkeypatch.setenv("GRADSPEC_TEST_PLANT", "1")
    result = pytester.runpytest_subprocess("cases", "--engine", "reference,planted:Segfaults", "--dtype", "float64",
                                           "--gradspec-isolation", "none", "-n", "2", "--gradspec-report", "r.json")
    assert result.ret != pytest.ExitCode.OK
    report = json.loads((pytester.path / "r.json").read_text())
    outcomes = sorted((r["engine"], r["outcome"]) for r in report["results"])
    assert outcomes == [("reference", "passed")] * 2 + [("segfaults", "error")] * 2
    assert all("the process running this case died" in r["message"] for r in report["results"] if r["outcome"] == "error")


@pytest.mark.parametrize(("change", "pattern"), [
    (("grad: {x: [6.0]}", "grad: {x: [[6.0], [1.0, 2.0]]}"), r":12: expected \.grad of x is not a number or a rectangular"),
    (("  - y = sum(x ** 2)", "  - c = (1).exp()\n  - y = sum(x ** 2)"), r":10: exp of numbers alone makes no tensor"),
    (("  - y = sum(x ** 2)", "  - y = sum(x ** 2, dim=99)"), r":10: sum cannot take operands of shape \[1\], dim=99"),
])
def test_mistakes_of_the_case_are_its_own_errors_not_failures_of_every_engine(write_case, change, pattern):
    refused(write_case(VALID_CASE.replace(*change)), pattern)


def test_links_inside_the_corpus_neither_duplicate_cases_nor_loop(pytester, cases, capsys):
    from gradspec.cli import main
    cases(good=VALID_CASE)
    folder = pytester.path / "cases"
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")  # cases/sub/up -> cases: a loop
    (folder / "here").symlink_to(".")  # cases/here -> cases: another
    (folder / "again.yaml").symlink_to(folder / "good.yaml")
    (folder / "dangling.yaml").symlink_to(folder / "nowhere.yaml")
    result = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases/good.yaml::reference-cpu-float64", "1 test collected*"])
    assert main(["validate", str(folder)]) == 0
    assert "1 valid, 0 invalid" in capsys.readouterr().out  # validate agrees: the dangling link is no case file


def test_an_adapter_that_writes_into_a_case_value_cannot_change_it_for_the_next_engine(pytester, cases):
    import json
    cases(good=VALID_CASE)
    pytester.makepyfile(vandal='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class Vandal(ReferenceAdapter):
            name = "vandal"

            def tensor(self, value, requires_grad, dtype):
                value[...] = 100.0  # tries to corrupt the case for whoever runs it next
                return super().tensor(value, requires_grad, dtype)
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "vandal:Vandal,reference", "--dtype", "float64",
                                "--gradspec-isolation", "none", "--gradspec-report", "r.json")
    outcomes = {r["engine"]: r["outcome"] for r in json.loads((pytester.path / "r.json").read_text())["results"]}
    assert outcomes == {"vandal": "error", "reference": "passed"}, result.stdout.str()  # read-only: the adapter's error


def test_sigterm_leaves_reports_marked_incomplete(pytester, cases):
    import json
    import signal
    import subprocess
    import sys
    cases(a=VALID_CASE, b=VALID_CASE)
    pytester.makepyfile(slow='''
        import time
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class Slow(ReferenceAdapter):
            name = "slow"

            def backward(self, *args):
                open("started", "w").close()  # tells the test that a case is running
                time.sleep(60)
    ''')
    process = subprocess.Popen([sys.executable, "-m", "pytest", "cases", "--engine", "slow:Slow", "--dtype", "float64",
                                "--gradspec-report", "r.json", "-p", "no:cacheprovider"], cwd=pytester.path,
                               env={**os.environ, "PYTHONPATH": str(pytester.path)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (pytester.path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["complete"] is False


def test_the_fuzzer_never_takes_an_adapters_own_exception_for_the_engines(write_case, tmp_path):
    """Issue 24, item 7: a draw on which the adapter's own code raised was staged as the engine's disagreement with
    the reference engine ("the engine raised unclassified"); it is an error naming the adapter, and nothing is staged."""
    from gradspec.adapters.reference_adapter import ReferenceAdapter
    from gradspec.fuzz import properties
    from gradspec.running.interpreter import AdapterFault, Session
    from hypothesis import HealthCheck, settings

    class Buggy(ReferenceAdapter):
        name = "buggy"

        def apply(self, op, args, kwargs):
            return self.no_such_helper(op, args, kwargs)  # the adapter's bug, in the adapter's own line

    case = load_case(write_case(VALID_CASE))
    with pytest.raises(AdapterFault, match="AttributeError: .*no_such_helper"):
        Session(case, Buggy("cpu", "float64")).run(case.steps[0])
    engine = Session(case, ReferenceAdapter("cpu", "float64"))  # the engine refusing is still an observation
    assert [engine.run(step) for step in (case.steps[0], case.steps[1], case.steps[1])] == [None, None, "freed_graph"]
    quick = settings(max_examples=5, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))
    with pytest.raises(AdapterFault):
        properties.run_sequences(Buggy("cpu", "float64"), quick, tmp_path / "staging")
    assert not list(tmp_path.glob("staging/**/*.yaml"))  # no case staged in the engine's name
