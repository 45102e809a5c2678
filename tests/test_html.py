"""The HTML report as a person sees it: rendered by headless Chromium, measured in the browser, and photographed.

It uses a Chromium that is installed (`.ci/run` installs Debian's package before the tests); where none is, the
browser tests are skipped with the reason. A test suite never changes the machine it runs on, so it installs nothing
itself. The other tests read the page's HTML and need no browser.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from html import unescape
from pathlib import Path

import jsonschema
import pytest
from gradspec import contracts
from gradspec.language.graph import node_at
from gradspec.reports import html
from gradspec.reports.tables import reproduce

from .conftest import VALID_CASE

pytest.importorskip("torch")

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTH, HEIGHT = 1280, 900  # the first screen of a laptop
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--force-color-profile=srgb", f"--window-size={WIDTH},{HEIGHT}"]
WRONG = VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}")

# Appended to a copy of the page: measures what is laid out and writes it into the DOM for --dump-dom.
MEASURE = """<script>
const seen = (el) => { const r = el.getBoundingClientRect(); return el.checkVisibility() && r.width > 0 && r.height > 0; };
const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect(); return [r.top, r.bottom]; };
const report = {
  headings: [...document.querySelectorAll('h2, h3')].filter(seen).map(h => h.textContent),
  diffs: [...document.querySelectorAll('section.failure pre:not(.repro)')].filter(seen).map(p => p.textContent),
  reruns: [...document.querySelectorAll('pre.repro')].filter(seen).map(p => p.textContent),
  graphs: [...document.querySelectorAll('svg.graph')].filter(seen).map(svg =>
      [...svg.querySelectorAll('text')].filter(t => t.getBBox().width > 0).map(t => t.textContent)),
  failed_nodes: [...document.querySelectorAll('svg .node-failed')].filter(seen).map(g => g.textContent),
  verdict: box(document.getElementById('verdict')),
  verdict_text: document.getElementById('verdict').innerText,
  first_failure: box(document.querySelector('section.failure')),
  heat_map: box(document.querySelector('table.heat-area')),
  heat_cells: [...document.querySelectorAll('table.heat-area td')].filter(seen).map(td => td.innerText),
  hidden_tables: [...document.querySelectorAll('details:not([open]) table')].filter(seen).length,
  screen: window.innerHeight,
  page_width: document.documentElement.scrollWidth,
};
const out = document.createElement('pre');
out.id = 'measured';
out.textContent = JSON.stringify(report);
document.body.appendChild(out);
</script>"""


@pytest.fixture(scope="session")
def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if not found:
        pytest.skip(f"no headless browser installed (none of {', '.join(BROWSERS)} on PATH; on Debian: "
                    "apt-get install chromium, as .ci/run does)")
    return found


def write_cases(pytester, **files: str) -> None:
    for name, text in files.items():
        path = pytester.path / "cases" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run_report(pytester, **files: str) -> tuple[dict, str]:
    """Run the cases on the reference engine in float64; the JSON report and the HTML page."""
    write_cases(pytester, **files)
    pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--gradspec-report", "out/report.json",
                       "--gradspec-html", "out/report.html")
    return (json.loads((pytester.path / "out" / "report.json").read_text()),
            (pytester.path / "out" / "report.html").read_text())


def measure(chromium: str, page: str, tmp_path: Path) -> dict:
    measured_page = tmp_path / "measured.html"
    measured_page.write_text(page.replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          measured_page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    return json.loads(unescape(re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S).group(1)))


def test_html_report_shows_the_verdict_first_then_failures_with_reruns_and_marked_graphs(pytester, chromium, tmp_path):
    _, page = run_report(pytester, **{"area/good": VALID_CASE, "area/wrong": WRONG,
                                      "other/broken": VALID_CASE.replace("  - backward: y", "  - backwards: y")})
    seen = measure(chromium, page, tmp_path)

    assert seen["verdict"][1] <= seen["screen"], "the verdict is on the first screen"
    assert seen["verdict_text"].startswith("FAIL") and "1 failed" in seen["verdict_text"]
    assert seen["verdict"][1] < seen["first_failure"][0] < seen["heat_map"][0], "verdict, failures, then heat map"
    assert seen["headings"][:3] == ["Failures, errors and unexpected passes", "area/wrong.yaml on reference-cpu-float64",
                                    "cases/other/broken.yaml could not be loaded"]
    assert any("expected [7.], got [6.]" in diff for diff in seen["diffs"])
    assert any("did you mean 'backward'" in diff for diff in seen["diffs"])
    assert seen["reruns"] == ["pytest cases/area/wrong.yaml::reference-cpu-float64 --engine reference --device cpu "
                              "--dtype float64"]
    assert seen["graphs"] == [["x", "shape [1]", "failed here", "y", "y = sum(x ** 2)"]]
    assert seen["failed_nodes"] == ["failed here: shape [1]xshape [1]failed here"]  # the leaf x, whose .grad was wrong
    assert "1/2\n1 failed" in seen["heat_cells"]  # ACC: one of two judged passed
    assert seen["hidden_tables"] == 0, "the op and rule tables are collapsed"
    assert seen["page_width"] <= WIDTH, "nothing should need sideways scrolling"


def png_rows(path: Path, rows: int) -> list[list[tuple[int, int, int]]]:
    """The RGB pixels of a PNG's first `rows` rows (8-bit RGB or RGBA, not interlaced, as Chromium writes them):
    a reader of a few lines, since gradspec does not depend on Pillow."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace, f"PNG of a kind this reader does not read: {header}"
    step = 3 if colour == 2 else 4
    stride = width * step
    raw = zlib.decompress(b"".join(chunks))
    previous, pixels = bytearray(stride), []
    for y in range(min(rows, height)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + near[2]) & 255
        pixels.append([tuple(line[i:i + 3]) for i in range(0, stride, step)])
        previous = line
    return pixels


