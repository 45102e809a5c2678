"""Expectation files from the ids pytest prints, and written from a run (issue 25, item 10)."""

from __future__ import annotations

import json
import re

import pytest
from gradspec.cli import main as cli
from gradspec.running import expectations

from .conftest import VALID_CASE

WRONG = VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}")
FLOAT32_ONLY_WRONG = WRONG.replace("derivation:", "dtypes: [float32]\nderivation:")


@pytest.mark.parametrize("printed, case_id", [
    ("cases/area/x.yaml::reference-cpu-float64", "area/x.yaml::reference-cpu-float64"),  # FAILED lines, -q
    ("cases/area/x::yaml::reference-cpu-float64", "area/x.yaml::reference-cpu-float64"),  # pytest -v
    ("cases/area/norm-2::5::yaml::torch-cpu-float32", "area/norm-2.5.yaml::torch-cpu-float32"),
    ("../../lib/site-packages/gradspec/cases/area/x.yaml::torch", "area/x.yaml::torch"),  # gradspec run elsewhere
    ("/home/me/cases/old/cases/area/x.yaml", "area/x.yaml"),  # the last `cases` folder, as loader.case_id
    ("area/x.yaml::torch-cpu-float64", "area/x.yaml::torch-cpu-float64"),  # a case id stays as it is
], ids=["summary", "verbose", "dotted", "elsewhere", "nested", "case-id"])
def test_ids_as_pytest_prints_them_are_case_ids(tmp_path, printed, case_id):
    (tmp_path / "known.txt").write_text(f"{printed}   a reason\n")
    (expectation,) = expectations.load(tmp_path / "known.txt")
    assert expectation.pattern == case_id


def _printed_ids(output: str) -> list[str]:
    """The ids of the FAILED lines of pytest's short summary, as a person copies them."""
    return re.findall(r"^FAILED (\S+)", output, re.M)


@pytest.mark.parametrize("verbose", [False, True])
def test_a_failure_listed_by_the_id_pytest_printed_is_an_expected_failure(pytester, cases, verbose):
    cases(**{"area/wrong": WRONG})
    options = ["--engine", "reference", "--dtype", "float64", "-rf", *(["-v"] if verbose else [])]
    first = pytester.runpytest("cases", *options)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    if verbose:  # the progress line: `cases/area/wrong::yaml::reference-cpu-float64 FAILED`
        ids = re.findall(r"^(\S+) FAILED", first.stdout.str(), re.M)
    else:
        ids = _printed_ids(first.stdout.str())
    assert ids, first.stdout.str()
    pytester.path.joinpath("known.txt").write_text("".join(f"{i}  the author miscounted\n" for i in ids))
    again = pytester.runpytest("cases", *options, "--expectations", "known.txt", "--strict-expectations")
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    again.assert_outcomes(xfailed=1)


def _run(pytester, *args):
    return pytester.runpytest("cases", "--engine", "reference", "--gradspec-report", "out/r.json", *args)


def test_gradspec_expectations_writes_the_file_a_strict_run_refuses_until_reasons_are_written(pytester, cases, capsys):
    cases(**{"area/good": VALID_CASE, "area/wrong": WRONG, "area/wrong32": FLOAT32_ONLY_WRONG})
    assert _run(pytester).ret == pytest.ExitCode.TESTS_FAILED
    written = pytester.path / "known.txt"
    assert cli(["expectations", str(pytester.path / "out" / "r.json"), "-o", str(written)]) == 0
    lines = [line for line in written.read_text().splitlines() if line and not line.startswith("#")]
    # wrong fails on both dtypes: one line for the engine; wrong32 ran in float32 only: one line for that run
    assert [line.split()[0] for line in lines] == ["area/wrong.yaml::reference", "area/wrong32.yaml::reference-cpu-float32"]
    assert all(line.endswith(expectations.PLACEHOLDER) for line in lines)
    assert "# failed: step 3 (expect, line 12): .grad of x: expected [7.], got [6.]" in written.read_text()

    lenient = _run(pytester, "--expectations", "known.txt")  # the file is in the format --expectations reads
    assert lenient.ret == pytest.ExitCode.OK
    lenient.assert_outcomes(passed=2, xfailed=3)
    strict = _run(pytester, "--expectations", "known.txt", "--strict-expectations")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    strict.stderr.fnmatch_lines([f"*known.txt:{_line_of(written, 'area/wrong.yaml')}: the reason is still the "
                                 f"placeholder '{expectations.PLACEHOLDER}'*"])

    written.write_text(written.read_text().replace(expectations.PLACEHOLDER, "checked by hand: the author miscounted"))
    assert _run(pytester, "--expectations", "known.txt", "--strict-expectations").ret == pytest.ExitCode.OK


def _line_of(path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


def test_gradspec_expectations_keeps_known_reasons_and_leaves_out_unexpected_passes(pytester, cases, capsys):
    cases(**{"area/good": VALID_CASE, "area/wrong": WRONG})
    pytester.path.joinpath("old.txt").write_text("area/wrong.yaml  miscounted (see the derivation)\n"
                                                 "area/good.yaml::reference-cpu-float32  was broken in float32\n")
    _run(pytester, "--expectations", "old.txt")
    report = pytester.path / "out" / "r.json"
    assert json.loads(report.read_text())["summary"]["unexpected_pass"] == 1
    capsys.readouterr()
    assert cli(["expectations", str(report)]) == 0
    out, err = capsys.readouterr()
    assert "area/wrong.yaml::reference  miscounted (see the derivation)\n" in out
    assert "area/good.yaml" not in out
    assert "area/good.yaml::reference-cpu-float32: passed unexpectedly, left out (was broken in float32" in err


def test_gradspec_expectations_refuses_a_file_that_is_not_a_report(tmp_path, capsys):
    (tmp_path / "r.json").write_text("{}")
    assert cli(["expectations", str(tmp_path / "r.json")]) == 2
    assert "not a gradspec report" in capsys.readouterr().err


def test_strict_expectations_accept_a_run_of_one_dtype_against_a_file_of_both(pytester):
    """A line naming a float32 run was 'matches no case collected' in a float64-only run, so a shipped expectation
    file could not be used with --strict-expectations and --dtype."""
    from .conftest import VALID_CASE
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "wrong.yaml").write_text(VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [6.5]}"))
    (pytester.path / "known.txt").write_text("wrong.yaml::reference-cpu-float32 expects 6.5 where 6 is right\n"
                                             "wrong.yaml::reference-cpu-float64 expects 6.5 where 6 is right\n")
    result = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--expectations", "known.txt",
                                "--strict-expectations")
    assert result.ret == 0, result.stdout.str()[-2000:] + result.stderr.str()
    result.assert_outcomes(xfailed=1)
