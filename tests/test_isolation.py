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
            return (answer[0] - 1, answer[1])
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
