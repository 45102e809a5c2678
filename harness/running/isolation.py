"""Run cases in a separate process, so that an engine that crashes or hangs costs that case and nothing else.

An engine is untrusted code: a segfault, an `os._exit`, or a hang inside it would take the
whole pytest run down with it, leaving no report, or worse a green exit code. The plugin
therefore hands each case to a worker process (one per pytest process, started on first
use and kept for the next cases) and waits at most a time limit. If the worker dies, the
case is an `error` saying how; if it does not answer in time, it is killed, the case is
an `error` saying so, and the next case gets a fresh worker.

The worker gets the parsed case (a pickle costs far less than reading and validating the YAML again, which
made isolation cost +64% on the corpus), once for all the dtypes of a case in a row, and loads the adapter
itself (by the `--engine` spec) with the parent's sys.path, so adapters given as `package.module:Class` are
found there too. The plugin starts the first engine's worker while pytest collects (prestart), so that
importing the engine overlaps collection.

The verdict is made here, in pytest's process: the worker sends back, with its outcome, what each `expect`
step observed (values as arrays, .grad, flags, hook calls: judge.Judgment), and `rejudge` judges those again
with this process's own code. An adapter that patches gradspec's comparison inside the engine's process
(to pass a wrong case) changes nothing but the worker's own opinion, which then disagrees and is overruled.

A worker serves one engine (`Workers` keeps one per engine): it imports the engine first, under
a start-up time limit of its own (an engine that takes seconds to import is not a hanging case),
and is replaced when asked for another engine, when a case left grad mode off behind it, or when it grew
past a memory limit, so that no engine's leftovers decide another case. It leads its own
process group (killed whole, with whatever the engine started) and exits when its parent does.
The same worker runs the engine's fuzz properties (gradspec.fuzz.isolated), each draw under the time limit.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.reduction
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import MappingProxyType

from gradspec.language.case import Case
from gradspec.running.interpreter import ERROR, FAILED, NOT_APPLICABLE, PASSED, Outcome, no_verdict
from gradspec.running.judge import Judgment, expect_steps, judge_expect


@dataclass(frozen=True)
class Request:
    case_path: str
    engine: str  # as given to --engine: an entry point name or package.module:Class
    device: str
    dtype: str
    tracebacks: bool
    id: int = 0  # the worker answers (id, outcome, ...): an answer to another request is never taken for this one
    case: Case | None = None  # the parsed case, sent as it is (the worker reads case_path only without it)
    same_case: bool = False  # the case is the one the worker ran last (sent once for all dtypes of a case file)


def _mapping(items: dict) -> MappingProxyType:
    return MappingProxyType(items)


# A Case keeps its step arguments as read-only mappings, which pickle cannot write by itself.
multiprocessing.reduction.ForkingPickler.register(MappingProxyType, lambda proxy: (_mapping, (dict(proxy),)))


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
        self.ready = False  # whether the running worker said it has imported its engine
        self.spawned = 0.0  # when it was started (time.monotonic)
        self.last_case: Case | None = None  # the case the running worker was last sent

    def prestart(self, engine: str) -> None:
        """Start a worker for `engine` without waiting for it, so that its start-up overlaps other work (the plugin
        does this while pytest collects); the first case waits for it as for any start."""
        if self.process is None:
            try:
                self._spawn(engine)
            except Exception:  # noqa: BLE001 - the first case starts it again and says why it cannot
                self.stop()

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
            if not (isinstance(answer, tuple) and len(answer) == 4 and isinstance(answer[1], Outcome)):
                self.stop()
                return Outcome(ERROR, f"the engine's process answered something else than a verdict "
                                      f"({type(answer).__name__}): no verdict; the run went on in a fresh one")
            answered_id, outcome, judgments, recycle = answer
            if answered_id == tagged.id:
                if recycle:  # grad mode left off, or memory grown: the next case gets a fresh worker
                    self.recycled.append(recycle)
                    self.stop()
                return rejudge(request.case or _load(request.case_path), outcome, judgments)
            self.stop()
        return Outcome(ERROR, "the engine's process answered another request than the one asked, twice, in fresh "
                              "processes: no verdict can be trusted to this case")

    def start(self, engine: str) -> Outcome | None:
        """None once a worker for `engine` is running and has imported it (started now if need be), or the error
        Outcome saying why none could be."""
        if self.process is not None and self.engine != engine:
            self.recycled.append(f"another engine ({engine})")
            self.stop()
        if self.process is None or not self.process.is_alive():
            self._spawn(engine)
        return None if self.ready else self._await_ready()

    def ended(self) -> str:
        """How the worker's process ended, once its pipe has closed (it is then forgotten: the next use starts one)."""
        return describe_exit(self._reap())

    def _ask(self, request: Request, timeout: float):
        """(id, outcome, why to recycle) as the worker answered, or an error Outcome of its own when it hung or
        died, or could not start."""
        failed = self.start(request.engine)
        if failed is not None:
            return failed
        case = request.case
        if case is not None and case is self.last_case:  # the worker holds it: all dtypes of a case come in a row
            request = dataclasses.replace(request, case=None, same_case=True)
        self.connection.send(request)
        self.last_case = case
        if not self.connection.poll(timeout):
            self.stop()
            return Outcome(ERROR, f"no verdict within {timeout:g} s: the engine hangs (or is slower than "
                                  "--gradspec-timeout); its process was killed and the run went on")
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            return Outcome(ERROR, f"the process running the engine died ({self.ended()}) before a verdict; "
                                  "the run went on in a fresh one")
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be unpickled is no verdict
            self.stop()
            return Outcome(ERROR, f"the engine's process sent back an answer that cannot be read "
                                  f"({type(exc).__name__}: {str(exc)[:200]}); the run went on in a fresh one")

    def _spawn(self, engine: str) -> None:
        """Start a fresh worker for `engine`; _await_ready waits until it has imported it."""
        context = multiprocessing.get_context("spawn")  # not fork: engines may hold threads and GPU contexts
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, list(sys.path), os.getpid(), engine,
                                                            self.memory_limit), daemon=True, name="gradspec-engine")
        self.engine, self.ready, self.last_case, self.spawned = engine, False, None, time.monotonic()
        self.process.start()
        child.close()

    def _await_ready(self) -> Outcome | None:
        """None once the worker has imported its engine, or the error Outcome saying why it has not."""
        engine = self.engine
        if not self.connection.poll(self.startup_timeout):
            self.stop()
            return Outcome(ERROR, f"the engine {engine!r} did not start within {self.startup_timeout:g} s (importing "
                                  "it hangs); its process was killed")
        try:
            ready = self.connection.recv()
        except (EOFError, OSError):
            return Outcome(ERROR, f"the process importing the engine {engine!r} died ({self.ended()})")
        self.startup_seconds = time.monotonic() - self.spawned
        self.ready = ready == "ready"
        return None if self.ready else ready  # an error Outcome: the engine could not be loaded

    def _reap(self) -> int | None:
        process, self.process = self.process, None
        if process is None or process.pid is None:  # never started (spawn refused)
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
        self.engine, self.ready, self.last_case = None, False, None


