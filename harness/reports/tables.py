"""The summary tables of a report, as data: both the Markdown and the HTML renderer format these."""

from __future__ import annotations

import os
import shlex
from collections import Counter, defaultdict

from gradspec import contracts

OUTCOMES = ("passed", "failed", "error", "expected_failure", "unexpected_pass", "not_applicable", "skipped")
JUDGED = OUTCOMES[:5]  # a verdict about the engine; not_applicable and skipped say nothing about it
DIFFERS = ("failed", "error", "expected_failure")  # a disagreement with the rule book, known or not


def run_name(result: dict) -> str:
    return f"{result['engine']}-{result['device']}-{result['dtype']}"


def runs(report: dict) -> list[str]:
    return sorted({run_name(r) for r in report["results"]})


def outcomes_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """Per run, how many results had each outcome."""
    names = runs(report)
    counts = {run: Counter(r["outcome"] for r in report["results"] if run_name(r) == run) for run in names}
    header = ["run", *(o.replace("_", " ") for o in OUTCOMES)]
    return header, [[run, *(str(counts[run][o]) for o in OUTCOMES)] for run in names]


def coverage_table(report: dict, kind: str) -> tuple[list[str], list[list[str]]]:
    """passed/judged per area or rule and per run; judged leaves out not-applicable and skipped results."""
    names = runs(report)
    cells: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for result in report["results"]:
        keys = result["rules"] if kind == "rule" else [result["area"] or "."]
        for key in keys:
            cells[key][run_name(result)][result["outcome"]] += 1
    rules = contracts.rules()
    coverage = report.get("rule_coverage") or {}
    header = [kind, *(["level", "violation caught"] if kind == "rule" else []), *names]
    rows = []
    for key in sorted(cells, key=natural):
        about = [rules[key].level if key in rules else "", _caught(coverage.get(key))] if kind == "rule" else []
        rows.append([key, *about, *(_cell(cells[key][run]) for run in names)])
    return header, rows


def _caught(entry: dict | None) -> str:
    """Whether a planted violation of the rule fails one of its cases (gradspec.faults), and by how many."""
    if entry is None or entry["caught_by"] is None:
        return ""
    unverified = entry.get("unverified") or []
    if entry["caught_by"]:
        return f"yes ({len(entry['caught_by'])} of {len(entry['cited_by'])} cases)"
    if unverified:  # local or changed case files: `gradspec faults` on them says
        return f"unknown ({len(unverified)} case(s) not in spec/fault_coverage.json)"
    return "NO"


def failures(report: dict) -> list[dict]:
    """Deviations found by the judge, and crashes before a verdict."""
    return [r for r in report["results"] if r["outcome"] in ("failed", "error")]


def verdict(report: dict) -> str:
    """One line a CI reader sees first: did the run pass, and on how much did it judge."""
    counts = Counter(r["outcome"] for r in report["results"])
    judged = sum(counts[o] for o in JUDGED)
    broken = len(report["broken_case_files"])
    if report.get("complete") is False:
        why = report.get("incomplete_reason") or (f"the run was interrupted or lost results ({report.get('reported_items')} "
                                                  f"of {report.get('expected_items')} collected items reported)")
        return f"INCOMPLETE: {why}; what is below is not the whole run"
    strict = counts["unexpected_pass"] if report.get("strict_expectations") else 0  # they failed the run
    if counts["failed"] or counts["error"] or broken or strict:
        parts = [f"{counts[o]} {o}" for o in ("failed", "error") if counts[o]]
        parts += [f"{strict} unexpected pass(es) under --strict-expectations"] if strict else []
        parts += [f"{broken} case file(s) not loaded"] if broken else []
        return f"FAILED: {', '.join(parts)}, in {judged} judged results"
    if not judged:
        return "NOTHING JUDGED: every result was skipped or not applicable, so this run says nothing"
    notes = [f"{counts['expected_failure']} known differences"] if counts["expected_failure"] else []
    notes += [f"{counts['unexpected_pass']} unexpected pass(es)"] if counts["unexpected_pass"] else []
    known = f" ({', '.join(notes)})" if notes else ""
    return f"PASSED: {judged} judged results behave as the rule book says{known}"


