"""Render a JSON conformance report as one self-contained HTML page, with a picture of each failing case."""

from __future__ import annotations

from html import escape

from gradspec.language.graph import to_svg
from gradspec.reports.tables import (
    anchor,
    coverage_table,
    disagreements,
    engine_matrix,
    op_matrix,
    failure_links,
    failures,
    outcomes_table,
    run_name,
    verdict,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
td.bad { background: #fbe3e3; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; }
section.failure { border-top: 2px solid #c33; margin-top: 2em; }
.meta { color: #555; }
"""


PICTURE_LIMIT = 300  # nodes: a larger graph drawn as SVG is megabytes that nobody can read


def render(report: dict) -> str:
    platform = report["platform"]
    engines = ", ".join(f"{name} {info['version']}" for name, info in sorted(report["engines"].items()))
    body = [
        "<h1>gradspec conformance report</h1>",
        f'<p class="meta">gradspec {escape(report["gradspec_version"])}, case schema {report["case_schema_version"]}, '
        f'{escape(platform["system"])} {escape(platform["machine"])}, Python {escape(platform["python"])}; '
        f"engines: {escape(engines)}; written {escape(report['created'])}</p>",
        f'<p class="verdict"><strong>{escape(verdict(report))}</strong></p>',
        "<h2>Runs</h2>", _table(*outcomes_table(report)),
        *(_matrix(report) if len(report["engines"]) > 1 else []),
        "<h2>By area</h2>", _table(*coverage_table(report, "area"), failure_links(report, "area")),
        "<h2>By rule</h2>", _table(*coverage_table(report, "rule"), failure_links(report, "rule")),
        "<h2>Failures</h2>",
    ]
    failed, broken = failures(report), report["broken_case_files"]
    if not failed and not broken:
        body.append("<p>None.</p>")
    for result in failed:
        graph = result.get("graph") or {}
        nodes = len(graph.get("nodes", ()))
        picture = to_svg(graph) if 0 < nodes <= PICTURE_LIMIT else (
            f"<p>(the graph has {nodes} nodes, too many to draw; the JSON report holds it)</p>" if nodes else "")
        body += [f'<section class="failure" id="{anchor(result)}">'
                 f'<h3>{escape(result["case"])} on {escape(run_name(result))}</h3>',
                 f"<p>{escape(result['title'])}</p>", f"<pre>{escape(result['message'].strip())}</pre>",
                 picture, "</section>"]
    for file in broken:
        body += [f'<section class="failure"><h3>{escape(file["path"])} could not be loaded</h3>',
                 f"<pre>{escape(file['error'])}</pre></section>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gradspec conformance report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _matrix(report: dict) -> list[str]:
    """The cross-engine matrix and a table of every engine and case that differs from the rule book."""
    rows = [[e["engine"], e["case"], "known" if e["known"] else "new", ", ".join(e["runs"]), " ".join(e["why"])]
            for e in disagreements(report)]
    return ["<h2>Engines by area</h2>", _table(*engine_matrix(report)),
            "<h2>Engines by op</h2>", _table(*op_matrix(report)),
            "<h3>Where engines differ from the rule book</h3>",
            _table(["engine", "case", "known?", "runs", "why"], rows) if rows else "<p>Nowhere.</p>"]


def _table(header: list[str], rows: list[list[str]], links: dict | None = None) -> str:
    """An HTML table; with `links`, a cell that counts a failure links to that failure's section."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    links = links or {}
    lines = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            # A failing cell is marked by colour and weight, not the Markdown's emoji: browsers without an
            # emoji font draw that as an empty box.
            text = escape(cell.replace(" ❌", ""))
            target = links.get((row[0], header[index]))
            text = f'<a href="#{target}">{text}</a>' if target else text
            cells.append(f'<td class="bad"><strong>{text}</strong></td>' if "❌" in cell else f"<td>{text}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
