"""Report paths and input files: plain files only, never an input of the run, never two reports in one file."""

from __future__ import annotations

import os
import shutil

import pytest
from gradspec import cli

from .conftest import CASES

CASE = CASES / "accumulation" / "user-grad-added-into.yaml"


@pytest.fixture
def run_in(pytester):
    (pytester.path / "cases").mkdir()
    shutil.copy(CASE, pytester.path / "cases" / "one.yaml")
    return pytester


def test_a_report_over_a_case_file_is_refused_and_the_case_kept(run_in):
    """--gradspec-markdown pointing at a case file overwrote the case."""
    case = run_in.path / "cases" / "one.yaml"
    before = case.read_text()
    result = run_in.runpytest("cases", "--engine", "reference", f"--gradspec-markdown={case}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradspec-markdown*is an input of this run*"])
    assert case.read_text() == before


def test_one_path_for_two_reports_is_refused(run_in):
    """Each report was written in turn to the same file, and only the last survived."""
    out = run_in.path / "r.out"
    result = run_in.runpytest("cases", "--engine", "reference", f"--gradspec-report={out}", f"--gradspec-html={out}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradspec-html*the same file as --gradspec-report*"])
    assert not out.exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_report_path_that_is_no_regular_file_is_refused_untouched(run_in, kind):
    """/dev/full was replaced by a regular file (as root), and a FIFO blocked the run forever."""
    if kind == "fifo":
        target = run_in.path / "pipe"
        os.mkfifo(target)
    elif kind == "device":
        target = "/dev/null"
    else:
        target = run_in.path
    result = run_in.runpytest("cases", "--engine", "reference", f"--gradspec-report={target}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a report must be written to a regular file, not a*"])
    if kind == "device":
        assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_a_usage_error_leaves_no_empty_report_behind(run_in):
    """Checking a report path created it, so a run refused later left 0-byte reports; it leaves a report that says
    the run did not finish (tests/test_reports_incomplete.py)."""
    import json
    report = run_in.path / "new" / "r.json"
    result = run_in.runpytest("cases", "--engine", "no-such-engine", f"--gradspec-report={report}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert json.loads(report.read_text())["complete"] is False


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_an_expectation_file_or_report_that_is_no_regular_file_is_refused(run_in, special):
    """--expectations /dev/zero was an INTERNALERROR, and a FIFO blocked forever; so did `gradspec report`."""
    path = str(run_in.path / "pipe") if special == "fifo" else special
    if special == "fifo":
        os.mkfifo(path)
    result = run_in.runpytest("cases", "--engine", "reference", f"--expectations={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*must be a regular file*"])
    assert cli.main(["report", path, "--markdown", str(run_in.path / "x.md")]) == 2


def test_a_report_path_that_is_a_symbolic_link_writes_through_it(run_in):
    """The link was replaced by a regular file, and the file it named kept a stale report."""
    target = run_in.path / "real.json"
    target.write_text("{}")
    link = run_in.path / "link.json"
    link.symlink_to(target)
    result = run_in.runpytest("cases", "--engine", "reference", f"--gradspec-report={link}")
    assert result.ret == 0
    assert link.is_symlink() and '"results"' in target.read_text()
