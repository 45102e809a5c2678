"""Render a JSON conformance report as Markdown, fit for a CI job summary: runs, areas, rules, failures."""

from __future__ import annotations

from collections import Counter, defaultdict

from . import contracts

OUTCOMES = ("passed", "failed", "expected_failure", "unexpected_pass", "not_applicable", "skipped")


def run_name(result: dict) -> str:
    return f"{result['engine']}-{result['device']}-{result['dtype']}"


def render(report: dict) -> str:
    results = report["results"]
    runs = sorted({run_name(r) for r in results})
    platform = report["platform"]
    lines = [
        "# gradspec conformance report", "",
        f"gradspec {report['gradspec_version']}, case schema {report['case_schema_version']}, "
        f"{platform['system']} {platform['machine']}, Python {platform['python']}; engines: "
        + ", ".join(f"{name} {info['version']}" for name, info in sorted(report["engines"].items())), "",
    ]
    lines += _runs_table(results, runs)
    lines += _coverage_table("area", results, runs, lambda r: [r["area"] or "."])
    lines += _coverage_table("rule", results, runs, lambda r: r["rules"], levels=True)
    lines += _failures(results, report["broken_case_files"])
    return "\n".join(lines) + "\n"


def _runs_table(results: list[dict], runs: list[str]) -> list[str]:
    counts = {run: Counter(r["outcome"] for r in results if run_name(r) == run) for run in runs}
    header = "| run | " + " | ".join(o.replace("_", " ") for o in OUTCOMES) + " |"
    rows = [f"| {run} | " + " | ".join(str(counts[run][o]) for o in OUTCOMES) + " |" for run in runs]
    return ["## Runs", "", header, "|" + " --- |" * (len(OUTCOMES) + 1), *rows, ""]


def _coverage_table(kind: str, results: list[dict], runs: list[str], keys, levels: bool = False) -> list[str]:
    """passed/judged per key and run, where judged leaves out not-applicable and skipped results."""
    cells: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for result in results:
        for key in keys(result):
            cells[key][run_name(result)][result["outcome"]] += 1
    rules = contracts.rules()
    extra = " level |" if levels else ""
    lines = [f"## By {kind}", "", f"| {kind} |{extra} " + " | ".join(runs) + " |",
             "|" + " --- |" * (len(runs) + 1 + levels)]
    for key in sorted(cells, key=_natural):
        level = f" {rules[key].level} |" if levels and key in rules else (" |" if levels else "")
        row = [_cell(cells[key][run]) for run in runs]
        lines.append(f"| {key} |{level} " + " | ".join(row) + " |")
    return lines + [""]


def _cell(counts: Counter) -> str:
    judged = counts["passed"] + counts["failed"] + counts["expected_failure"] + counts["unexpected_pass"]
    if not judged:
        return "n/a" if counts else ""
    mark = "" if counts["failed"] == 0 else " ❌"
    return f"{counts['passed'] + counts['unexpected_pass']}/{judged}{mark}"


def _failures(results: list[dict], broken: list[dict]) -> list[str]:
    lines = ["## Failures", ""]
    failed = [r for r in results if r["outcome"] == "failed"]
    if not failed and not broken:
        return lines + ["None.", ""]
    for result in failed:
        lines += [f"### {result['case']} on {run_name(result)}", "", result["title"], "", "```text",
                  result["message"].strip(), "```", ""]
    for file in broken:
        lines += [f"### {file['path']} could not be loaded", "", "```text", file["error"], "```", ""]
    return lines


def _natural(key: str):
    """LIFE-2 before LIFE-10."""
    head, _, tail = key.partition("-")
    return (head, int(tail) if tail.isdigit() else 0, key)
