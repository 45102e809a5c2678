"""The dataflow graph of a case, as plain data, and its picture as SVG.

Nodes are the case's tensors: leaves and the result of each compute step (a name assigned
twice is two nodes). Edges go from each name an expression reads to the step's result.
Nodes are laid out in columns by depth, leaves on the left.
"""

from __future__ import annotations

from html import escape

from gradspec.language.case import Case, Step, as_list
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
        if step.statement is None:  # a derivative or grad step: a node per result it names (`as`)
            nodes, edges = _derivatives(step, nodes, edges, current)
            continue
        statement = step.statement
        sources = [current[n] for n in dict.fromkeys(names_used(statement.expr)) if n in current]
        if statement.inplace_op and statement.target in current:
            sources.append(current[statement.target])
        node_id = f"{statement.target}@{step.line or len(nodes)}"
        nodes.append({"id": node_id, "label": statement.target, "kind": "result", "detail": step.args["compute"]})
        edges += [[source, node_id] for source in dict.fromkeys(sources)]
        current[statement.target] = node_id
    return {"nodes": nodes, "edges": edges}


def node_at(graph: dict, tensor: str | None, line: int | None) -> str | None:
    """The node of `tensor` as it stood at `line` of the case file: its latest definition up to that line (a name
    assigned twice is two nodes), or its first where the line is unknown; without a tensor, the node the step at
    `line` made; None if there is no such node."""
    if tensor is None:
        return next((node["id"] for node in graph.get("nodes", ()) if line and _line(node["id"]) == line), None)
    found = [node["id"] for node in graph.get("nodes", ()) if node["label"] == tensor]
    if not found or line is None:
        return found[0] if found else None
    defined = [node for node in found if _line(node) <= line]
    return defined[-1] if defined else found[0]


def _line(node_id: str) -> int:
    """The line of a result node (its id is `name@line`); a leaf's (no `@`) is 0, before every step."""
    _, _, line = node_id.rpartition("@")
    return int(line) if "@" in node_id and line.isdigit() else 0


def _derivatives(step: Step, nodes: list, edges: list, current: dict) -> tuple[list, list]:
    """The results of a derivative or grad step, each drawn from what it differentiates and the input it is
    with respect to: a failing `expect` on a derivative then has a node to be marked on."""
    call = step.args[step.kind]
    outputs = as_list(call["of"] if step.kind == "derivative" else call["outputs"])
    inputs = as_list(call["wrt"] if step.kind == "derivative" else call["inputs"])
    for name, wrt in zip(as_list(call["as"]), inputs, strict=False):  # the loader checks the counts match
        node_id = f"{name}@{step.line or len(nodes)}"
        nodes.append({"id": node_id, "label": name, "kind": "result",
                      "detail": f"{name} = d {', '.join(outputs)} / d {wrt}"})
        edges += [[current[n], node_id] for n in dict.fromkeys([*outputs, wrt]) if n in current]
        current[name] = node_id
    return nodes, edges


def _compute_steps(steps: tuple[Step, ...]):
    """Steps that make a tensor of the graph: compute statements, and derivative and grad steps with `as`."""
    for step in steps:
        if step.statement is not None or (step.kind in ("derivative", "grad") and "as" in step.args[step.kind]):
            yield step
        yield from _compute_steps(step.body)


FAILED_FILL, FAILED_STROKE = "#fde0e0", "#b00020"


def to_svg(graph: dict, failed: str | None = None) -> str:
    """A self-contained SVG picture of a case graph; the node `failed` (an id) is drawn red, with the words
    "failed here" under it, so that colour is not the only sign."""
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
        here = node["id"] == failed
        fill, stroke = (FAILED_FILL, f'{FAILED_STROKE}" stroke-width="3') if here else (fills[node["kind"]], "#333")
        parts.append(f'<g class="node node-{node["kind"]}{" node-failed" if here else ""}">'
                     f'<title>{"failed here: " if here else ""}{escape(node["detail"])}</title>'
                     f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="{radius}" fill="{fill}" '
                     f'stroke="{stroke}"/><text x="{x + WIDTH / 2}" y="{y + 18}" text-anchor="middle" font-family="monospace" '
                     f'font-size="14" font-weight="bold">{escape(node["label"])}</text>'
                     f'<text x="{x + WIDTH / 2}" y="{y + 35}" text-anchor="middle" font-family="monospace" font-size="10" '
                     f'fill="#444">{escape(_short(node["detail"]))}</text>'
                     + (f'<text class="failed-here" x="{x + WIDTH / 2}" y="{y + HEIGHT + 15}" text-anchor="middle" '
                        f'font-family="sans-serif" font-size="12" font-weight="bold" fill="{FAILED_STROKE}">failed here'
                        '</text>' if here else "") + "</g>")
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