class Workers:
    """One worker per engine, so that cases of several engines in turn (--engine all) never share a process and
    never wait for an engine to be imported again."""

    def __init__(self, **options):
        self.options = options
        self.by_engine: dict[str, Worker] = {}

    def run(self, request: Request, timeout: float) -> Outcome:
        return self.for_engine(request.engine).run(request, timeout)

    def prestart(self, engine: str) -> None:
        """Start `engine`'s worker now, without waiting (Worker.prestart)."""
        self.for_engine(engine).prestart(engine)

    def for_engine(self, engine: str) -> Worker:
        worker = self.by_engine.get(engine)
        if worker is None:
            worker = self.by_engine[engine] = Worker(**self.options)
        return worker

    def stop(self) -> None:
        for worker in self.by_engine.values():
            worker.stop()


def rejudge(case: Case, outcome: Outcome, judgments: list[Judgment] | None) -> Outcome:
    """The worker's outcome, unless this process, judging the observations it sent back, finds otherwise.

    Where both judged an `expect` step alike, the worker's outcome stands (it also covers what no expect step
    judges: errors raised, warnings). Where this process finds a problem the worker did not, the case fails there,
    saying so; where the worker found one this process does not, there is no verdict. A pass must have judged every
    expect step the run had to reach (a worker whose interpreter skipped them would pass anything).
    """
    if outcome.status == NOT_APPLICABLE:
        return outcome
    if judgments is None:
        return Outcome(ERROR, "the engine's process could not send back what it observed (see the worker's "
                              "reason in its outcome), so no verdict can be made outside it", outcome.step,
                       (outcome.report(),))
    expects = list(expect_steps(case.steps))
    for judgment in judgments:
        if not (isinstance(judgment, Judgment) and isinstance(judgment.index, int) and 0 <= judgment.index < len(expects)):
            return Outcome(ERROR, "the engine's process sent back the judgment of an expect step this case does not "
                                  "have: no verdict")
        step = expects[judgment.index][0]
        try:
            problems, tensor = judge_expect(step.args["expect"], judgment.observed, case.tolerance)
        except Exception as exc:  # noqa: BLE001 - malformed observations are no verdict
            return Outcome(ERROR, f"the observations the engine's process sent back for {judgment.step} cannot be "
                                  f"judged ({type(exc).__name__}: {str(exc)[:200]}): no verdict", line=step.line)
        if tuple(problems) == tuple(judgment.problems):
            continue
        message = problems[0] if len(problems) == 1 else f"{len(problems)} expectations failed"
        details = tuple(problems) if len(problems) > 1 else ()
        if problems and judgment.problems:  # both fail it (a repr may differ between processes): in this one's words
            return Outcome(FAILED, message, judgment.step, details, step.line, tensor)
        note = (f"in the engine's process, gradspec's comparison found {'nothing wrong' if problems else 'a problem'} "
                "here: code in that process (the engine or its adapter) changed gradspec's own; this verdict was "
                "judged again outside it")
        if problems:
            return Outcome(FAILED, message, judgment.step, (*details, note), step.line, tensor)
        return Outcome(ERROR, f"no verdict: {note}, which finds nothing wrong", judgment.step,
                       (f"the engine's process found: {judgment.problems[0]}",), line=step.line)
    if outcome.status == PASSED:
        judged = {judgment.index for judgment in judgments}
        missed = [step for index, (step, required) in enumerate(expects) if required and index not in judged]
        if missed:
            return Outcome(ERROR, f"the engine's process reported a pass without judging the expect step at line "
                                  f"{missed[0].line} ({len(missed)} of {len(expects)} expect steps not judged): code "
                                  "in that process changed gradspec's own, so no verdict", line=missed[0].line)
    return outcome