def anchor(result: dict) -> str:
    """A stable id for a failure's section, for links from the tables."""
    text = f"failure-{result['case']}-{run_name(result)}"
    return "".join(c if c.isalnum() or c == "-" else "-" for c in text).lower()


def failure_links(report: dict, kind: str) -> dict[tuple[str, str], str]:
    """Per (area or rule, run), the anchor of the first failure counted in that cell of coverage_table."""
    links: dict[tuple[str, str], str] = {}
    for result in failures(report):
        for key in (result["rules"] if kind == "rule" else [result["area"] or "."]):
            links.setdefault((key, run_name(result)), anchor(result))
    return links


def _cell(counts: Counter) -> str:
    judged = sum(counts[o] for o in JUDGED)
    if not judged:  # two different things: the engine lacks what the cases need, or the run could not start
        return ("not applicable" if counts["not_applicable"] else "skipped") if counts else ""
    mark = "" if counts["failed"] + counts["error"] == 0 else " ❌"
    return f"{counts['passed'] + counts['unexpected_pass']}/{judged}{mark}"


def natural(key: str):
    """LIFE-2 before LIFE-10."""
    head, _, tail = key.partition("-")
    return (head, int(tail) if tail.isdigit() else 0, key)


def engine_matrix(report: dict) -> tuple[list[str], list[list[str]]]:
    """Engines by rule area: passed / differs / not applicable, counted over every device and dtype run."""
    engines = sorted({r["engine"] for r in report["results"]})
    cells: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for result in report["results"]:
        outcome = result["outcome"]
        column = "passed" if outcome in ("passed", "unexpected_pass") else "differs" if outcome in DIFFERS else outcome
        cells[result["area"] or "."][result["engine"]][column] += 1
        cells["all areas"][result["engine"]][column] += 1
    rows = [[area, *(_matrix_cell(cells[area][engine]) for engine in engines)]
            for area in sorted(cells, key=lambda a: (a == "all areas", a))]
    return ["area (passed / differs / not applicable)", *engines], rows


def op_matrix(report: dict) -> tuple[list[str], list[list[str]]]:
    """Engines by vocabulary op, over the cases that call it: passed / differs / not applicable, or `lacks` where
    the engine declares the op absent (its cases calling it are not applicable for that reason)."""
    engines = sorted({r["engine"] for r in report["results"]})
    cells: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for result in report["results"]:
        outcome = result["outcome"]
        column = "passed" if outcome in ("passed", "unexpected_pass") else "differs" if outcome in DIFFERS else outcome
        for op in result.get("ops", ()):
            cells[op][result["engine"]][column] += 1
            if outcome == "not_applicable" and f"op:{op}" in result["message"]:
                cells[op][result["engine"]]["lacks"] += 1
    order = list(contracts.ops())
    rows = [[op, *(_op_cell(cells[op][engine]) for engine in engines)]
            for op in sorted(cells, key=lambda op: (order.index(op) if op in order else len(order), op))]
    return ["op (passed / differs / not applicable)", *engines], rows


def _op_cell(counts: Counter) -> str:
    if counts["lacks"] and counts["lacks"] == counts["not_applicable"] and not counts["passed"] + counts["differs"]:
        return "lacks"
    return _matrix_cell(Counter({key: n for key, n in counts.items() if key != "lacks"}))


