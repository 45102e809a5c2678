"""The versions matrix: one engine's conformance across its releases, each difference explained or not.

Input is one JSON report per release (`pytest cases --engine torch --gradspec-report ...` run in
an environment with that release installed), optionally with the JUnit XML of the fuzz
properties run there. Output: rules by release (passed/judged), then every case that differs
on some release, with the entry of spec/versions.yaml that explains it, or UNEXPLAINED: a
difference nobody has accounted for is either a regression of the engine or a wrong rule.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from pathlib import Path

from packaging.version import InvalidVersion, Version

from gradspec import contracts
from gradspec.reports.tables import DIFFERS, JUDGED, natural


def release(version: str) -> Version | None:
    """The release a version string names ('2.0.1+cu117' -> 2.0.1), or None if it names none."""
    try:
        return Version(Version(version).base_version)
    except InvalidVersion:
        return None


def entries_for(engine: str, version: str) -> list[dict]:
    """The spec/versions.yaml entries that cover this engine release."""
    at = release(version)
    if at is None:
        return []
    covering = []
    for entry in contracts.version_differences():
        if entry["engine"] != engine:
            continue
        if "from" in entry and at < Version(str(entry["from"])):
            continue
        if "before" in entry and at >= Version(str(entry["before"])):
            continue
        covering.append(entry)
    return covering


def explanation(engine: str, version: str, rules: list[str]) -> dict | None:
    """The spec/versions.yaml entry covering one of `rules` for this engine release, if any."""
    return next((entry for entry in entries_for(engine, version) if entry["rule"] in rules), None)


def recorded_ops(engine: str, version: str) -> frozenset[str]:
    """The ops whose difference in this release is already recorded (an entry's `ops`): the kink fuzz property
    leaves their kinks alone there, so that it finds what nobody recorded."""
    return frozenset(op for entry in entries_for(engine, version) for op in entry.get("ops", ()))


def fuzz_counts(junit_path: Path) -> Counter:
    """passed / failed / skipped test cases in a JUnit XML file written by pytest."""
    counts: Counter = Counter()
    for case in ElementTree.parse(junit_path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        counts[outcome] += 1
    return counts


def build(reports: list[dict], fuzz: dict[str, Counter] | None = None) -> dict:
    """The matrix as data: releases (oldest first), per rule and release a Counter, and the differences."""
    fuzz = fuzz or {}
    columns = []
    cells: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    differences = []
    for report in reports:
        for engine, info in sorted(report["engines"].items()):
            label = f"{engine} {info['version']}"
            columns.append((release(info["version"]) or Version("0"), label))
            for result in report["results"]:
                if result["engine"] != engine:
                    continue
                for rule in result["rules"]:
                    cells[rule][label][result["outcome"]] += 1
                if result["outcome"] in DIFFERS:
                    differences.append({
                        "release": label, "case": result["case"], "run": f"{result['device']}-{result['dtype']}",
                        "outcome": result["outcome"], "message": result["message"].strip().splitlines()[-1:],
                        "explained_by": explanation(engine, info["version"], result["rules"]),
                    })
    labels = [label for _, label in sorted(columns)]
    return {"releases": labels, "cells": cells, "differences": differences,
            "fuzz": {label: fuzz[label] for label in labels if label in fuzz}}


def render_markdown(matrix: dict) -> str:
    labels = matrix["releases"]
    lines = ["# gradspec versions matrix", "",
             "Rules by release: passed/judged over every case citing the rule (n/a: not applicable there).", "",
             "| rule | level | " + " | ".join(labels) + " |", "|" + " --- |" * (len(labels) + 2)]
    rules = contracts.rules()
    for rule in sorted(matrix["cells"], key=natural):
        row = [_cell(matrix["cells"][rule][label]) for label in labels]
        lines.append(f"| {rule} | {rules[rule].level if rule in rules else ''} | " + " | ".join(row) + " |")
    if matrix["fuzz"]:
        lines += ["", "Fuzz properties (passed / failed / skipped):", ""]
        lines += [f"- {label}: {c['passed']} / {c['failed']} / {c['skipped']}" for label, c in matrix["fuzz"].items()]
    lines += ["", "## Differences from the rule book", ""]
    if not matrix["differences"]:
        lines.append("None.")
    for item in sorted(matrix["differences"], key=lambda d: (d["case"], d["release"], d["run"])):
        entry = item["explained_by"]
        why = (f"explained: {entry['rule']} {entry['kind']} ({entry['what']})" if entry
               else "**UNEXPLAINED** (no entry in spec/versions.yaml)")
        lines.append(f"- {item['release']} `{item['case']}` {item['run']}: {item['outcome']}; {why}")
    return "\n".join(lines) + "\n"


def unexplained(matrix: dict) -> list[dict]:
    return [item for item in matrix["differences"] if item["explained_by"] is None]


def _cell(counts: Counter) -> str:
    judged = sum(counts[o] for o in JUDGED)
    if not judged:
        return "n/a" if counts else ""
    bad = counts["failed"] + counts["error"] + counts["expected_failure"]
    return f"{judged - bad}/{judged}" + (" ❌" if bad else "")

