"""Render a JSON conformance report as Markdown, fit for a CI job summary: runs, areas, rules, failures."""

from __future__ import annotations

import re

from gradspec.printable import shown
from gradspec.reports.tables import (
    anchor,
    coverage_table,
    disagreements,
    engine_matrix,
    failure_links,
    failures,
    op_matrix,
    outcomes_table,
    reproduce,
    run_name,
    verdict,
)


def render(report: dict) -> str:
    """Every text from a case, an engine or a message is escaped: it shows as written and never as markup, and its
    control characters (ESC, NUL, ...) as escapes that no terminal or viewer acts on (printable.shown)."""
    platform = report["platform"]
    engines = ", ".join(f"{name} {info['version']}" for name, info in sorted(report["engines"].items()))
    lines = [
        "# gradspec conformance report", "",
        text(f"gradspec {report['gradspec_version']}, case schema {report['case_schema_version']}, "
             f"{platform['system']} {platform['machine']}, Python {platform['python']}; engines: {engines}"), "",
        f"**{text(verdict(report))}**", "",
    ]
    lines += _table("Runs", *outcomes_table(report))
    if len(report["engines"]) > 1:
        lines += _matrix(report)
    lines += _table("By area", *coverage_table(report, "area"), failure_links(report, "area"))
    lines += _table("By rule", *coverage_table(report, "rule"), failure_links(report, "rule"))
    lines += ["## Failures", ""]
    failed, broken = failures(report), report["broken_case_files"]
    if not failed and not broken:
        lines += ["None.", ""]
    for result in failed:
        crashed = " (error: no verdict)" if result["outcome"] == "error" else ""
        lines += [f'<a id="{anchor(result)}"></a>', "", f"### {text(result['case'])} on {text(run_name(result))}{crashed}",
                  "", text(result["title"]), "", *fenced(result["message"].strip()), "",
                  "Rerun exactly this:", "", *fenced(reproduce(result, report)), ""]
    for file in broken:
        lines += [f"### {text(file['path'])} could not be loaded", "", *fenced(file["error"]), ""]
    passes = [r for r in report["results"] if r["outcome"] == "unexpected_pass"]
    if passes:  # a listed known failure that passed: a fix to confirm, and under --strict-expectations a failed run
        strict = " (each fails the run: --strict-expectations)" if report.get("strict_expectations") else ""
        lines += ["## Unexpected passes", "", f"Listed as known failures, yet passed{strict}; drop their lines "
                  "from the expectation file once the fix is confirmed:", ""]
        lines += [f"- {text(r['case'])} on {text(run_name(r))}: {text(r['message'])}" for r in passes] + [""]
    return shown("\n".join(lines) + "\n")


def _matrix(report: dict) -> list[str]:
    """The cross-engine matrix and one line per engine and case that differs from the rule book."""
    lines = _table("Engines by area", *engine_matrix(report))
    lines += _table("Engines by op", *op_matrix(report))
    lines += ["### Where engines differ from the rule book", ""]
    found = disagreements(report)
    if not found:
        lines += ["Nowhere.", ""]
    for entry in found:
        known = "known" if entry["known"] else "**new**"
        lines.append(f"- {text(entry['engine'])}: {text(entry['case'])} ({known}; {text(', '.join(entry['runs']))}): "
                     f"{text(' '.join(entry['why']))}")
    return [*lines, ""]


def _table(title: str, header: list[str], rows: list[list[str]], links: dict | None = None) -> list[str]:
    """A Markdown table; with `links`, a cell that counts a failure links to that failure's section."""
    links = links or {}
    linked = [[f"[{text(cell)}](#{links[(row[0], header[i])]})" if (row[0], header[i]) in links else text(cell)
               for i, cell in enumerate(row)] for row in rows]
    return [f"## {title}", "", "| " + " | ".join(text(h) for h in header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(row) + " |" for row in linked), ""]


_MARKUP = str.maketrans({c: f"\\{c}" for c in "\\`*_[]|#"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def text(value: str) -> str:
    """Inline text as it is written: on one line, with Markdown's and HTML's special characters escaped."""
    return " ".join(str(value).split()).translate(_MARKUP)


def fenced(value: str) -> list[str]:
    """A code block that the text cannot close: its fence is longer than any run of backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", value, fence]
