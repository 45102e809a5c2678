"""spec/versions.yaml and the versions matrix: every difference of a release is explained or flagged."""

from __future__ import annotations

import json

import jsonschema
import pytest
from gradspec import contracts
from gradspec.cli import main
from gradspec.reports import versions


def test_every_entry_names_a_rule_a_kind_and_what_differs():
    rules = contracts.rules()
    for entry in contracts.version_differences():
        assert entry["rule"] in rules, entry
        assert entry["kind"] in ("absent", "changed", "bug"), entry
        assert entry["what"] and entry["seen"], entry
        assert "from" in entry or "before" in entry, f"{entry['rule']}: a difference in every release is no version note"
        if entry["kind"] == "bug" and entry.get("against") != "documentation":
            assert rules[entry["rule"]].level == "MUST", f"{entry['rule']}: only a MUST rule can be contradicted"
        if entry.get("against") == "documentation":
            assert entry["kind"] == "bug" and "issue" in entry["seen"], f"{entry['rule']}: name the upstream fix"
        for op in entry.get("ops", ()):
            assert op in contracts.ops(), f"{entry['rule']}: {op!r} is not an op of the vocabulary"


def test_the_kink_fuzz_property_is_not_held_to_a_recorded_bug_only_inside_its_releases():
    assert "clamp" in versions.recorded_ops("torch", "2.13.0+cpu")
    assert "clamp" not in versions.recorded_ops("torch", "2.14.1+cu130")
    assert "atan2" in versions.recorded_ops("torch", "2.9.1") and "atan2" not in versions.recorded_ops("torch", "2.10.0")
    assert versions.recorded_ops("reference", "0.1.0") == frozenset()


@pytest.mark.parametrize(("version", "rules", "explained_by"), [
    ("1.13.1+cu117", ["HOOK-10"], "HOOK-10"),
    ("1.13.1", ["GRAD-1", "HOOK-11"], "HOOK-11"),
    ("2.0.1", ["HOOK-10"], None),  # the change came in 2.0
    ("2.5.0", ["HIGHER-3", "GRAD-4"], "HIGHER-3"),
    ("2.10.0", ["HIGHER-3"], None),  # fixed there
    ("2.13.0+cpu", ["HOOK-12"], None),
    ("not a version", ["HOOK-10"], None),
])
def test_a_difference_is_explained_only_inside_its_releases(version, rules, explained_by):
    entry = versions.explanation("torch", version, rules)
    assert (entry["rule"] if entry else None) == explained_by


def report(version: str, outcome: str, case: str = "hooks/retained-grad-after-hooks.yaml", rules=("HOOK-10",)) -> dict:
    data = {
        "report_version": 1, "gradspec_version": "0.1.0", "case_schema_version": 1, "created": "2026-11-26T00:00:00+00:00",
        "platform": {"system": "Linux", "machine": "x86_64", "python": "3.11"},
        "engines": {"torch": {"version": version, "capabilities": []}},
        "results": [{"case": case, "title": "t", "area": case.split("/")[0], "engine": "torch", "device": "cpu",
                     "dtype": "float64", "outcome": outcome, "rules": list(rules), "capabilities": [],
                     "message": "" if outcome == "passed" else "step 3: expected [3.], got [1.]"}],
        "broken_case_files": [],
    }
    jsonschema.validate(data, contracts.report_schema())
    return data


def test_the_matrix_orders_releases_and_explains_known_differences(tmp_path, capsys):
    paths = []
    for version, outcome in (("2.13.0", "passed"), ("1.13.1", "failed")):
        path = tmp_path / f"torch-{version}.json"
        path.write_text(json.dumps(report(version, outcome)))
        paths.append(str(path))
    assert main(["versions", *paths]) == 0
    out = capsys.readouterr().out
    assert "| rule | level | torch 1.13.1 | torch 2.13.0 |" in out  # oldest first, whatever the argument order
    assert "| HOOK-10 | MUST | 0/1 ❌ | 1/1 |" in out
    assert "explained: HOOK-10 changed" in out


def test_an_unexplained_difference_fails_the_matrix(tmp_path, capsys):
    path = tmp_path / "torch-2.13.0.json"
    path.write_text(json.dumps(report("2.13.0", "failed")))
    assert main(["versions", str(path)]) == 1
    captured = capsys.readouterr()
    assert "**UNEXPLAINED**" in captured.out and "1 difference(s)" in captured.err
