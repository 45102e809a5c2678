"""Run cases in a separate process, so that an engine that crashes or hangs costs that case and nothing else.

An engine is untrusted code: a segfault, an `os._exit`, or a hang inside it would take the
whole pytest run down with it, leaving no report, or worse a green exit code. The plugin
therefore hands each case to a worker process (one per pytest process, started on first
use and kept for the next cases) and waits at most a time limit. If the worker dies, the
case is an `error` saying how; if it does not answer in time, it is killed, the case is
an `error` saying so, and the next case gets a fresh worker.

The worker loads the case file and the adapter itself (by the `--engine` spec) with the
parent's sys.path, so adapters given as `package.module:Class` are found there too.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import sys
from dataclasses import dataclass

from gradspec.running.interpreter import ERROR, Outcome, no_verdict


@dataclass(frozen=True)
class Request:
    case_path: str
    engine: str  # as given to --engine: an entry point name or package.module:Class
    device: str
    dtype: str
    tracebacks: bool
    id: int = 0  # the worker answers (id, outcome): an answer to another request is never taken for this one


class Worker:
    """One worker process, restarted after a crash or a hang."""

    def __init__(self):
        self.process = None
        self.connection = None
        self.requests = 0

    def run(self, request: Request, timeout: float) -> Outcome:
        """The outcome of `request`, from a worker whose every answer so far matched its request.

        A wait interrupted from outside (pytest-timeout, a signal handler's exception) leaves the worker's answer
        to that request in the pipe, where the next request would read it as its own: every later verdict of the
        worker would belong to the case before. So an interrupted wait discards the worker, and an answer tagged
        with another request's id discards it too (the request is then run once more, in a fresh worker).
        """
        for _attempt in range(2):
            self.requests += 1
            tagged = dataclasses.replace(request, id=self.requests)
            try:
                answer = self._ask(tagged, timeout)
            except BaseException:
                self.stop()
                raise
            if isinstance(answer, Outcome):
                return answer
            answered_id, outcome = answer
            if answered_id == tagged.id:
                return outcome
            self.stop()
        return Outcome(ERROR, "the engine's process answered another request than the one asked, twice, in fresh "
                              "processes: no verdict can be trusted to this case")

    def _ask(self, request: Request, timeout: float):
        """(id, outcome) as the worker answered, or an error Outcome of its own when it hung or died."""
        if self.process is None or not self.process.is_alive():
            self._start()
        self.connection.send(request)
        if not self.connection.poll(timeout):
            self.stop()
            return Outcome(ERROR, f"no verdict within {timeout:g} s: the engine hangs (or is slower than "
                                  "--gradspec-timeout); its process was killed and the run went on")
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            code = self._reap()
            return Outcome(ERROR, f"the process running the engine died ({_describe_exit(code)}) before a verdict; "
                                  "the run went on in a fresh one")

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # not fork: engines may hold threads and GPU contexts
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, list(sys.path)), daemon=True,
                                       name="gradspec-engine")
        self.process.start()
        child.close()

    def _reap(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        process.join(timeout=5)
        return process.exitcode

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        self._reap()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _serve(connection, path: list[str]) -> None:
    """The worker's loop: run each requested case, answer with its Outcome, until the parent closes the pipe."""
    sys.path[:] = path
    from gradspec.language.loader import load_case
    from gradspec.running.interpreter import run_case
    from gradspec.running.registry import load_adapter

    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        try:
            adapter = load_adapter(request.engine)(request.device, request.dtype)
            outcome = run_case(load_case(request.case_path), adapter, tracebacks=request.tracebacks)
        except Exception as exc:  # noqa: BLE001 - whatever fails before a verdict is an error of this case
            message, details = no_verdict(exc, request.tracebacks)
            outcome = Outcome(ERROR, message, None, details)
        connection.send((request.id, outcome))
