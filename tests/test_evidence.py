"""The experiments behind the rules (spec/evidence) run on the installed torch and agree with the rule book, or show
exactly the bugs spec/versions.yaml records."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from gradspec import contracts

pytest.importorskip("torch")


def test_every_experiment_names_rules_of_the_rule_book_and_a_claim():
    from gradspec.spec.evidence.__main__ import load_all
    experiments = load_all()
    assert len(experiments) >= 40
    rules = contracts.rules()
    for item in experiments:
        assert item.rules and set(item.rules) <= set(rules), item.name
        assert item.claim, item.name


def test_the_experiments_agree_with_the_rule_book_on_the_installed_torch(tmp_path):
    out = tmp_path / "evidence.json"
    run = subprocess.run([sys.executable, "-m", "gradspec.spec.evidence", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    verdicts = {item["name"]: item["verdict"] for item in json.loads(out.read_text())["experiments"]}
    assert set(verdicts.values()) <= {"agrees", "RECORDED"}, verdicts


def test_a_contradiction_nobody_recorded_fails_the_run(tmp_path, monkeypatch):
    from gradspec.spec import evidence
    from gradspec.spec.evidence import __main__ as runner

    monkeypatch.setattr(evidence, "EXPERIMENTS", [])
    monkeypatch.setattr(runner, "load_all", lambda: evidence.EXPERIMENTS)
    evidence.experiment("ACC-1", claim="a planted contradiction")(lambda: [("one", 1, 2)])
    assert runner.main([]) == 1
