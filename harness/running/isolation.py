"""Run cases in a separate process, so that an engine that crashes or hangs costs that case and nothing else.

An engine is untrusted code: a segfault, an `os._exit`, or a hang inside it would take the
whole pytest run down with it, leaving no report, or worse a green exit code. The plugin
therefore hands each case to a worker process (one per pytest process, started on first
use and kept for the next cases) and waits at most a time limit. If the worker dies, the
case is an `error` saying how; if it does not answer in time, it is killed, the case is
an `error` saying so, and the next case gets a fresh worker.

The worker loads the case file and the adapter itself (by the `--engine` spec) with the
parent's sys.path, so adapters given as `package.module:Class` are found there too.

A worker serves one engine (`Workers` keeps one per engine): it imports the engine first, under
a start-up time limit of its own (an engine that takes seconds to import is not a hanging case),
and is replaced when asked for another engine, when a case left grad mode off behind it, or when it grew
past a memory limit, so that no engine's leftovers decide another case. It leads its own
process group (killed whole, with whatever the engine started) and exits when its parent does.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
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


STARTUP_TIMEOUT = 300.0  # seconds an engine may take to import, apart from any case's own time limit
MEMORY_LIMIT = 2 * 1024**3  # resident bytes after which a worker is replaced before the next case


class Worker:
    """One worker process for one engine, restarted after a crash, a hang, or state a case left behind."""

    def __init__(self, startup_timeout: float = STARTUP_TIMEOUT, memory_limit: int = MEMORY_LIMIT):
        self.process = None
        self.connection = None
        self.requests = 0
        self.engine: str | None = None  # the engine the running worker has imported
        self.startup_timeout, self.memory_limit = startup_timeout, memory_limit
        self.recycled: list[str] = []  # why each worker was replaced, for tests and diagnostics
        self.startup_seconds: float | None = None  # how long the running worker took to import its engine

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
            answered_id, outcome, recycle = answer
            if answered_id == tagged.id:
                if recycle:  # grad mode left off, or memory grown: the next case gets a fresh worker
                    self.recycled.append(recycle)
                    self.stop()
                return outcome
            self.stop()
        return Outcome(ERROR, "the engine's process answered another request than the one asked, twice, in fresh "
                              "processes: no verdict can be trusted to this case")

    def _ask(self, request: Request, timeout: float):
        """(id, outcome, why to recycle) as the worker answered, or an error Outcome of its own when it hung or
        died, or could not start."""
        if self.process is not None and self.engine != request.engine:
            self.recycled.append(f"another engine ({request.engine})")
            self.stop()
        if self.process is None or not self.process.is_alive():
            failed = self._start(request.engine)
            if failed is not None:
                return failed
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

    def _start(self, engine: str) -> Outcome | None:
        """A fresh worker that has imported `engine`, or the error Outcome saying why there is none."""
        context = multiprocessing.get_context("spawn")  # not fork: engines may hold threads and GPU contexts
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, list(sys.path), os.getpid(), engine,
                                                            self.memory_limit), daemon=True, name="gradspec-engine")
        self.process.start()
        child.close()
        self.engine = engine
        started = time.monotonic()
        if not self.connection.poll(self.startup_timeout):
            self.stop()
            return Outcome(ERROR, f"the engine {engine!r} did not start within {self.startup_timeout:g} s (importing "
                                  "it hangs); its process was killed")
        try:
            ready = self.connection.recv()
        except (EOFError, OSError):
            code = self._reap()
            return Outcome(ERROR, f"the process importing the engine {engine!r} died ({_describe_exit(code)})")
        self.startup_seconds = time.monotonic() - started
        return None if ready == "ready" else ready  # an error Outcome: the engine could not be loaded

    def _reap(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        process.join(timeout=5)
        return process.exitcode

    def stop(self) -> None:
        """Kill the worker's whole process group: the engine's own children (compilers, servers) too."""
        process = self.process
        if process is not None and process.is_alive():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):  # not its group's leader yet: the process alone
                process.kill()
        self._reap()
        self.engine = None


class Workers:
    """One worker per engine, so that cases of several engines in turn (--engine all) never share a process and
    never wait for an engine to be imported again."""

    def __init__(self, **options):
        self.options = options
        self.by_engine: dict[str, Worker] = {}

    def run(self, request: Request, timeout: float) -> Outcome:
        worker = self.by_engine.get(request.engine)
        if worker is None:
            worker = self.by_engine[request.engine] = Worker(**self.options)
        return worker.run(request, timeout)

    def stop(self) -> None:
        for worker in self.by_engine.values():
            worker.stop()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _serve(connection, path: list[str], parent: int, engine: str, memory_limit: int) -> None:
    """The worker: its own process group, a watch on its parent, the engine imported, then each requested case run
    and answered with (id, outcome, why the worker should be replaced or None), until the parent closes the pipe."""
    os.setsid()  # a group of its own, which stop() kills whole
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="gradspec-parent-watch").start()
    sys.path[:] = path
    from gradspec.language.loader import load_case
    from gradspec.running.interpreter import run_case
    from gradspec.running.registry import load_adapter

    try:
        adapter_cls = load_adapter(engine)
    except Exception as exc:  # noqa: BLE001 - the cases of an engine that cannot load are errors, with the reason
        connection.send(Outcome(ERROR, f"the engine {engine!r} could not be loaded: {type(exc).__name__}: {exc}"))
        return
    connection.send("ready")
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        adapter = None
        try:
            adapter = adapter_cls(request.device, request.dtype)
            outcome = run_case(load_case(request.case_path), adapter, tracebacks=request.tracebacks)
        except Exception as exc:  # noqa: BLE001 - whatever fails before a verdict is an error of this case
            message, details = no_verdict(exc, request.tracebacks)
            outcome = Outcome(ERROR, message, None, details)
        connection.send((request.id, outcome, _left_behind(adapter, memory_limit)))


def _left_behind(adapter, memory_limit: int) -> str | None:
    """Why this worker should not run another case: grad mode left off, or memory past the limit."""
    try:
        if adapter is not None and adapter.grad_enabled() is False:
            return "grad mode left off by a case"
    except Exception:  # noqa: BLE001 - an adapter that cannot say is given a fresh worker
        return "the adapter could not report grad mode"
    resident = _resident_bytes()
    if resident is not None and resident > memory_limit:
        return f"memory grew to {resident / 1024**2:.0f} MiB"
    return None


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: no recycling by memory
        return None


def _exit_with(parent: int) -> None:
    """Kill the worker's group once its parent is gone (pytest killed with SIGKILL): no engine left spinning."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.killpg(0, signal.SIGKILL)
