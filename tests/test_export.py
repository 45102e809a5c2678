"""`gradspec export`: a case as a standalone torch script that passes where torch conforms and raises where not."""

from __future__ import annotations

import ast
import contextlib
import io
import subprocess
import sys

import pytest
from gradspec.cli import main as cli
from gradspec.language.loader import load_case
from gradspec.reports.export import to_torch_script
from gradspec.running import expectations

from .conftest import CASES, REPO, VALID_CASE

pytest.importorskip("torch")


def run_script(script: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(script, "<exported>", "exec"), {"__name__": "__exported__"})
    return out.getvalue()


# A case torch is known to fail (expectations/torch.txt) exports to the script of a bug report: it must raise.
TORCH_KNOWN = {e.pattern.partition("::")[0] for e in expectations.load(REPO / "expectations" / "torch.txt")}


@pytest.mark.filterwarnings(r"ignore:Using backward\(\) with create_graph=True")  # HIGHER-6, torch's own warning
@pytest.mark.parametrize("path", sorted(CASES.rglob("*.yaml")), ids=lambda p: p.relative_to(CASES).as_posix())
def test_every_case_exports_to_a_script_that_torch_passes(path):
    case = load_case(path)
    from gradspec.adapters.torch_adapter import TorchAdapter
    lacking = set(case.capabilities) - TorchAdapter.capabilities
    if lacking:  # not applicable to torch (SAVED-6: the reference engine's version check of packed values)
        pytest.skip(f"torch lacks {sorted(lacking)}")
    if case.id in TORCH_KNOWN:  # in a child process: a known bug may be a crash (hooks/hook-on-view-after-...)
        import subprocess
        import sys
        run = subprocess.run([sys.executable, "-c", to_torch_script(case)], capture_output=True, text=True, timeout=300)
        assert run.returncode != 0 and "conforms" not in run.stdout, run.stdout[-2000:]
        assert "AssertionError" in run.stderr or run.returncode < 0, run.stderr[-2000:]
        return
    assert run_script(to_torch_script(case)) == f"conforms: {case.id}\n"


def test_the_script_needs_nothing_but_torch():
    tree = ast.parse(to_torch_script(load_case(CASES / "hooks" / "post-accumulate-grad.yaml")))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"re", "threading", "warnings", "torch"}


def test_a_wrong_value_and_a_missing_error_raise_naming_the_step(write_case):
    wrong = load_case(write_case(VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}")))
    with pytest.raises(AssertionError, match=r"step 3 \(expect, line 12\): \.grad of x: expected \[7\.0\], got \[6\.0\]"):
        run_script(to_torch_script(wrong))
    no_error = VALID_CASE.replace("  - backward: y", "  - backward: y\n    raises: freed_graph")
    no_error = no_error.replace("capabilities: [backward]", "capabilities: [backward, graph_lifetime]")
    with pytest.raises(AssertionError, match="expected error 'freed_graph', but the step completed"):
        run_script(to_torch_script(load_case(write_case(no_error, "no-error.yaml"))))


def test_an_exported_failing_case_reproduces_the_failure_on_its_own(write_case, tmp_path):
    path = write_case(VALID_CASE.replace("grad: {x: [6.0]}", "grad: {x: [7.0]}"))
    script = tmp_path / "repro.py"
    assert cli(["export", str(path), "-o", str(script)]) == 0
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "AssertionError: step 3 (expect, line 12): .grad of x: expected [7.0], got [6.0]" in result.stderr
    good = tmp_path / "good.py"
    assert cli(["export", str(write_case(VALID_CASE, "good.yaml")), "--dtype", "float32", "-o", str(good)]) == 0
    result = subprocess.run([sys.executable, str(good)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "conforms: good.yaml\n"


HOSTILE_TEXT = '"""\nimport pathlib; pathlib.Path(MARKER).write_text("pwned")\n"""'


def test_no_text_from_a_case_becomes_code_in_the_script(tmp_path):
    """Title, source, derivation and the file name are data: a docstring breakout or a quote in the id runs nothing."""
    import yaml
    marker = tmp_path / "pwned.txt"
    hostile = HOSTILE_TEXT.replace("MARKER", repr(str(marker)))
    data = yaml.safe_load(VALID_CASE)
    data.update(title=hostile, source=hostile + "\\", derivation=hostile)
    folder = tmp_path / "cases"
    folder.mkdir()
    path = folder / 'evil"); import os; print("x.yaml'
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    case = load_case(path)
    assert '"""' in case.derivation and "pwned" in case.title
    script = to_torch_script(case)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert output.returncode == 0, output.stderr
    assert not marker.exists()
    assert output.stdout.strip() == f"conforms: {case.id}"
