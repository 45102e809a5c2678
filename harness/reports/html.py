"""Render a JSON conformance report as one self-contained HTML page (inline CSS and SVG, nothing fetched).

The first screen answers "did it pass?": a coloured verdict with its word and counts per run. Directly below come
what needs a person (failures, errors, unexpected passes, broken case files), each with the command that reruns it
and the case's graph with the failing tensor marked; then the known differences, a heat map of runs by rule area,
and, collapsed, the heat map by op and the detailed tables.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from gradspec import contracts
from gradspec.language.graph import node_at, to_svg
from gradspec.printable import shown
from gradspec.reports.report import graph_problem
from gradspec.reports.tables import (
    JUDGED,
    OUTCOMES,
    anchor,
    coverage_table,
    disagreements,
    engine_matrix,
    failure_links,
    heat_map,
    op_matrix,
    reproduce,
    rule_area,
    run_name,
    run_verdict,
    runs,
    verdict,
)

# Verdict colours, each with white text at a contrast of at least 4.5:1 (WCAG AA; tests/test_html.py checks it).
# Colour is never the only sign: the word (PASS, FAIL, ...) and the counts say the same.
# NOTE marks what a person should look at that does not fail the run (an unexpected pass without
# --strict-expectations).
VERDICT_COLOURS = {"PASS": "#1b5e20", "FAIL": "#b00020", "NOTHING JUDGED": "#5f6368", "INCOMPLETE": "#8a4b00",
                   "NOTE": "#8a4b00"}
# Heat-map fills by the share of judged results that passed, under dark text; grey where nothing was judged.
HEAT = ((1.0, "#a5d6a7"), (0.9, "#d4e9b5"), (0.75, "#fff0a0"), (0.5, "#ffcc99"), (0.0, "#f4a6a6"))
NOT_JUDGED_FILL = "#eeeeee"
ATTENTION = ("failed", "error", "unexpected_pass")
KNOWN_OPEN = 15  # known differences shown open up to this many; more are collapsed

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.5em; margin: 0 0 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { background: #fbe3e3; font-weight: bold; }
td.note { background: #fff0c2; font-weight: bold; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; }
pre.repro { background: #1e1e1e; color: #f0f0f0; border-color: #1e1e1e; }
section.failure, section.unexpected-pass { border-top: 2px solid #b00020; margin-top: 1.5em; }
section.unexpected-pass { border-top-color: #8a4b00; }
.meta { color: #555; margin: 0 0 0.8em; }
.verdict { color: #fff; padding: 0.7em 1em; border-radius: 6px; margin: 0 0 0.6em; }
.verdict .word { font-size: 2em; font-weight: 800; letter-spacing: 0.04em; margin-right: 0.5em; }
.verdict .why { font-size: 1.1em; }
.tag { display: inline-block; color: #fff; font-weight: bold; padding: 0.05em 0.5em; border-radius: 4px; }
table.runs td.tag-cell { color: #fff; font-weight: bold; }
table.heat td { text-align: center; min-width: 6.5em; }
table.heat td.row { text-align: left; }
table.heat small { display: block; font-size: 0.8em; }
.legend span { display: inline-block; padding: 0 0.5em; margin-right: 0.3em; border: 1px solid #bbb; }
details { margin: 0.6em 0; }
summary { cursor: pointer; font-weight: bold; font-size: 1.1em; }
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
        *_verdict(report),
        *_attention(report),
        *_known(report),
        '<h2 id="heat-area">Runs by rule area</h2>', *_heat(report, "area"),
        _details("Runs by op (heat map)", _heat(report, "op")),
    ]
    if len(report["engines"]) > 1:
        body.append(_details("Engines by op (passed / differs / not applicable)", [_table(*op_matrix(report))]))
        body.append(_details("Engines by case folder", [_table(*engine_matrix(report))]))
    body += [
        _details("By case folder and run", [_table(*coverage_table(report, "area"), failure_links(report, "area"))]),
        _details("By rule", [_table(*coverage_table(report, "rule"), failure_links(report, "rule"))]),
    ]
    if len(report["engines"]) > 1:
        rows = [[e["engine"], e["case"], "known" if e["known"] else "new", ", ".join(e["runs"]), " ".join(e["why"])]
                for e in disagreements(report)]
        body.append(_details("Where engines differ from the rule book", [
            _table(["engine", "case", "known?", "runs", "why"], rows) if rows else "<p>Nowhere.</p>"]))
    # control characters from cases and engines (ESC, NUL, ...) as escapes: a browser or a terminal showing the
    # file acts on none (printable.shown)
    return shown("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gradspec conformance report"
                 f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def verdict_word(report: dict) -> str:
    """PASS, FAIL, NOTHING JUDGED or INCOMPLETE: the first word of tables.verdict, which the Markdown shows too."""
    head = verdict(report).split(":", 1)[0]
    return {"PASSED": "PASS", "FAILED": "FAIL"}.get(head, head)


def _verdict(report: dict) -> list[str]:
    """The first screen: the run's verdict in words and colour, then each run's own verdict and counts."""
    word = verdict_word(report)
    attention = sum(r["outcome"] in ATTENTION for r in report["results"])
    broken = len(report["broken_case_files"])
    why = verdict(report).split(":", 1)[-1].strip()
    strict = bool(report.get("strict_expectations"))
    header = "".join(f"<th>{escape(o.replace('_', ' '))}</th>" for o in OUTCOMES)
    rows = []
    for run in runs(report):
        counts = Counter(r["outcome"] for r in report["results"] if run_name(r) == run)
        own = run_verdict(counts, strict)
        cells = []
        for outcome in OUTCOMES:
            fails = counts[outcome] and (outcome in ("failed", "error") or (outcome == "unexpected_pass" and strict))
            css = "num bad" if fails else "num note" if counts[outcome] and outcome == "unexpected_pass" else "num"
            cells.append(f'<td class="{css}">{counts[outcome]}</td>')
        rows.append(f'<tr><td>{escape(run)}</td><td class="tag-cell" style="background:{VERDICT_COLOURS[own]}">'
                    f'{own}</td>{"".join(cells)}</tr>')
    return [f'<section class="verdict verdict-{word.lower().replace(" ", "-")}" id="verdict" role="status" '
            f'style="background:{VERDICT_COLOURS[word]}"><span class="word">{word}</span>'
            f'<span class="why">{escape(why)}</span></section>',
            f'<table class="runs"><thead><tr><th>run</th><th>verdict</th>{header}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>',
            f'<p class="jump">Below: <a href="#attention">{attention} failure(s), error(s) and unexpected pass(es)</a>'
            f'{f", {broken} broken case file(s)" if broken else ""} · <a href="#heat-area">runs by rule area</a>; '
            "collapsed: by op, by case folder, by rule.</p>"]


def _attention(report: dict) -> list[str]:
    """Failures, errors, broken case files and unexpected passes: each with its rules, message and rerun command."""
    results = [r for r in report["results"] if r["outcome"] in ATTENTION]
    results.sort(key=lambda r: ATTENTION.index(r["outcome"]))  # stable: in case order within each outcome
    broken = report["broken_case_files"]
    body = ['<h2 id="attention">Failures, errors and unexpected passes</h2>']
    if not results and not broken:
        return [*body, "<p>None.</p>"]
    strict = bool(report.get("strict_expectations"))
    for result in (r for r in results if r["outcome"] != "unexpected_pass"):
        body += _failure(result, report)
    for file in broken:
        body += [f'<section class="failure"><h3>{escape(file["path"])} could not be loaded</h3>',
                 f"<p>{_tag('broken case file', 'FAIL')}</p>", f"<pre>{escape(file['error'])}</pre></section>"]
    for result in (r for r in results if r["outcome"] == "unexpected_pass"):
        note = ("it fails the run (--strict-expectations)" if strict else
                "a listed known failure now passes: confirm the fix, then drop its line from the expectation file")
        body += [f'<section class="unexpected-pass" id="{anchor(result)}">'
                 f'<h3>{escape(result["case"])} on {escape(run_name(result))}</h3>',
                 f"<p>{_tag('unexpected pass', 'FAIL' if strict else 'NOTE')} {escape(note)}; "
                 f"rules {escape(', '.join(result['rules']))}</p>",
                 f"<p>Listed because: {escape(result['message'].strip())}</p>", *_rerun(result, report), "</section>"]
    return body


def _failure(result: dict, report: dict) -> list[str]:
    graph = result.get("graph") or {}
    nodes = len(graph.get("nodes", ()))
    where = result.get("failed_at") or {}
    marked = where.get("node") or (node_at(graph, where.get("tensor"), where.get("line")) if where else None)
    broken = graph_problem(graph)  # a report read from a file may hold anything the schema allows
    picture = f"<p>(the graph is not drawn: {escape(broken)})</p>" if broken else to_svg(graph, marked) if (
        0 < nodes <= PICTURE_LIMIT) else (
        f"<p>(the graph has {nodes} nodes, too many to draw; the JSON report holds it)</p>" if nodes else "")
    located = ""
    if where.get("step"):
        tensor = f", on tensor {escape(where['tensor'])}" if where.get("tensor") else ""
        shown = ', marked "failed here" in the graph' if marked and picture.startswith("<svg") else ""
        located = f'<p class="where">Failed at {escape(where["step"])}{tensor}{shown}.</p>'
    kind = "error (no verdict)" if result["outcome"] == "error" else "failed"
    return [f'<section class="failure" id="{anchor(result)}">'
            f'<h3>{escape(result["case"])} on {escape(run_name(result))}</h3>',
            f"<p>{_tag(kind, 'FAIL')} rules {escape(', '.join(result['rules']))}: {escape(result['title'])}</p>",
            f"<pre>{escape(result['message'].strip())}</pre>", *_rerun(result, report), located, picture, "</section>"]


def _rerun(result: dict, report: dict) -> list[str]:
    return ['<p>Rerun exactly this:</p>', f'<pre class="repro"><code>{escape(reproduce(result, report))}</code></pre>']


def _tag(text: str, colour: str) -> str:
    return f'<span class="tag" style="background:{VERDICT_COLOURS[colour]}">{escape(text)}</span>'


def _known(report: dict) -> list[str]:
    """Expected failures (listed in --expectations): known differences, shown before the big tables."""
    known = [e for e in disagreements(report) if e["known"]]
    if not known:
        return []
    rows = [[e["engine"], e["case"], ", ".join(e["runs"]), " ".join(e["why"])] for e in known]
    results = sum(len(e["runs"]) for e in known)
    return [_details(f"Known differences: {len(known)} case(s) by engine, {results} result(s), listed in the "
                     "expectation files",
                     [_table(["engine", "case", "runs", "why"], rows)], opened=len(known) <= KNOWN_OPEN)]


def _heat(report: dict, kind: str) -> list[str]:
    """Runs by rule area (or op): each cell `passed/judged` and what else happened, coloured by the share passed."""
    rows, names, cells = heat_map(report, kind)
    if not rows:
        return ["<p>No results.</p>"]
    links: dict[tuple[str, str], str] = {}
    for result in report["results"]:
        if result["outcome"] in ATTENTION:
            keys = result.get("ops", ()) if kind == "op" else {rule_area(rule) for rule in result["rules"]}
            for key in keys:
                links.setdefault((key, run_name(result)), anchor(result))
    titles = contracts.rule_areas()
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    lines = []
    for key in rows:
        label = escape(key) if kind == "op" or key not in titles else (
            f'{escape(key)} <small>{escape(titles[key].replace("`", ""))}</small>')
        cells_html = [_heat_cell(cells[key][run], links.get((key, run))) for run in names]
        lines.append(f'<tr><td class="row">{label}</td>{"".join(cells_html)}</tr>')
    legend = "".join(f'<span style="background:{fill}">{"all" if share == 1 else f"≥ {share:.0%}" if share else "less"}'
                     '</span>' for share, fill in HEAT) + f'<span style="background:{NOT_JUDGED_FILL}">nothing judged</span>'
    return [f'<table class="heat heat-{kind}"><thead><tr><th>{"op" if kind == "op" else "rule area"}</th>{head}</tr>'
            f'</thead><tbody>{"".join(lines)}</tbody></table>',
            f'<p class="legend">Each cell: passed / judged, then what did not pass. Colour: the share passed '
            f"(known differences count as not passed): {legend}</p>"]


def _heat_cell(counts: Counter, link: str | None) -> str:
    judged = sum(counts[o] for o in JUDGED)
    if not judged:
        text = "lacks op" if counts["lacks"] and counts["lacks"] == counts["not_applicable"] else (
            "not applicable" if counts["not_applicable"] else "skipped" if counts["skipped"] else "")
        return f'<td style="background:{NOT_JUDGED_FILL}">{text}</td>'
    passed = counts["passed"] + counts["unexpected_pass"]
    share = passed / judged
    fill = next(colour for floor, colour in HEAT if share >= floor)
    notes = [f"{counts[o]} {label}" for o, label in (("failed", "failed"), ("error", "error"),
                                                      ("expected_failure", "known"),
                                                      ("unexpected_pass", "unexpected pass")) if counts[o]]
    text = f"{passed}/{judged}"
    text = f'<a href="#{link}">{text}</a>' if link else text
    bad = counts["failed"] + counts["error"]
    text = f"<strong>{text}</strong>" if bad else text
    note = f"<small>{escape(', '.join(notes))}</small>" if notes else ""
    return f'<td class="{"bad-cell" if bad else "cell"}" style="background:{fill}">{text}{note}</td>'


def _details(summary: str, content: list[str], opened: bool = False) -> str:
    return f'<details{" open" if opened else ""}><summary>{escape(summary)}</summary>{"".join(content)}</details>'


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