def disagreements(report: dict) -> list[dict]:
    """Per engine and case, every result that differs from the rule book: the runs, whether known, and why."""
    grouped: dict[tuple[str, str], dict] = {}
    for result in report["results"]:
        if result["outcome"] not in DIFFERS:
            continue
        entry = grouped.setdefault((result["engine"], result["case"]), {
            "engine": result["engine"], "case": result["case"], "title": result["title"], "runs": [],
            "known": result["outcome"] == "expected_failure", "why": result["message"].strip().splitlines()[0:1]})
        entry["runs"].append(f"{result['device']}-{result['dtype']}")
        entry["known"] = entry["known"] and result["outcome"] == "expected_failure"
    return [grouped[key] for key in sorted(grouped)]


def _matrix_cell(counts: Counter) -> str:
    if not counts:
        return ""
    return f"{counts['passed']} / {counts['differs']} / {counts['not_applicable']}" + (
        f" ({counts['skipped']} skipped)" if counts["skipped"] else "")


def reproduce(result: dict, report: dict) -> str:
    """The command that reruns exactly this result: its pytest node id, selected on its engine, device and dtype
    (run where the run ran). The engine is named as --engine was given (`spec`), a label where that is unknown."""
    spec = (report.get("engines", {}).get(result["engine"]) or {}).get("spec") or result["engine"]
    nodeid = result.get("nodeid") or f"cases/{result['case']}::{run_name(result)}"
    rerun = report.get("rerun") or {}
    # an unexpected pass reruns as one only with the expectations that made it one
    known = [arg for path in rerun.get("expectations", ()) for arg in ("--expectations", path)]
    known += ["--strict-expectations"] if known and report.get("strict_expectations") else []
    if str((report.get("corpus") or {}).get("source", "")).startswith("gradspec"):  # the shipped corpus
        return shlex.join(["gradspec", "run", f"cases/{result['case']}::{run_name(result)}", "--engine", spec,
                           "--device", result["device"], "--dtype", result["dtype"], *known])
    if rerun.get("dir") and rerun.get("rootdir") and "::" in nodeid:  # node ids are relative to pytest's rootdir
        path, _, rest = nodeid.partition("::")
        nodeid = f"{os.path.relpath(os.path.join(rerun['rootdir'], path), rerun['dir'])}::{rest}"
    return shlex.join(["pytest", nodeid, "--engine", spec, "--device", result["device"], "--dtype", result["dtype"],
                       *known])


def run_verdict(counts: Counter, strict: bool) -> str:
    """One run's word: FAIL (a failure, an error, or an unexpected pass under --strict-expectations), NOTHING
    JUDGED (every result skipped or not applicable), else PASS; as verdict() decides for the whole report."""
    if counts["failed"] or counts["error"] or (strict and counts["unexpected_pass"]):
        return "FAIL"
    return "PASS" if any(counts[o] for o in JUDGED) else "NOTHING JUDGED"


def rule_area(rule: str) -> str:
    """LIFE-2's area is LIFE: the rule book's section (contracts.rule_areas)."""
    return rule.rsplit("-", 1)[0]


def heat_map(report: dict, kind: str) -> tuple[list[str], list[str], dict[str, dict[str, Counter]]]:
    """Rows (rule areas in the book's order, or ops in ops.yaml's), runs, and per row and run the outcomes counted.

    A result counts once in each rule area its rules name; under `op`, once per op it calls, and `lacks` counts the
    not-applicable results whose reason is that the engine declares the op absent.
    """
    cells: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for result in report["results"]:
        run = run_name(result)
        if kind == "op":
            for op in result.get("ops", ()):
                cells[op][run][result["outcome"]] += 1
                if result["outcome"] == "not_applicable" and f"op:{op}" in result["message"]:
                    cells[op][run]["lacks"] += 1
        else:
            for area in dict.fromkeys(rule_area(rule) for rule in result["rules"]):
                cells[area][run][result["outcome"]] += 1
    order = list(contracts.ops() if kind == "op" else contracts.rule_areas())
    rows = sorted(cells, key=lambda key: (order.index(key) if key in order else len(order), key))
    return rows, runs(report), cells
