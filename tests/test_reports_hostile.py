"""Reports, their commands and the terminal against hostile data: control characters, malformed reports, odd paths.

Issue 24, item 7: ESC and NUL from case text and engine messages reached Markdown, HTML and the terminal raw (an
engine's message could drive the terminal of whoever reads the run); `gradspec report`, `diff` and `export` ended in
tracebacks on a folder as output and on a graph edge to a node the graph lacks.
"""

from __future__ import annotations

import json
import re

import pytest
from gradspec.cli import main as cli
from gradspec.printable import shown
from gradspec.reports import html, markdown
from gradspec.reports.report import ReportBuilder

from .conftest import VALID_CASE

CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # every C0 and C1 control but tab and newline
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x00nul\rback\x9bcsi\x7fdel"


def a_report(**result) -> dict:
    """A valid report with one failed result; `result` overrides its fields."""
    report = ReportBuilder().as_json()
    report["engines"] = {"reference": {"version": "1", "capabilities": []}}
    report["results"] = [{"case": "area/x.yaml", "title": "a title", "area": "area", "engine": "reference",
                          "device": "cpu", "dtype": "float64", "outcome": "failed", "rules": ["ACC-1"],
                          "capabilities": [], "message": "step 1: wrong", "nodeid": "cases/area/x.yaml::run",
                          **result}]
    return report


def test_shown_writes_controls_as_escapes_and_keeps_lines_and_tabs():
    assert shown("a\x1b[31mb\x00c\td\ne\r\nf\rg\x9b\x7f") == "a\\x1b[31mb\\x00c\td\ne\nf\\x0dg\\x9b\\x7f"


@pytest.mark.parametrize("render", [markdown.render, html.render], ids=["markdown", "html"])
def test_controls_from_cases_and_engines_never_reach_a_rendered_report_raw(render):
    report = a_report(case=f"area/{HOSTILE}.yaml", title=HOSTILE, message=f"engine said: {HOSTILE}",
                      engine=f"eng{HOSTILE}")
    report["engines"] = {f"eng{HOSTILE}": {"version": HOSTILE, "capabilities": []}}
    text = render(report)
    assert not CONTROLS.search(text), repr(CONTROLS.search(text))
    assert "\\x1b[2J" in text and "\\x00nul" in text  # shown, as escapes


def test_controls_in_an_engine_message_never_reach_the_terminal(pytester, cases):
    cases(a=VALID_CASE)
    pytester.makepyfile(hostile_engine=f'''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class Hostile(ReferenceAdapter):
            name = "hostile"

            def backward(self, *args):
                raise RuntimeError({HOSTILE!r})
    ''')
    pytester.syspathinsert()
    result = pytester.runpytest("cases", "--engine", "hostile_engine:Hostile", "--dtype", "float64", "-rA",
                                "--gradspec-isolation", "none", "--gradspec-report", "r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "RuntimeError: \\x1b]0;pwned\\x07" in output  # the failure shows the message, escaped
    assert not CONTROLS.search(output), repr(CONTROLS.search(output))


def test_diff_shows_controls_in_ids_as_escapes(tmp_path, capsys):
    before, after = a_report(outcome="passed", message=""), a_report(case=f"area/{HOSTILE}.yaml")
    for name, report in (("before.json", before), ("after.json", after)):
        (tmp_path / name).write_text(json.dumps(report))
    assert cli(["diff", str(tmp_path / "before.json"), str(tmp_path / "after.json")]) == 1
    out = capsys.readouterr().out
    assert "\\x1b[2J" in out and not CONTROLS.search(out)


def graph_report(edges: list) -> dict:
    return a_report(graph={"nodes": [{"id": "x", "label": "x", "kind": "leaf-grad", "detail": "shape [1]"},
                                     {"id": "y@3", "label": "y", "kind": "result", "detail": "y = sum(x)"}],
                           "edges": edges},
                    failed_at={"step": "step 2", "line": 4, "tensor": "y", "node": "y@3"})


@pytest.mark.parametrize(("edges", "problem"), [
    ([["x", "y@3"], ["gone", "y@3"]], "an edge 'gone' -> 'y@3' to a node it lacks ('gone')"),
    ([["y@3", "x"]], "an edge 'y@3' -> 'x' back to a node listed before it (a cycle)"),
    ([["y@3", "y@3"]], "an edge 'y@3' -> 'y@3' back to a node listed before it (a cycle)"),
], ids=["missing node", "backwards", "loop"])
def test_a_report_whose_graph_cannot_be_drawn_is_a_clear_error_not_a_traceback(tmp_path, capsys, edges, problem):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(graph_report(edges)))
    for command in (["report", str(path), "--html", str(tmp_path / "r.html")], ["report", str(path)],
                    ["diff", str(path), str(path)]):
        assert cli(command) == 2
        err = capsys.readouterr().err
        assert err == f"gradspec: {path}: not a gradspec report: results[0] (area/x.yaml on reference): its graph has {problem}\n"
    assert "<svg" in html.render(graph_report([["x", "y@3"]]))  # a sound graph is drawn
    assert "(the graph is not drawn: its graph has an edge" in html.render(graph_report(edges))  # never a traceback


@pytest.mark.parametrize("where", ["folder", "input", "device", "same"])
def test_report_outputs_that_cannot_be_written_are_clear_errors(tmp_path, capsys, where):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(a_report()))
    written = report.read_text()
    folder = tmp_path / "out"
    folder.mkdir()
    outputs = {"folder": ["--markdown", str(folder)], "input": ["--html", str(report)],
               "device": ["--markdown", "/dev/full"],
               "same": ["--markdown", str(tmp_path / "x"), "--html", str(tmp_path / "x")]}[where]
    assert cli(["report", str(report), *outputs]) == 2
    err = capsys.readouterr().err
    expected = {"folder": f"--markdown {folder}: the rendered report must be written to a regular file, not a folder",
                "input": f"--html {report}: is an input of this run ({report}); the rendered report would replace it",
                "device": "--markdown /dev/full: the rendered report must be written to a regular file, not a "
                          "character device",
                "same": f"--markdown {tmp_path / 'x'}: the same file as --html {tmp_path / 'x'}"}[where]
    assert err.startswith(f"gradspec: {expected}") and "Traceback" not in err
    assert report.read_text() == written and not (tmp_path / "x").exists()  # nothing written, the input untouched


@pytest.mark.parametrize("command", [["report", "{input}"], ["diff", "{input}", "{input}"],
                                     ["expectations", "{input}"]])
@pytest.mark.parametrize("given", ["/dev/zero", "deep", "folder"])
def test_report_inputs_that_are_no_report_are_clear_errors(tmp_path, capsys, command, given):
    paths = {"/dev/zero": "/dev/zero", "deep": str(tmp_path / "deep.json"), "folder": str(tmp_path)}
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    assert cli([part.format(input=paths[given]) for part in command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gradspec: {paths[given]}: not a gradspec report: ") and "Traceback" not in err


def test_expectations_output_to_a_folder_is_a_clear_error(tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(a_report()))
    assert cli(["expectations", str(report), "-o", str(tmp_path)]) == 2
    assert "the expectation file must be written to a regular file, not a folder" in capsys.readouterr().err