def share_of(colour: str, pixels: list[list[tuple[int, int, int]]], tolerance: int = 12) -> float:
    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    near = sum(all(abs(a - b) <= tolerance for a, b in zip(pixel, want, strict=True)) for row in pixels for pixel in row)
    return near / sum(len(row) for row in pixels)


@pytest.mark.parametrize("failing", [True, False], ids=["failing-run", "passing-run"])
def test_a_screenshot_shows_the_verdict_on_the_first_screen_in_its_colour(pytester, chromium, tmp_path, failing):
    files = {"area/good": VALID_CASE, **({"area/wrong": WRONG} if failing else {})}
    _, page = run_report(pytester, **files)
    top, bottom = measure(chromium, page, tmp_path)["verdict"]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                    (pytester.path / "out" / "report.html").as_uri()], capture_output=True, timeout=120)
    band = png_rows(shot, int(bottom))[int(top) + 2:int(bottom) - 2]  # the verdict block's rows, on the first screen
    assert band, "the verdict block is not on the first screen"
    own, other = (html.VERDICT_COLOURS["FAIL"], html.VERDICT_COLOURS["PASS"]) if failing else (
        html.VERDICT_COLOURS["PASS"], html.VERDICT_COLOURS["FAIL"])
    assert share_of(own, band) > 0.5, "the verdict block is drawn in its verdict's colour"
    assert share_of(other, band) == 0


def result(outcome: str, engine: str = "reference", case: str = "area/x.yaml", **more) -> dict:
    return {"case": case, "title": f"{case} title", "area": "area", "engine": engine, "device": "cpu",
            "dtype": "float64", "outcome": outcome, "rules": ["ACC-1", "VIEW-2"], "capabilities": [],
            "message": f"{outcome} because", "ops": ["mul"], "nodeid": f"cases/{case}::{engine}-cpu-float64", **more}


