"""The HTML report as a person sees it: rendered by headless Chromium, measured in the browser.

It uses a Chromium that is installed (`.ci/run` installs Debian's package before the tests); where none is, the
test is skipped with the reason. A test suite never changes the machine it runs on, so it installs nothing itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape

import pytest

from .conftest import VALID_CASE

pytest.importorskip("torch")

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--window-size=1200,1600"]

# Appended to a copy of the page: measures what is laid out and writes it into the DOM for --dump-dom.
MEASURE = """<script>
const seen = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const report = {
  headings: [...document.querySelectorAll('h2, h3')].filter(seen).map(h => h.textContent),
  diffs: [...document.querySelectorAll('section.failure pre')].filter(seen).map(p => p.textContent),
  graphs: [...document.querySelectorAll('svg.graph')].filter(seen).map(svg =>
      [...svg.querySelectorAll('text')].filter(t => t.getBBox().width > 0).map(t => t.textContent)),
  table_rows: document.querySelectorAll('tbody tr').length,
  bad_cells: [...document.querySelectorAll('td.bad')].filter(seen).map(td => td.textContent),
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


def test_html_report_shows_tables_failures_diffs_and_case_graphs(pytester, chromium, tmp_path):
    for name, text in {"area/good": VALID_CASE, "area/wrong": VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}"),
                       "other/broken": VALID_CASE.replace("  - backward: y", "  - backwards: y")}.items():
        path = pytester.path / "cases" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--gradspec-html", "out/report.html")
    page = (pytester.path / "out" / "report.html").read_text()
    measured_page = tmp_path / "measured.html"
    measured_page.write_text(page.replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          measured_page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    seen = json.loads(unescape(re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S).group(1)))

    assert seen["headings"][:4] == ["Runs", "By area", "By rule", "Failures"]
    assert "area/wrong.yaml on reference-cpu-float64" in seen["headings"]
    assert "cases/other/broken.yaml could not be loaded" in seen["headings"]
    assert any("expected [7.], got [6.]" in diff for diff in seen["diffs"])
    assert any("did you mean 'backward'" in diff for diff in seen["diffs"])
    assert seen["graphs"] == [["x", "shape [1]", "y", "y = sum(x ** 2)"]]
    assert seen["table_rows"] >= 3 and seen["bad_cells"] == ["1/2", "1/2"]
    assert seen["page_width"] <= 1200, "nothing should need sideways scrolling"

    shot = tmp_path / "report.png"
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                    (pytester.path / "out" / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
