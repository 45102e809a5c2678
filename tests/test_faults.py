"""Every MUST rule has teeth: a fault planted in the reference engine that breaks it fails one of its cases."""

from __future__ import annotations

import pytest
from gradspec import contracts, faults
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.language.loader import load_case
from gradspec.running.interpreter import NOT_APPLICABLE, PASSED, run_case

from .conftest import CASES


@pytest.fixture(scope="module")
def corpus():
    return [load_case(path) for path in sorted(CASES.rglob("*.yaml"))]


def test_every_must_rule_has_a_planted_fault():
    must = [rule for rule, entry in contracts.rules().items() if entry.level == "MUST"]
    assert [rule for rule in must if rule not in faults.FAULTS] == []
    assert set(faults.FAULTS) <= set(contracts.rules()), "faults for rules the rule book does not have"


@pytest.mark.parametrize("rule", sorted(faults.FAULTS))
def test_a_case_citing_the_rule_fails_under_its_fault(rule, corpus):
    assert faults.catching_cases(faults.FAULTS[rule], corpus), (
        f"no case citing {rule} fails when the reference engine {faults.FAULTS[rule].description}")


@pytest.mark.parametrize("fault", faults.REALISTIC, ids=lambda fault: f"{fault.rule}: {fault.description}")
def test_a_case_citing_the_rule_catches_each_realistic_fault(fault, corpus):
    assert faults.catching_cases(fault, corpus), (
        f"no case citing {fault.rule} fails when the reference engine {fault.description}")


def test_planting_and_removing_every_fault_leaves_the_engine_conforming(corpus):
    for fault in faults.all_faults():
        faults.catching_cases(fault, corpus)  # plants, runs the rule's cases, removes
    failing = [case.id for case in corpus  # a PyTorch-only convention (MODE-8, VIEW-9) is not applicable there
               if run_case(case, ReferenceAdapter("cpu", "float64")).status not in (PASSED, NOT_APPLICABLE)]
    assert failing == []


def test_float64_tolerance_catches_a_derivative_computed_in_float32(corpus):
    """The tolerance policy claims this (spec/tolerances.yaml): relative error ~1e-8 must fail in float64."""
    caught = faults.catching_cases(faults.FAULTS["DERIV-1"], corpus, dtype="float64")
    assert caught, "a sin derivative computed in float32 passed every float64 case"
    assert faults.catching_cases(faults.FAULTS["DERIV-1"], corpus, dtype="float32") == []


def test_gradspec_faults_exits_1_when_a_rule_is_not_caught(tmp_path, capsys):
    from gradspec.cli import main
    assert main(["faults", str(CASES)]) == 0
    only = tmp_path / "cases"
    only.mkdir()
    (only / "one.yaml").write_text((CASES / "accumulation" / "user-grad-added-into.yaml").read_text())
    assert main(["faults", str(only)]) == 1
    out = capsys.readouterr().out
    assert "ACC-3      caught by 1 of 1 case(s)" in out
    assert "LIFE-1     NOT CAUGHT by its 0 case(s)" in out


def test_reports_say_which_rules_a_planted_violation_would_fail(tmp_path):
    import json
    import subprocess
    import sys
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "pytest", str(CASES / "accumulation"), "--engine", "reference",
                          "--dtype", "float64", f"--gradspec-report={report}", "-p", "no:cacheprovider", "-q"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    coverage = json.loads(report.read_text())["rule_coverage"]
    assert coverage["ACC-3"]["caught_by"] == ["accumulation/user-grad-added-into.yaml"]
    assert coverage["LIFE-1"] == {"level": "MUST", "cited_by": [], "caught_by": [], "unverified": []}
    assert coverage["LIFE-5"]["caught_by"] is None


def test_the_shipped_fault_coverage_is_in_step_with_the_corpus(corpus):
    """Reports read spec/fault_coverage.json instead of running cases; regenerate it when a case changes:
    gradspec faults --write-coverage spec/fault_coverage.json"""
    assert faults.coverage_data(corpus) == contracts.fault_coverage(), (
        "spec/fault_coverage.json is stale: run gradspec faults --write-coverage spec/fault_coverage.json")


BLOCK_CASE_RUNS_AT_REPORT_TIME = """
import sys
import pytest


class NoFaults:
    def find_spec(self, name, path=None, target=None):
        if name == "gradspec.faults":
            raise ImportError("the report writer imported gradspec.faults: it runs cases again")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    import gradspec.running.interpreter as interpreter
    sys.modules.pop("gradspec.faults", None)
    sys.meta_path.insert(0, NoFaults())

    def refuse(*args, **kwargs):
        raise SystemExit("a case ran while the reports were written")
    interpreter.run_case = refuse
"""


def test_writing_the_reports_runs_no_case(pytester):
    """Report writing ran every case again under each planted fault, in pytest's process, unguarded: a case that
    hangs or crashes then lost all four reports. Now it reads the shipped coverage, and a local case is unverified."""
    pytester.makeconftest(BLOCK_CASE_RUNS_AT_REPORT_TIME)
    cases = pytester.path / "cases"
    (cases / "accumulation").mkdir(parents=True)
    shipped = "accumulation/user-grad-added-into.yaml"
    (cases / shipped).write_text((CASES / shipped).read_text())
    local = (CASES / shipped).read_text().replace("title: A .grad", "title: (a local copy) A .grad", 1)
    (cases / "accumulation" / "local-copy.yaml").write_text(local)
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "cases", "--engine", "reference", "--dtype", "float64", f"--gradspec-report={out / 'r.json'}",
        f"--gradspec-markdown={out / 'r.md'}", f"--gradspec-html={out / 'r.html'}", f"--junitxml={out / 'r.xml'}")
    assert result.ret == 0, result.stdout.str()[-3000:]
    import json
    report = json.loads((out / "r.json").read_text())
    assert report["rule_coverage"]["ACC-3"] == {"level": "MUST", "cited_by": ["accumulation/local-copy.yaml", shipped],
                                                "caught_by": [shipped],
                                                "unverified": ["accumulation/local-copy.yaml"]}
    assert all((out / name).stat().st_size > 0 for name in ("r.md", "r.html", "r.xml"))