def _load(path: str) -> Case:
    from gradspec.language.loader import load_case
    return load_case(path)


def describe_exit(code: int | None) -> str:
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
    and answered with (id, outcome, why the worker should be replaced or None), until the parent closes the pipe.

    A request of another kind (a fuzz property: gradspec.fuzz.isolated.PropertyRequest) serves itself: its `serve`
    answers through the pipe as its own protocol says, so the same worker, its engine imported once, runs both."""
    os.setsid()  # a group of its own, which stop() kills whole
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="gradspec-parent-watch").start()
    sys.path[:] = path
    from gradspec.running.interpreter import run_case
    from gradspec.running.registry import load_adapter

    try:
        adapter_cls = load_adapter(engine)
    except Exception as exc:  # noqa: BLE001 - the cases of an engine that cannot load are errors, with the reason
        connection.send(Outcome(ERROR, f"the engine {engine!r} could not be loaded: {type(exc).__name__}: {exc}"))
        return
    connection.send("ready")
    last = None  # the case run last, which a request with same_case runs again
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if not isinstance(request, Request):
            request.serve(connection, adapter_cls, memory_limit)
            continue
        adapter, judgments = None, []
        try:
            case = last if request.same_case and last is not None else request.case or _load(request.case_path)
            last = case
            _read_only(case)
            adapter = adapter_cls(request.device, request.dtype)
            outcome = run_case(case, adapter, tracebacks=request.tracebacks, judgments=judgments)
        except Exception as exc:  # noqa: BLE001 - whatever fails before a verdict is an error of this case
            message, details = no_verdict(exc, request.tracebacks)
            outcome = Outcome(ERROR, message, None, details)
        recycle = left_behind(adapter, memory_limit)
        try:
            connection.send((request.id, outcome, judgments, recycle))
        except Exception as exc:  # noqa: BLE001 - observations pickle cannot write (an engine's own objects)
            outcome = Outcome(outcome.status, f"{outcome.message} [its observations could not be sent back: "
                                              f"{type(exc).__name__}: {str(exc)[:200]}]", outcome.step)
            connection.send((request.id, outcome, None, recycle))


def _read_only(case: Case) -> None:
    """Tensor values as the loader left them, read-only: a pickle gives back writable arrays, and an adapter writing
    into a case's value must fail as it does without isolation."""
    for decl in case.tensors:
        decl.value.flags.writeable = False


def left_behind(adapter, memory_limit: int) -> str | None:
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
