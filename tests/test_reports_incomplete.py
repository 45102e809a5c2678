"""A run that stops before its end leaves reports that say so: never an earlier run's reports, nor a process behind.

Issue 24, item 5: a usage error left the reports of the previous run in place, to be read as this run's; SIGINT,
SIGTERM and SIGKILL at any moment must leave either complete reports or reports marked incomplete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from gradspec.cli import main as cli
from gradspec.reports.report import UNFINISHED

from .conftest import VALID_CASE

REPORTS = ("r.json", "r.md", "r.html", "r.xml")
OPTIONS = ["--gradspec-report", "r.json", "--gradspec-markdown", "r.md", "--gradspec-html", "r.html", "--junitxml", "r.xml"]


def earlier_reports(folder) -> None:
    """Reports of an earlier, complete and passing run: what must not survive a later run that failed."""
    for name in REPORTS:
        (folder / name).write_text("EARLIER RUN: PASSED\n")


def assert_marked_incomplete(folder, why: str) -> dict:
    """Every report says INCOMPLETE with `why` in it, and nothing of the earlier run is left."""
    report = json.loads((folder / "r.json").read_text())
    assert report["complete"] is False and why in report["incomplete_reason"], report.get("incomplete_reason")
    for name in ("r.md", "r.html"):
        text = (folder / name).read_text()
        assert "INCOMPLETE" in text and why in text and "EARLIER RUN" not in text, name
    junit = (folder / "r.xml").read_text()  # pytest's own where it wrote one, else an error saying why
    assert "EARLIER RUN" not in junit and ("<testsuite" in junit and (why != UNFINISHED or "run not finished" in junit))
    return report


@pytest.mark.parametrize("usage_error", [
    ["--engine", "no_such_module_here:Engine"],  # the engine: found unusable in pytest_configure
    ["--expectations", "no-such-expectations.txt", "--engine", "reference"],  # an input: found while starting
    ["--engine", "reference", "--strict-expectations", "--expectations", "known.txt"],  # found after collection
])
def test_a_usage_error_leaves_reports_marked_incomplete_not_the_earlier_ones(pytester, cases, usage_error):
    cases(a=VALID_CASE)
    (pytester.path / "known.txt").write_text("cases/no-such-case.yaml an id that matches nothing\n")
    earlier_reports(pytester.path)
    result = pytester.runpytest("cases", *usage_error, *OPTIONS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    why = "a usage error stopped the run" if "--strict-expectations" in usage_error else UNFINISHED
    assert_marked_incomplete(pytester.path, why)
    assert cli(["diff", str(pytester.path / "r.json"), str(pytester.path / "r.json")]) == 1  # never a clean diff


SLOW_ENGINE = '''
import os
import time
from gradspec.adapters.reference_adapter import ReferenceAdapter


class Slow(ReferenceAdapter):
    name = "slow"

    def backward(self, *args):
        with open("worker.pid", "w") as out:  # the engine's process, for the test to find it
            out.write(str(os.getpid()))
        time.sleep(120)
'''


def gone(pid: int, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(("stop", "why"), [(signal.SIGTERM, "interrupted"), (signal.SIGINT, "interrupted"),
                                           (signal.SIGKILL, UNFINISHED)], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_signal_mid_run_leaves_reports_marked_incomplete_and_no_process(pytester, cases, stop, why):
    cases(a=VALID_CASE, b=VALID_CASE)
    pytester.makepyfile(slow_engine=SLOW_ENGINE)
    earlier_reports(pytester.path)
    process = subprocess.Popen([sys.executable, "-m", "pytest", "cases", "--engine", "slow_engine:Slow", "--dtype",
                                "float64", *OPTIONS, "-p", "no:cacheprovider"], cwd=pytester.path,
                               env={**os.environ, "PYTHONPATH": str(pytester.path)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_file = pytester.path / "worker.pid"
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), "no case started"
    worker = int(pid_file.read_text())
    process.send_signal(stop)
    assert process.wait(timeout=60) != 0
    report = assert_marked_incomplete(pytester.path, why)
    assert report["results"] == [] or all(r["outcome"] != "passed" for r in report["results"])
    assert gone(worker), f"the engine's process {worker} outlived pytest stopped by {stop.name}"


def test_a_marker_report_is_a_valid_report_whose_verdict_is_incomplete(tmp_path, capsys):
    from gradspec.reports import markdown
    from gradspec.reports.report import ReportBuilder
    path = tmp_path / "marker.json"
    path.write_text(json.dumps(ReportBuilder.unfinished()))
    assert cli(["report", str(path)]) == 0  # valid against spec/report.schema.json
    shown = capsys.readouterr().out
    assert f"**INCOMPLETE: {markdown.text(UNFINISHED)}" in shown
