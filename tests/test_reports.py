"""Conformance reports (JSON, Markdown) and expectation files, end to end with pytester."""

from __future__ import annotations

import json

import jsonschema
import pytest
from gradspec import contracts
from gradspec.cli import main as cli

from .conftest import VALID_CASE

pytest.importorskip("torch")

WRONG = VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}")
BROKEN = VALID_CASE.replace("  - backward: y", "  - backwards: y")
HOOKED = VALID_CASE.replace("  - backward: y", "  - register_hook: x\n    as: h\n  - backward: y").replace(
    "capabilities: [backward]", "capabilities: [backward, tensor_hooks]")
NO_HOOKS = '''
from gradspec.adapters.reference_adapter import ReferenceAdapter

class NoHooks(ReferenceAdapter):
    name = "nohooks"
    capabilities = ReferenceAdapter.capabilities - {"tensor_hooks"}
'''


@pytest.fixture
def corpus(pytester):
    for name, text in {"area/good": VALID_CASE, "area/wrong": WRONG, "other/broken": BROKEN, "other/hooked": HOOKED}.items():
        path = pytester.path / "cases" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pytester.makepyfile(no_hooks=NO_HOOKS)
    pytester.syspathinsert()
    return pytester


def run(pytester, *args):
    return pytester.runpytest("cases", "--engine", "reference,no_hooks:NoHooks", "--dtype", "float64",
                              "--gradspec-report", "out/report.json", "--gradspec-markdown", "out/summary.md", *args)


def outcomes(report: dict) -> dict:
    return {(r["case"], r["engine"]): r["outcome"] for r in report["results"]}


def test_json_report_follows_its_schema_and_says_what_happened(corpus):
    run(corpus)
    report = json.loads((corpus.path / "out" / "report.json").read_text())
    jsonschema.validate(report, contracts.report_schema())
    assert outcomes(report) == {
        ("area/good.yaml", "reference"): "passed", ("area/good.yaml", "nohooks"): "passed",
        ("area/wrong.yaml", "reference"): "failed", ("area/wrong.yaml", "nohooks"): "failed",
        ("other/hooked.yaml", "reference"): "passed", ("other/hooked.yaml", "nohooks"): "not_applicable",
    }
    wrong = next(r for r in report["results"] if r["case"] == "area/wrong.yaml")
    assert "expected [7.], got [6.]" in wrong["message"] and wrong["rules"] == ["ACC-1"]
    assert report["broken_case_files"][0]["path"] == "cases/other/broken.yaml"
    assert "did you mean 'backward'" in report["broken_case_files"][0]["error"]
    assert set(report["engines"]) == {"reference", "nohooks"}
    assert "tensor_hooks" not in report["engines"]["nohooks"]["capabilities"]