def report_of(*results: dict, **more) -> dict:
    return {"report_version": 1, "gradspec_version": "0.1.0", "case_schema_version": 1, "created": "now",
            "platform": {"system": "Linux", "machine": "x86_64", "python": "3.11"},
            "engines": {"reference": {"version": "1", "capabilities": [], "spec": "reference"},
                        "mine": {"version": "2", "capabilities": [], "spec": "my_pkg.adapter:Mine"}},
            "results": list(results), "broken_case_files": [], **more}


def verdict_block(page: str) -> str:
    return re.search(r'<section class="verdict[^>]*>.*?</section>', page, re.S).group(0)


@pytest.mark.parametrize(("outcomes", "more", "word"), [
    (["passed", "failed"], {}, "FAIL"),
    (["passed", "error"], {}, "FAIL"),
    (["passed", "unexpected_pass"], {"strict_expectations": True}, "FAIL"),
    (["passed", "expected_failure", "not_applicable"], {}, "PASS"),
    (["passed", "unexpected_pass"], {}, "PASS"),  # the run passed (exit 0): the pass is listed first, as a note
    (["not_applicable", "skipped"], {}, "NOTHING JUDGED"),
])
def test_the_verdict_is_a_word_a_colour_and_counts(outcomes, more, word):
    page = html.render(report_of(*(result(o, case=f"area/{i}.yaml") for i, o in enumerate(outcomes)), **more))
    block = verdict_block(page)
    assert f'<span class="word">{word}</span>' in block
    assert f"background:{html.VERDICT_COLOURS[word]}" in block
    runs = re.search(r'<table class="runs">.*?</table>', page, re.S).group(0)
    assert f">{word}</td>" in runs  # the run's own verdict, and its count of each outcome
    for outcome in ("passed", "failed", "error", "expected_failure", "unexpected_pass", "not_applicable"):
        assert f"<th>{outcome.replace('_', ' ')}</th>" in runs
    counts = re.findall(r'<td class="num[^"]*">(\d+)</td>', runs)
    assert sum(map(int, counts)) == len(outcomes)
    needing = sum(o in ("failed", "error", "unexpected_pass") for o in outcomes)
    assert f'<a href="#attention">{needing} failure(s), error(s) and unexpected pass(es)</a>' in page


def test_a_broken_case_file_fails_the_verdict():
    page = html.render(report_of(result("passed"), broken_case_files=[{"path": "cases/b.yaml", "error": "bad"}]))
    assert '<span class="word">FAIL</span>' in verdict_block(page)


def test_failures_errors_and_unexpected_passes_come_first_each_with_its_rerun_command():
    page = html.render(report_of(result("passed", case="area/a.yaml"), result("unexpected_pass", case="area/b.yaml"),
                                 result("expected_failure", case="area/c.yaml"), result("error", case="area/d.yaml"),
                                 result("failed", engine="mine", case="area/e.yaml")))
    order = [page.index(marker) for marker in (
        'id="verdict"', "area/e.yaml on mine-cpu-float64", "area/d.yaml on reference-cpu-float64",
        "area/b.yaml on reference-cpu-float64", "Known differences", 'class="heat heat-area"',
        "Runs by op (heat map)", "Engines by op (passed / differs / not applicable)", "By rule")]
    assert order == sorted(order)
    assert "<details><summary>Engines by op (passed / differs / not applicable)</summary>" in page  # collapsed
    # the engine as --engine names it (an out-of-tree adapter's spec, not its label), device and dtype
    assert ("pytest cases/area/e.yaml::mine-cpu-float64 --engine my_pkg.adapter:Mine --device cpu --dtype float64"
            in page)
    assert page.count('<pre class="repro">') == 3  # the failure, the error and the unexpected pass; no known one


