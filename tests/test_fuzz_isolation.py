"""Fuzz properties and adapter imports isolated from pytest's process (issue 24, item 4).

An engine that segfaulted, called os._exit or hung in a fuzz draw ended a serial fuzz run (rc 139, no JUnit) or hung
it forever (serial and -n 2); an adapter that raised or segfaulted at import was an INTERNALERROR or a dead pytest.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

import pytest
import yaml
from gradspec.running import import_probe

# An engine that misbehaves once per run: at its 25th op in the first process to get there (a marker file says which),
# so that exactly one draw of one property meets it and every other property runs on a healthy engine.
PLANTED = """
import ctypes, os, time
from gradspec.adapters.reference_adapter import ReferenceAdapter

MARKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "misbehaved")


class Planted(ReferenceAdapter):
    name = "planted"
    calls = 0

    def apply(self, op, args, kwargs):
        Planted.calls += 1
        if Planted.calls == 25 and first():
            self.misbehave()
        return super().apply(op, args, kwargs)


def first():
    try:
        os.close(os.open(MARKER, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


class Segfaults(Planted):
    def misbehave(self):
        ctypes.string_at(0)  # reads address 0: SIGSEGV


class Exits(Planted):
    def misbehave(self):
        os._exit(3)


class Hangs(Planted):
    def misbehave(self):
        time.sleep(3600)
"""


def fuzz(pytester: pytest.Pytester, engine: str, *extra: str) -> tuple[pytest.RunResult, float]:
    """The fuzz properties on `engine`, in a pytest process of its own (pytester's PYTHONPATH finds planted.py, in
    xdist's workers too), derandomized (random draws may meet a real difference of the reference engine); its result
    and wall time."""
    pytester.makepyfile(planted=PLANTED)
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--pyargs", "gradspec.fuzz", "--engine", engine, "--fuzz-examples", "20", "-p", "no:cacheprovider",
        "--gradspec-timeout", "5", "--fuzz-staging", "staging", "--junitxml", "junit.xml",
        "--gradspec-report", "report.json", "--hypothesis-profile", "ci", *extra, timeout=150)
    return result, time.monotonic() - start


def the_one_failure(pytester: pytest.Pytester) -> str:
    """The message of the one property that failed or erred, once JUnit says every other one passed (all seven run on
    a reference engine, which judges itself in the sequence properties as any other engine)."""
    cases = list(ElementTree.parse(pytester.path / "junit.xml").iter("testcase"))
    failed = [child.get("message", "") for case in cases for child in case if child.tag in ("failure", "error")]
    passed = [case for case in cases if len(case.findall("*")) == len(case.findall("properties"))]
    assert len(cases) >= 7 and len(failed) == 1 and len(passed) == len(cases) - 1, (len(cases), failed)
    return failed[0]


def assert_one_staged_draw(pytester: pytest.Pytester, message: str, what: str) -> None:
    (staged,) = (pytester.path / "staging" / "cases").glob("*.yaml")
    assert f"written to staging/cases/{staged.name}; replay it with: pytest staging/cases/{staged.name}" in message
    assert what in yaml.safe_load(staged.read_text())["title"]  # its title says what happened
    validate = subprocess.run([sys.executable, "-m", "gradspec.cli", "validate", str(staged)], capture_output=True,
                              text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr


@pytest.mark.parametrize(("engine", "what"), [
    ("planted:Segfaults", "the engine's process died (killed by signal SIGSEGV)"),
    ("planted:Exits", "the engine's process died (exit code 3)"),
    ("planted:Hangs", "did not finish within 5 s"),
])
def test_a_draw_that_crashes_exits_or_hangs_is_an_error_of_its_property_with_the_draw_staged(pytester, engine, what):
    result, seconds = fuzz(pytester, engine)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    assert seconds < 120
    message = the_one_failure(pytester)  # the others ran, on a fresh worker
    assert what in message and "of this property" in message, message
    assert_one_staged_draw(pytester, message, "hung" if "Hangs" in engine else what)
    assert '"complete": true' in (pytester.path / "report.json").read_text()


def test_a_hanging_draw_costs_its_property_only_with_xdist_workers_too(pytester):
    pytest.importorskip("xdist")
    result, seconds = fuzz(pytester, "planted:Hangs", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    assert seconds < 120
    message = the_one_failure(pytester)
    assert "did not finish within 5 s (--gradspec-timeout, per draw)" in message
    assert_one_staged_draw(pytester, message, "the engine hung")


@pytest.mark.parametrize(("module", "reason"), [
    ("raise RuntimeError('no licence\\nfor this machine')",
     "importing broken raised RuntimeError: no licence for this machine"),
    ("import ctypes\nctypes.string_at(0)", "the process importing it ended (killed by signal SIGSEGV)"),
    ("import os\nos._exit(3)", "the process importing it ended (exit code 3)"),
    ("import sys\nsys.exit(5)", "importing broken raised SystemExit: 5"),
])
def test_an_adapter_whose_import_fails_is_a_usage_error_saying_why_on_one_line(pytester, module, reason):
    pytester.makepyfile(broken=module)
    result = pytester.runpytest_subprocess("--pyargs", "gradspec.fuzz", "--engine", "broken:Adapter",
                                           "-p", "no:cacheprovider", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: cannot load adapter 'broken:Adapter': ")
    assert reason in errors[0]


def test_only_adapters_gradspec_does_not_ship_are_imported_in_a_process_of_their_own_first():
    assert import_probe.shipped("torch") and import_probe.shipped("gradspec.adapters.torch_adapter:TorchAdapter")
    assert not import_probe.shipped("mypackage.adapter:MyAdapter")