def test_adapter_crashes_are_errors_while_an_engine_exception_in_a_step_is_a_failure(pytester):
    path = pytester.path / "cases" / "good.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(VALID_CASE)
    pytester.makepyfile(crashing='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class CrashesInBackward(ReferenceAdapter):
            name = "in-step"

            def backward(self, *args):
                raise ZeroDivisionError("a bug in the adapter")

        class EngineRaisesInBackward(ReferenceAdapter):
            name = "engine"

            def backward(self, output, *args):
                output.backward(gradient=object())  # the engine itself fails on what it is handed

        class CrashesAtStart(ReferenceAdapter):
            name = "at-start"

            def __init__(self, device, dtype):
                raise ZeroDivisionError("cannot even start")
    ''')
    pytester.syspathinsert()
    pytester.runpytest("cases", "--engine", "crashing:CrashesInBackward,crashing:CrashesAtStart,"
                       "crashing:EngineRaisesInBackward", "--dtype", "float64",
                       "--gradspec-report", "r.json", "--gradspec-markdown", "r.md")
    report = json.loads((pytester.path / "r.json").read_text())
    jsonschema.validate(report, contracts.report_schema())
    by_engine = {r["engine"]: r for r in report["results"]}
    assert by_engine["engine"]["outcome"] == "failed"  # the engine raised where the case expects no error
    assert "raised TypeError: gradients can be either Tensors or None" in by_engine["engine"]["message"]
    assert by_engine["in-step"]["outcome"] == "error"  # the adapter's own code raised: no verdict on the engine
    assert "the adapter or gradspec raised ZeroDivisionError: a bug in the adapter" in by_engine["in-step"]["message"]
    assert "crashing.py" in by_engine["in-step"]["message"]  # with its traceback
    assert by_engine["at-start"]["outcome"] == "error" and "cannot even start" in by_engine["at-start"]["message"]
    assert by_engine["at-start"]["graph"]["nodes"][0]["id"] == "x"
    assert "### good.yaml on at-start-cpu-float64 (error: no verdict)" in (pytester.path / "r.md").read_text()


def test_markdown_summary_has_run_area_rule_tables_and_each_failure(corpus):
    run(corpus)
    text = (corpus.path / "out" / "summary.md").read_text()
    assert "| reference-cpu-float64 | 2 | 1 | 0 | 0 | 0 | 0 | 0 |" in text
    assert "| nohooks-cpu-float64 | 1 | 1 | 0 | 0 | 0 | 1 | 0 |" in text
    assert text.startswith("# gradspec conformance report\n")
    assert "**FAILED: 2 failed, 1 case file(s) not loaded, in 5 judged results**" in text
    # runs are sorted: nohooks first, then reference; a failing cell links to its failure
    assert ("| area | [1/2 ❌](#failure-area-wrong-yaml-nohooks-cpu-float64) | "
            "[1/2 ❌](#failure-area-wrong-yaml-reference-cpu-float64) |") in text
    assert '<a id="failure-area-wrong-yaml-reference-cpu-float64"></a>' in text
    assert "| other | not applicable | 1/1 |" in text  # not "n/a", which also meant "skipped"
    # Local case files: whether they catch ACC-1's fault is not known without running them, which reports never do
    assert ("| ACC-1 | MUST | unknown (3 case(s) not in spec/fault\\_coverage.json) | "
            "[1/2 ❌](#failure-area-wrong-yaml-nohooks-cpu-float64) | ") in text
    assert "### area/wrong.yaml on reference-cpu-float64" in text
    assert "### cases/other/broken.yaml could not be loaded" in text


def test_listed_known_failures_do_not_fail_the_run_but_unlisted_ones_do(corpus):
    (corpus.path / "known.txt").write_text(
        "# known failures\n"
        "area/wrong.yaml   the engine under test gets 6, as the case's author miscounted\n"
        "area/good.yaml::nohooks-cpu-float64   listed, yet it passes\n"
        "area/gone.yaml    a case that no longer exists\n")
    result = run(corpus, "--expectations", "known.txt")
    report = json.loads((corpus.path / "out" / "report.json").read_text())
    assert outcomes(report)[("area/wrong.yaml", "reference")] == "expected_failure"
    assert outcomes(report)[("area/good.yaml", "nohooks")] == "unexpected_pass"
    result.stdout.fnmatch_lines(["*known.txt:4: expectation 'area/gone.yaml' matches no case collected in this run*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # only the broken case file is left to fail
    (corpus.path / "cases" / "other" / "broken.yaml").unlink()
    assert run(corpus, "--expectations", "known.txt").ret == pytest.ExitCode.OK


def test_an_expectation_without_a_reason_is_a_usage_error_naming_file_and_line(corpus):
    (corpus.path / "known.txt").write_text("area/wrong.yaml\n")
    result = run(corpus, "--expectations", "known.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*known.txt:1: expected `<case id> <reason>`*"])


def test_parallel_run_writes_the_same_report(corpus):
    pytest.importorskip("xdist")
    options = ("--engine", "reference", "--dtype", "float64", "--gradspec-report", "out/report.json")
    corpus.runpytest("cases", *options)
    serial = json.loads((corpus.path / "out" / "report.json").read_text())
    corpus.runpytest("cases", *options, "-n", "2")
    parallel = json.loads((corpus.path / "out" / "report.json").read_text())
    assert len(serial["results"]) == 3

    def timeless(results):  # durations differ from run to run
        return [{k: v for k, v in r.items() if k != "duration"} for r in results]
    assert timeless(parallel["results"]) == timeless(serial["results"])
    assert parallel["broken_case_files"] == serial["broken_case_files"] and parallel["summary"] == serial["summary"]
    assert all(r["duration"] >= 0 and r["nodeid"].startswith("cases/") for r in serial["results"])


def test_cli_renders_a_report_and_refuses_anything_else(corpus, tmp_path, capsys):
    run(corpus)
    assert cli(["report", str(corpus.path / "out" / "report.json"), "--markdown", str(tmp_path / "s.md")]) == 0
    assert (tmp_path / "s.md").read_text() == (corpus.path / "out" / "summary.md").read_text()
    (tmp_path / "bad.json").write_text('{"results": []}')
    assert cli(["report", str(tmp_path / "bad.json")]) == 2
    assert "not a gradspec report" in capsys.readouterr().err


def test_diff_names_new_failures_fixes_and_other_changes(corpus, capsys):
    run(corpus)
    (corpus.path / "out" / "report.json").rename(corpus.path / "before.json")
    (corpus.path / "cases" / "area" / "wrong.yaml").write_text(VALID_CASE)  # fixed
    (corpus.path / "cases" / "area" / "good.yaml").write_text(WRONG)  # broken
    (corpus.path / "cases" / "other" / "broken.yaml").unlink()
    run(corpus)
    code = cli(["diff", str(corpus.path / "before.json"), str(corpus.path / "out" / "report.json")])
    text = capsys.readouterr().out
    assert code == 1
    assert "New failures: 2\n  area/good.yaml::nohooks-cpu-float64: passed -> failed\n" in text
    assert "Fixed: 2\n  area/wrong.yaml::nohooks-cpu-float64: failed -> passed\n" in text
    assert cli(["diff", str(corpus.path / "out" / "report.json"), str(corpus.path / "out" / "report.json")]) == 0


def _saved(path, report: dict) -> str:
    path.write_text(json.dumps(report))
    return str(path)


def test_diff_fails_on_a_failing_new_case_and_on_results_no_longer_judged(corpus, tmp_path, capsys):
    run(corpus)
    before = json.loads((corpus.path / "out" / "report.json").read_text())
    passing = [r for r in before["results"] if r["outcome"] == "passed"]
    base = {**before, "results": passing}
    new_case = {**passing[0], "case": "area/brand-new.yaml", "outcome": "failed", "message": "step 1: wrong"}
    assert cli(["diff", _saved(tmp_path / "a.json", base),
                _saved(tmp_path / "b.json", {**base, "results": [*passing, new_case]})]) == 1
    engine = passing[0]["engine"]
    assert f"New failures: 1\n  area/brand-new.yaml::{engine}-cpu-float64: (new) -> failed" in capsys.readouterr().out
    all_skipped = {**base, "results": [{**r, "outcome": "skipped", "message": "no engine"} for r in passing]}
    assert cli(["diff", _saved(tmp_path / "a.json", base), _saved(tmp_path / "c.json", all_skipped)]) == 1
    assert f"No longer judged (skipped or not applicable now): {len(passing)}" in capsys.readouterr().out


def test_strict_expectations_fail_on_unexpected_passes_and_on_stale_ids(corpus):
    (corpus.path / "cases" / "other" / "broken.yaml").unlink()
    (corpus.path / "known.txt").write_text("area/wrong.yaml   miscounted\narea/good.yaml::nohooks   passes\n")
    result = run(corpus, "--expectations", "known.txt", "--strict-expectations")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*[[]XPASS(strict)[]]*passes*"])
    (corpus.path / "known.txt").write_text("area/wrong.yaml   miscounted\narea/gone.yaml   no longer exists\n"
                                           "area/good.yaml::jax   another engine's line, not this run's\n")
    result = run(corpus, "--expectations", "known.txt", "--strict-expectations")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*known.txt:2: 'area/gone.yaml' matches no case collected in this run"])
    assert "jax" not in result.stderr.str()


def test_an_unmatched_expectation_as_a_warning_filter_error_is_no_internal_error(corpus):
    (corpus.path / "known.txt").write_text("area/gone.yaml   no longer exists\n")
    result = run(corpus, "--expectations", "known.txt", "-W", "error")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_an_unwritable_report_path_is_a_usage_error_before_anything_runs(corpus, tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    result = corpus.runpytest("cases", "--engine", "reference", "--gradspec-report", str(tmp_path / "file" / "r.json"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot write the report*file/r.json*"])
    assert "passed" not in result.stdout.str()


def test_junit_is_lean_with_plain_properties_and_a_sane_classname(corpus):
    import xml.etree.ElementTree as ElementTree
    (corpus.path / "cases" / "other" / "broken.yaml").unlink()
    run(corpus, "--junitxml", "out/junit.xml")
    cases = list(ElementTree.parse(corpus.path / "out" / "junit.xml").getroot().iter("testcase"))
    assert {c.get("classname") for c in cases} == {"cases.area.good", "cases.area.wrong", "cases.other.hooked"}
    for case in cases:
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert json.loads(properties["gradspec_rules"]) == ["ACC-1"]  # JSON, not a Python repr
        assert ("gradspec_graph" in properties) == (case.find("failure") is not None)  # the graph only on failures


def test_markdown_shows_hostile_text_as_written_and_never_as_markup():
    from gradspec.reports import markdown
    hostile = "<script>alert(1)</script> <img src=x onerror=alert(2)>\n# Injected heading | cell"
    report = {
        "report_version": 1, "gradspec_version": "0.1.0", "case_schema_version": 1, "created": "now",
        "platform": {"system": "Linux", "machine": "x86_64", "python": "3.11"},
        "engines": {"evil|engine": {"version": "<b>1</b>", "capabilities": []}},
        "results": [{"case": "area/x.yaml", "title": hostile, "area": "area", "engine": "evil|engine", "device": "cpu",
                     "dtype": "float64", "outcome": "failed", "rules": ["ACC-1"], "capabilities": [],
                     "message": "step 1: got\n```\n# Escaped the fence\n````"}],
        "broken_case_files": [],
    }
    text = markdown.render(report)
    assert "<script>" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "\n# Injected" not in text  # the newline that would start a heading is gone
    assert "evil\\|engine" in text  # a pipe cannot open a table cell
    assert "`````text\nstep 1: got\n```\n# Escaped the fence\n````\n`````" in text  # the fence outlasts the message