def test_heat_map_cells_say_passed_over_judged_and_what_did_not_pass():
    page = html.render(report_of(result("passed", case="area/a.yaml"), result("failed", case="area/b.yaml"),
                                 result("expected_failure", case="area/c.yaml"), result("not_applicable", "mine")))
    areas = re.search(r'<table class="heat heat-area">.*?</table>', page, re.S).group(0)
    rows = dict(re.findall(r'<td class="row">(\w+) <small>.*?</small></td>(.*?)</tr>', areas))
    assert list(rows) == ["ACC", "VIEW"]  # rule areas, in the rule book's order
    # columns: mine-cpu-float64, reference-cpu-float64
    assert re.findall(r"<td[^>]*>(.*?)</td>", rows["ACC"]) == [
        "not applicable",
        '<strong><a href="#failure-area-b-yaml-reference-cpu-float64">1/3</a></strong><small>1 failed, 1 known</small>']
    assert f"background:{html.HEAT[-1][1]}" in rows["ACC"]  # a third passed: the colour of less than half
    ops = re.search(r'<table class="heat heat-op">.*?</table>', page, re.S).group(0)
    assert "<td class=\"row\">mul</td>" in ops and "1/3" in ops


def test_the_failing_tensor_is_recorded_and_marked_in_the_graph(pytester):
    report, page = run_report(pytester, **{"area/wrong": WRONG, "area/twice": VALID_CASE.replace(
        "  - backward: y", "  - y = y * 2\n  - backward: y").replace("grad: {x: [6.0]}", "value: {y: 9.0}")})
    jsonschema.validate(report, contracts.report_schema())
    where = {r["case"]: r["failed_at"] for r in report["results"]}
    assert where["area/wrong.yaml"] == {"step": "step 3 (expect, line 12)", "line": 12, "tensor": "x", "node": "x"}
    # y is assigned twice: the second y (line 11) is the one whose value was checked
    assert where["area/twice.yaml"] == {"step": "step 4 (expect, line 13)", "line": 13, "tensor": "y", "node": "y@11"}
    marked = re.findall(r'<g class="node node-(?:leaf-grad|result) node-failed">.*?</g>', page)
    assert len(marked) == 2 and all("failed here" in g for g in marked)
    assert "<text" in marked[0] and 'font-weight="bold">y</text>' in marked[0]  # sections in case order: twice first
    assert 'Failed at step 3 (expect, line 12), on tensor x, marked "failed here" in the graph.' in page


def test_the_rerun_command_reruns_exactly_that_result(pytester):
    report, _ = run_report(pytester, **{"area/good": VALID_CASE, "area/wrong": WRONG})
    failed = next(r for r in report["results"] if r["outcome"] == "failed")
    command = shlex.split(reproduce(failed, report))
    assert command[0] == "pytest"
    rerun = pytester.runpytest(*command[1:])
    rerun.assert_outcomes(failed=1)  # that one result, and nothing else


def test_node_at_finds_the_tensor_as_it_stood_at_the_failing_line():
    graph = {"nodes": [{"id": "x", "label": "x"}, {"id": "y@5", "label": "y"}, {"id": "y@9", "label": "y"},
                       {"id": "d@11", "label": "d"}], "edges": []}
    assert node_at(graph, "y", 7) == "y@5"
    assert node_at(graph, "y", 12) == "y@9"
    assert node_at(graph, "x", 3) == "x"
    assert node_at(graph, None, 11) == "d@11"  # no tensor: the node the failing step made
    assert node_at(graph, "hook_label", 11) is None and node_at(graph, None, 4) is None


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_verdict_and_heat_map_colours_keep_their_text_readable():
    for colour in html.VERDICT_COLOURS.values():  # white text on the verdict colours
        assert _contrast(colour, "#ffffff") >= 4.5, colour
    for _, fill in html.HEAT:  # the page's dark text on the heat-map fills
        assert _contrast(fill, "#222222") >= 4.5, fill
    assert _contrast(html.NOT_JUDGED_FILL, "#222222") >= 4.5


