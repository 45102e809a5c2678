"""The isolation worker: each verdict belongs to the case it was asked for, whatever happened to earlier waits."""

from __future__ import annotations

import pytest
from gradspec.running.interpreter import FAILED, PASSED
from gradspec.running.isolation import Request, Worker

from .conftest import CASES

PASSING = str(CASES / "accumulation" / "user-grad-added-into.yaml")


@pytest.fixture
def worker():
    running = Worker()
    yield running
    running.stop()


class Interrupted(Exception):
    """What pytest-timeout or a signal handler raises into a wait."""


def test_an_interrupted_wait_does_not_shift_later_verdicts_to_the_next_case(worker, tmp_path, monkeypatch):
    """The worker answered the interrupted request after all, and that answer was read as the next case's verdict."""
    failing = tmp_path / "wrong.yaml"
    failing.write_text((CASES / "accumulation" / "user-grad-added-into.yaml").read_text().replace("14.0", "15.0"))
    assert worker.run(Request(PASSING, "reference", "cpu", "float64", False), 120).status == PASSED  # started
    real_poll = type(worker.connection).poll

    def interrupted(self, timeout=0.0):
        monkeypatch.setattr(type(worker.connection), "poll", real_poll)
        raise Interrupted("timeout")
    monkeypatch.setattr(type(worker.connection), "poll", interrupted)
    with pytest.raises(Interrupted):
        worker.run(Request(PASSING, "reference", "cpu", "float64", False), 120)
    outcome = worker.run(Request(str(failing), "reference", "cpu", "float64", False), 120)
    assert outcome.status == FAILED, outcome.message  # its own verdict, not the passing case's


class StaleAnswer:
    """A pipe holding an answer to an earlier request before the one to this request."""

    def __init__(self, connection):
        self.connection, self.first = connection, True

    def __getattr__(self, name):
        return getattr(self.connection, name)

    def recv(self):
        answer = self.connection.recv()
        if self.first:
            self.first = False
            return (answer[0] - 1, *answer[1:])
        return answer


def test_an_answer_to_another_request_discards_the_worker_and_the_case_runs_again(worker, tmp_path):
    failing = tmp_path / "wrong.yaml"
    failing.write_text((CASES / "accumulation" / "user-grad-added-into.yaml").read_text().replace("14.0", "15.0"))
    assert worker.run(Request(PASSING, "reference", "cpu", "float64", False), 120).status == PASSED
    first_process = worker.process
    worker.connection = StaleAnswer(worker.connection)
    outcome = worker.run(Request(str(failing), "reference", "cpu", "float64", False), 120)
    assert outcome.status == FAILED, outcome.message
    assert worker.process is not first_process  # the worker that answered out of turn was discarded


SLOW_ENGINE = """
import time
from gradspec.adapters.reference_adapter import ReferenceAdapter

time.sleep(3)  # an engine that takes seconds to import


class Slow(ReferenceAdapter):
    name = "slow-import"
"""

GRAD_MODE_LEAKING_ENGINE = """
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.reference_engine import grad_mode


class Leaky(ReferenceAdapter):
    name = "leaky"

    def backward(self, *args):
        super().backward(*args)
        grad_mode._state.enabled = False  # an engine that leaves global state behind
"""


