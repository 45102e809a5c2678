"""The dataflow graph of a case, as plain data, and its picture as SVG.

Nodes are the case's tensors: leaves and the result of each compute step (a name assigned
twice is two nodes). Edges go from each name an expression reads to the step's result.
Nodes are laid out in columns by depth, leaves on the left.
"""

from __future__ import annotations

from html import escape

from gradspec.language.case import Case, Step
from gradspec.language.expressions import names_used

WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 150, 44, 60, 24, 20


def case_graph(case: Case) -> dict:
    """{"nodes": [{"id", "label", "kind", "detail"}], "edges": [[from id, to id]]}: plain data for a report."""
    nodes, edges, current = [], [], {}
    for tensor in case.tensors:
        kind = "leaf-grad" if tensor.requires_grad else "leaf"
        nodes.append({"id": tensor.name, "label": tensor.name, "kind": kind, "detail": f"shape {list(tensor.value.shape)}"})
        current[tensor.name] = tensor.name
    for step in _compute_steps(case.steps):
        statement = step.statement
        sources = [current[n] for n in dict.fromkeys(names_used(statement.expr)) if n in current]
        if statement.inplace_op and statement.target in current:
            sources.append(current[statement.target])
        node_id = f"{statement.target}@{step.line or len(nodes)}"
        nodes.append({"id": node_id, "label": statement.target, "kind": "result", "detail": step.args["compute"]})
        edges += [[source, node_id] for source in dict.fromkeys(sources)]
        current[statement.target] = node_id
    return {"nodes": nodes, "edges": edges}


def _compute_steps(steps: tuple[Step, ...]):
    for step in steps:
        if step.statement is not None:
            yield step
        yield from _compute_steps(step.body)


def to_svg(graph: dict) -> str:
    """A self-contained SVG picture of a case graph."""
    depth: dict[str, int] = {}
    incoming: dict[str, list[str]] = {}
    for source, target in graph["edges"]:
        incoming.setdefault(target, []).append(source)
    for node in graph["nodes"]:  # nodes come in definition order, so inputs are placed first
        depth[node["id"]] = 1 + max((depth[s] for s in incoming.get(node["id"], ())), default=-1)
    rows: dict[int, int] = {}
    position = {}
    for node in graph["nodes"]:
        column = depth[node["id"]]
        row = rows.get(column, 0)
        rows[column] = row + 1
        position[node["id"]] = (MARGIN + column * (WIDTH + GAP_X), MARGIN + row * (HEIGHT + GAP_Y))
    width = MARGIN * 2 + (max(depth.values(), default=0) + 1) * (WIDTH + GAP_X) - GAP_X
    height = MARGIN * 2 + max(rows.values(), default=1) * (HEIGHT + GAP_Y) - GAP_Y
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="dataflow graph of the case">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for source, target in graph["edges"]:
        (x1, y1), (x2, y2) = position[source], position[target]
        parts.append(f'<line x1="{x1 + WIDTH}" y1="{y1 + HEIGHT / 2}" x2="{x2}" y2="{y2 + HEIGHT / 2}" '
                     'stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>')
    fills = {"leaf": "#eeeeee", "leaf-grad": "#d8f0d8", "result": "#dde8f8"}
    for node in graph["nodes"]:
        x, y = position[node["id"]]
        radius = 4 if node["kind"].startswith("leaf") else 20
        parts.append(f'<g class="node node-{node["kind"]}"><title>{escape(node["detail"])}</title>'
                     f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="{radius}" fill="{fills[node["kind"]]}" '
                     f'stroke="#333"/><text x="{x + WIDTH / 2}" y="{y + 18}" text-anchor="middle" font-family="monospace" '
                     f'font-size="14" font-weight="bold">{escape(node["label"])}</text>'
                     f'<text x="{x + WIDTH / 2}" y="{y + 35}" text-anchor="middle" font-family="monospace" font-size="10" '
                     f'fill="#444">{escape(_short(node["detail"]))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