def test_html_shows_hostile_text_as_written_and_never_as_markup():
    hostile = "<script>alert(1)</script>"
    page = html.render(report_of(result("failed", engine="evil<b>", case=f"area/{hostile}.yaml", title=hostile,
                                        message=hostile, failed_at={"step": hostile, "line": 1, "tensor": hostile,
                                                                    "node": None}),
                                 result("unexpected_pass", case=f"area/{hostile}2.yaml", message=hostile)))
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page


def test_an_outcome_names_the_innermost_failing_step_and_its_tensor(write_case):
    """A check inside a block fails at its own line, on the derivative it reads: the block's line would mark nothing."""
    from gradspec.adapters.reference_adapter import ReferenceAdapter
    from gradspec.language.graph import case_graph
    from gradspec.language.loader import load_case
    from gradspec.running.interpreter import FAILED, run_case

    text = VALID_CASE.replace("capabilities: [backward]", "capabilities: [derivatives, grad_mode]").replace(
        "  - backward: y\n  - expect:\n      grad: {x: [6.0]}\n",
        "  - derivative: {of: y, wrt: x, as: d}\n  - no_grad:\n      - expect:\n          value: {d: [7.0]}\n")
    case = load_case(write_case(text))
    outcome = run_case(case, ReferenceAdapter("cpu", "float64"))
    assert (outcome.status, outcome.line, outcome.tensor) == (FAILED, 13, "d")
    assert node_at(case_graph(case), outcome.tensor, outcome.line) == "d@11"  # the derivative step's result


def test_the_rerun_command_of_a_shipped_case_reruns_it_alone_from_any_folder(tmp_path):
    """A run of the shipped corpus (gradspec run) printed `pytest cases/...`, a path that exists only in a checkout;
    now `gradspec run cases/...::run`, which finds the shipped case from any folder and runs that result alone."""
    case = "accumulation/grad-plus-backward-sums.yaml"
    result = {"case": case, "engine": "reference", "device": "cpu", "dtype": "float64",
              "nodeid": f"cases/{case}::reference-cpu-float64"}
    report = {"corpus": {"source": "gradspec 0.1.0"}, "engines": {"reference": {"spec": "reference"}}}
    command = shlex.split(reproduce(result, report))
    assert command[:3] == ["gradspec", "run", f"cases/{case}::reference-cpu-float64"]
    rerun = subprocess.run([sys.executable, "-c", "import sys; from gradspec.cli import main; sys.exit(main())",
                            *command[1:], "-q"], cwd=tmp_path, capture_output=True, text=True)  # no cases/ here
    assert rerun.returncode == 0 and "1 passed in" in rerun.stdout, rerun.stdout + rerun.stderr


def test_the_rerun_command_works_from_the_folder_the_run_started_in(pytester, monkeypatch):
    """Node ids are relative to pytest's rootdir, not to the folder the run started in: the command named a path
    that did not exist there. An unexpected pass reruns as one only with its expectation file and strictness."""
    pytester.makeini("[pytest]\n")  # rootdir: the folder above the one the run starts in
    sub = pytester.path / "sub"
    (sub / "cases").mkdir(parents=True)
    (sub / "cases" / "good.yaml").write_text(VALID_CASE)
    (sub / "known.txt").write_text("good.yaml::reference a listed failure that no longer fails\n")
    monkeypatch.chdir(sub)
    first = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--expectations", "known.txt",
                               "--strict-expectations", "--gradspec-report", "r.json")
    assert first.ret == 1
    report = json.loads((sub / "r.json").read_text())
    (result,) = report["results"]
    assert result["outcome"] == "unexpected_pass" and result["nodeid"].startswith("sub/")
    command = shlex.split(reproduce(result, report))
    assert command[1].startswith("cases/good.yaml::") and command[-3:] == ["--expectations", "known.txt",
                                                                         "--strict-expectations"]
    rerun = pytester.runpytest(*command[1:])
    assert rerun.ret == 1 and "XPASS(strict)" in rerun.stdout.str()  # that result, as it was