def test_an_engine_slow_to_import_is_not_a_hanging_case(worker, tmp_path, monkeypatch):
    """The import counted against the first case's time limit: every case of a slow engine was 'the engine hangs'."""
    (tmp_path / "slow_engine.py").write_text(SLOW_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    outcome = worker.run(Request(PASSING, "slow_engine:Slow", "cpu", "float64", False), 2.0)
    assert outcome.status == PASSED, outcome.message
    assert worker.startup_seconds >= 3


def test_an_engine_that_cannot_load_is_an_error_naming_it(worker):
    outcome = worker.run(Request(PASSING, "no_such_module_here:Engine", "cpu", "float64", False), 30)
    assert outcome.status == "error" and "could not be loaded" in outcome.message


def test_each_engine_gets_its_own_worker(worker):
    assert worker.run(Request(PASSING, "reference", "cpu", "float64", False), 120).status == PASSED
    first = worker.process
    assert worker.run(Request(PASSING, "torch", "cpu", "float64", False), 120).status == PASSED
    assert worker.process is not first and worker.recycled == ["another engine (torch)"]


def test_a_worker_whose_case_left_grad_mode_off_is_replaced(worker, tmp_path, monkeypatch):
    """The next cases in that worker ran with grad mode off: correct cases failed for what an earlier one did."""
    (tmp_path / "leaky_engine.py").write_text(GRAD_MODE_LEAKING_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    request = Request(PASSING, "leaky_engine:Leaky", "cpu", "float64", False)
    assert worker.run(request, 120).status == PASSED
    assert worker.recycled == ["grad mode left off by a case"] and worker.process is None
    assert worker.run(request, 120).status == PASSED  # in a fresh worker, grad mode on again


def test_a_worker_past_its_memory_limit_is_replaced():
    worker = Worker(memory_limit=1)
    try:
        assert worker.run(Request(PASSING, "reference", "cpu", "float64", False), 120).status == PASSED
        assert worker.recycled and worker.recycled[0].startswith("memory grew to")
    finally:
        worker.stop()


PARENT_KILLED = """
import os, signal, sys
sys.path[:0] = {path!r}
from gradspec.running.isolation import Request, Worker
worker = Worker()
worker.run(Request({case!r}, "reference", "cpu", "float64", False), 120)
print(worker.process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_worker_dies_when_its_parent_is_killed():
    """pytest killed with SIGKILL left its workers running (at 100% CPU in an engine's loop)."""
    import os
    import subprocess
    import sys
    import time
    script = PARENT_KILLED.format(path=sys.path, case=PASSING)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    pid = int(run.stdout.split()[0])
    for _ in range(40):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.25)
    os.kill(pid, 9)
    raise AssertionError(f"worker {pid} still running 10 s after its parent was killed")


def test_engines_in_turn_each_keep_their_own_worker():
    """--engine all runs a case on each engine in turn: one worker for all had to import each engine again."""
    from gradspec.running.isolation import Workers
    workers = Workers()
    try:
        for _ in range(2):
            for engine in ("reference", "torch"):
                assert workers.run(Request(PASSING, engine, "cpu", "float64", False), 120).status == PASSED
        assert sorted(workers.by_engine) == ["reference", "torch"]
        assert all(not worker.recycled for worker in workers.by_engine.values())
    finally:
        workers.stop()


@pytest.mark.parametrize("limit", ["0", "-1", "nan", "inf", "1e300", "ten"])
def test_a_time_limit_that_cannot_work_is_a_usage_error(pytester, limit):
    """0 and negatives made every case an error, nan and inf let a hang run forever; all were accepted."""
    cases = pytester.path / "cases"
    cases.mkdir()
    (cases / "one.yaml").write_text((CASES / "accumulation" / "user-grad-added-into.yaml").read_text())
    result = pytester.runpytest("cases", "--engine", "reference", f"--gradspec-timeout={limit}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradspec-timeout*"])


COMPARISON_PATCHING_ENGINE = """
import gradspec.running.compare as compare
import gradspec.running.interpreter as interpreter
import gradspec.running.judge as judge
from gradspec.adapters.reference_adapter import ReferenceAdapter

# An adapter that makes every comparison pass in the process it runs in, wherever gradspec looks it up.
compare.array_mismatch = judge.array_mismatch = lambda *args, **kwargs: None
judge.judge_expect = interpreter.judge_expect = lambda *args, **kwargs: ([], None)


class Lenient(ReferenceAdapter):
    name = "lenient"
"""

EXPECT_SKIPPING_ENGINE = """
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.running import interpreter

interpreter._Run.do_expect = lambda self, step: None  # no expect step is ever judged


class Skipper(ReferenceAdapter):
    name = "skipper"
"""


def wrong_case(tmp_path):
    """user-grad-added-into.yaml expecting 15 where 10 + 4 is 14: every conforming engine fails it."""
    path = tmp_path / "wrong.yaml"
    path.write_text((CASES / "accumulation" / "user-grad-added-into.yaml").read_text().replace("14.0", "15.0"))
    return path


def test_an_adapter_that_patches_the_comparison_in_its_process_still_fails_a_wrong_case(worker, tmp_path, monkeypatch):
    """The judging ran inside the engine's process: such an adapter passed 44 of 45 cases while broken."""
    from gradspec.language.loader import load_case
    (tmp_path / "patching_engine.py").write_text(COMPARISON_PATCHING_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    case = load_case(wrong_case(tmp_path))
    outcome = worker.run(Request(str(case.path), "patching_engine:Lenient", "cpu", "float64", False, case=case), 120)
    assert outcome.status == FAILED, outcome.message
    assert outcome.message == ".grad of x: expected [15.], got [14.] (tolerance rtol=1e-12, atol=1e-12, float64)"
    assert "changed gradspec's own" in outcome.report()  # and it says the worker judged otherwise
    right = worker.run(Request(PASSING, "patching_engine:Lenient", "cpu", "float64", False), 120)
    assert right.status == PASSED, right.message  # where both judge alike, the worker's verdict stands


def test_a_pass_without_its_expect_steps_judged_is_no_verdict(worker, tmp_path, monkeypatch):
    (tmp_path / "skipping_engine.py").write_text(EXPECT_SKIPPING_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    outcome = worker.run(Request(str(wrong_case(tmp_path)), "skipping_engine:Skipper", "cpu", "float64", False), 120)
    assert outcome.status == "error", outcome.message
    assert "without judging the expect step at line 13" in outcome.message


def test_the_parsed_case_is_what_runs_and_its_values_stay_read_only(worker, tmp_path, monkeypatch):
    """The worker re-read the YAML of every case (most of isolation's cost); it gets the parsed case now, and a
    pickle must not make the case's arrays writable for an adapter that writes into them."""
    from gradspec.language.loader import load_case
    (tmp_path / "vandal_engine.py").write_text(
        "from gradspec.adapters.reference_adapter import ReferenceAdapter\n\n\n"
        "class Vandal(ReferenceAdapter):\n    name = 'vandal'\n\n"
        "    def tensor(self, value, requires_grad, dtype):\n        value[...] = 100.0\n"
        "        return super().tensor(value, requires_grad, dtype)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    case = load_case(wrong_case(tmp_path))
    gone = tmp_path / "gone.yaml"  # the path names no file: only the parsed case can run
    outcome = worker.run(Request(str(gone), "reference", "cpu", "float64", False, case=case), 120)
    assert outcome.status == FAILED and "expected [15.], got [14.]" in outcome.message
    again = worker.run(Request(str(gone), "reference", "cpu", "float32", False, case=case), 120)  # sent once
    assert again.status == FAILED and "expected [15.], got [14.]" in again.message and worker.last_case is case
    vandal = worker.run(Request(str(gone), "vandal_engine:Vandal", "cpu", "float64", False, case=case), 120)
    assert vandal.status == "error" and "read-only" in vandal.report(), vandal.report()


def test_a_prestarted_worker_is_the_one_that_runs_the_first_case(worker):
    """The plugin starts the first engine's worker while pytest collects: its start-up is not the first case's."""
    worker.prestart("reference")
    started = worker.process
    assert started is not None and not worker.ready
    assert worker.run(Request(PASSING, "reference", "cpu", "float64", False), 120).status == PASSED
    assert worker.process is started and worker.ready


def test_a_failure_only_the_engines_process_finds_is_no_verdict(worker, tmp_path, monkeypatch):
    """The other way round: a patched comparison that fails a conforming engine blames it for nothing."""
    (tmp_path / "strict_engine.py").write_text(COMPARISON_PATCHING_ENGINE.replace(
        "lambda *args, **kwargs: ([], None)", "lambda *args, **kwargs: (['made up'], None)").replace("Lenient", "Strict"))
    monkeypatch.syspath_prepend(str(tmp_path))
    outcome = worker.run(Request(PASSING, "strict_engine:Strict", "cpu", "float64", False), 120)
    assert outcome.status == "error" and outcome.message.startswith("no verdict"), outcome.report()
    assert "the engine's process found: made up" in outcome.report()
