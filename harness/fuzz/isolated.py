"""Run each fuzz property in the engine's worker process, so that a draw that crashes or hangs costs that property,
with the draw staged as a case, and nothing else.

An engine that segfaults, calls `os._exit` or hangs inside a property's draw would otherwise end or stall the whole
pytest run (no JUnit, no report). So the plugin hands a fuzz property, as it hands a case, to the engine's worker
(gradspec.running.isolation: its own process group, killed with its parent, the engine's import timed apart), which
runs the property's test function there with the fixtures' values remade (the adapter made in the worker, hypothesis's
settings and database as pytest's process chose them). The worker tells of each draw before judging it
(gradspec.fuzz.draws); pytest's process gives every draw `--gradspec-timeout` seconds. When the worker dies or runs
out of time, its group is killed, a fresh worker stages the draw it was in with the property's own writer, and the
property is an error (DrawCrashed) that says what happened in which draw and where the case was written.

Hypothesis runs in the worker: it draws, shrinks and saves a failure to the example database there. A crashed draw is
staged but saved to no database, since hypothesis never saw it end.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from gradspec.fuzz import campaign, draws
from gradspec.running.isolation import Worker, left_behind

FIXTURES = frozenset({"gradspec_fuzz_engine", "gradspec_fuzz_adapter", "gradspec_fuzz_settings",
                      "gradspec_fuzz_staging"})


class PropertyError(Exception):
    """The property raised something in its worker that is not one of gradspec's failures (its type and traceback are
    in the message): no verdict on the engine."""


def applies(item: pytest.Item) -> bool:
    """Whether `item` runs in a worker: a fuzz property (a function asking for gradspec's fuzz fixtures and nothing
    else, whose values the worker can remake) under `--gradspec-isolation process`."""
    function = getattr(item, "function", None)
    if function is None or getattr(item, "cls", None) is not None:
        return False
    if item.config.getoption("--gradspec-isolation") != "process":
        return False
    names = set(inspect.signature(function).parameters)
    return "gradspec_fuzz_engine" in names and names <= FIXTURES


@dataclass(frozen=True)
class InWorker:
    """What the adapter fixture gives a property that runs in a worker: the worker makes the adapter itself, so that no
    engine code, its constructor included, runs in pytest's process."""

    engine: str
    device: str


@dataclass(frozen=True)
class StagedDraw:
    """A draw a worker died in, pickled by that worker, and what happened: a fresh worker stages it."""

    pickled: bytes
    message: str
    what: str


@dataclass(frozen=True)
class PropertyRequest:
    """One fuzz property on one engine and device, as the worker runs it (see `serve`)."""

    module: str  # the test function, found again in the worker by module and name
    function: str
    engine: str  # as given to --engine
    device: str
    settings: dict  # every hypothesis setting but the database, by name: the worker makes its settings from them
    databases: tuple[str, ...]  # --fuzz-database
    test_name: str  # the test's place in each database (campaign.Databases.for_test)
    default_database: object  # the profile's database, where it pickles (else None)
    staging: str
    seed: int | None  # --hypothesis-seed
    path: tuple[str, ...] = ()  # pytest's sys.path now (collection adds to it after the worker started)
    cwd: str = "."  # pytest's working folder now, which a relative --fuzz-staging and database are relative to
    replay: StagedDraw | None = None  # stage this draw instead of drawing

    @classmethod
    def of(cls, item: pytest.Item) -> PropertyRequest:
        """The request for the fuzz property `item`, from its fixtures' values and this process's options."""
        from hypothesis import core, settings
        engine, device = item.funcargs["gradspec_fuzz_engine"]
        return cls(item.function.__module__, item.function.__name__, engine.name, device,
                   _values(item.funcargs.get("gradspec_fuzz_settings") or settings()),
                   tuple(item.config.getoption("--fuzz-database")), item.name, _portable(settings().database),
                   str(item.config.getoption("--fuzz-staging")), core.global_force_seed, tuple(sys.path), os.getcwd())

    def serve(self, connection, adapter_cls, memory_limit: int) -> None:
        """In the worker: run the property, telling of each draw, then send ("done", result, why to recycle)."""
        from hypothesis import core

        adapter = None
        try:
            replay = None if self.replay is None else draws.Replay(
                pickle.loads(self.replay.pickled), draws.DrawCrashed(self.replay.message, self.replay.what))
            sys.path[:] = self.path
            os.chdir(self.cwd)
            function = getattr(importlib.import_module(self.module), self.function)
            adapter = adapter_cls(self.device, "float64")
            values = self._fixtures(adapter_cls, adapter)
            core.global_force_seed = self.seed
            draws.current = draws.Watch(connection.send, replay)
            function(**{name: values[name] for name in inspect.signature(function).parameters})
            result = ("passed",)
        except pytest.skip.Exception as exc:
            result = ("skipped", exc.msg)
        except BaseException as exc:  # noqa: BLE001 - whatever the property raised is its result, the worker goes on
            result = _failure(exc)
        finally:
            draws.current = None
        connection.send(("done", result, left_behind(adapter, memory_limit)))

    def _fixtures(self, adapter_cls, adapter) -> dict:
        from gradspec.plugin import EngineChoice
        from hypothesis import settings
        database = _databases(self.databases).for_test(self.test_name, self.default_database)
        return {"gradspec_fuzz_engine": (EngineChoice(self.engine, adapter_cls), self.device),
                "gradspec_fuzz_adapter": adapter,
                # on top of the others, as the plugin's fixture does (derandomize=True refuses a database beside it)
                "gradspec_fuzz_settings": settings(settings(**self.settings),
                                                   database=self.default_database if database is None else database),
                "gradspec_fuzz_staging": Path(self.staging)}


def _values(chosen) -> dict:
    """Every setting of `chosen` but its database, as plain values: a settings object pickles the settings it was made
    from too, databases (a Redis client, which does not pickle) included."""
    from hypothesis import settings
    names = [name for name in inspect.signature(settings).parameters if name not in ("parent", "database")]
    return {name: getattr(chosen, name) for name in names}


def _portable(database):
    """The profile's database where it pickles (a folder), else None: a profile's Redis database stays behind (one
    given with --fuzz-database is opened again in the worker)."""
    try:
        pickle.dumps(database)
    except Exception:  # noqa: BLE001 - whatever pickle refuses
        return None
    return database


_opened: dict[tuple[str, ...], campaign.Databases] = {}  # in a worker: each --fuzz-database set opened once


def _databases(values: tuple[str, ...]) -> campaign.Databases:
    if values not in _opened:
        _opened[values] = campaign.Databases.open(values)
    return _opened[values]


def _failure(exc: BaseException) -> tuple:
    """A property's exception as plain data: pytest's process raises its own copy (never unpickling the worker's)."""
    import traceback
    message = getattr(exc, "msg", None) if isinstance(exc, pytest.fail.Exception) else None
    trace = "".join(traceback.format_exception(exc))
    return ("failed", type(exc).__module__, type(exc).__qualname__, message or str(exc), trace[-20000:])


# -- in pytest's process --------------------------------------------------------------------------------------------


@dataclass
class Ended:
    """A worker that died or ran out of time, and the last draw it told of (None: before any)."""

    exit: str | None  # how its process ended (e.g. "killed by signal SIGSEGV"); None: it was killed after `timeout`
    timeout: float
    draw: tuple | None  # ("draw", number, noun, pickled or None, why not pickled)
    staging: bool  # it was writing the case of a failure it had found

    def message(self, noun: str = "draw", number: int | None = None) -> str:
        """What happened, where: in which draw (`noun` `number`), while staging a failure, or before any draw."""
        if self.staging:
            where = f"writing the case of the failure found after {noun} {number}"
        else:
            where = f"{noun} {number}" if number is not None else "the property before its first draw"
        if self.exit is None:
            return (f"{where} of this property did not finish within {self.timeout:g} s (--gradspec-timeout, per "
                    "draw): the engine hangs, or is slower than that; its process was killed (no verdict; the run "
                    "went on)")
        return f"the engine's process died ({self.exit}) in {where} of this property (no verdict; the run went on)"

    @property
    def what(self) -> str:
        return "the engine hung" if self.exit is None else f"the engine's process died ({self.exit})"


def run(worker: Worker, request: PropertyRequest, timeout: float) -> None:
    """Run the property in `worker`: return if it passed; raise its skip, its failure, or DrawCrashed when its process
    died or hung (after staging that draw in a fresh worker)."""
    __tracebackhide__ = True
    ended = _watch(worker, request, timeout)
    if isinstance(ended, Ended):
        ended = _staged(worker, request, ended, timeout)
    _raise(ended)


def _watch(worker: Worker, request: PropertyRequest, timeout: float):
    """The worker's result ("passed", ...), or Ended: how it ended and in which draw."""
    failed = worker.start(request.engine)
    if failed is not None:
        return ("failed", "", "", failed.message, "")
    draw, staging = None, False
    try:
        try:
            worker.connection.send(request)
        except OSError:  # it died after saying it was ready
            return Ended(worker.ended(), timeout, draw, staging)
        while True:
            if not worker.connection.poll(timeout):
                worker.stop()
                return Ended(None, timeout, draw, staging)
            try:
                message = worker.connection.recv()
            except (EOFError, OSError):
                return Ended(worker.ended(), timeout, draw, staging)
            if message[0] == "done":
                _, result, recycle = message
                if recycle:
                    worker.recycled.append(recycle)
                    worker.stop()
                return result
            if message[0] == "draw":
                draw = message
            staging = message[0] == "staging"
    except BaseException:  # an interrupted wait or an answer that cannot be read: that worker is not used again
        worker.stop()
        raise


def _staged(worker: Worker, request: PropertyRequest, ended: Ended, timeout: float) -> tuple:
    """The failure of a property whose worker died or hung, with its draw staged by a fresh worker where it can be."""
    if ended.draw is None:
        return _crashed(ended.message())
    _, number, noun, pickled, why = ended.draw
    message = ended.message(noun, number)
    if pickled is None:
        return _crashed(f"{message}; the {noun} could not be recorded ({why}), so none was staged")
    staged = _watch(worker, replace(request, replay=StagedDraw(pickled, message, ended.what)), timeout)
    if isinstance(staged, Ended):
        return _crashed(f"{message}; staging the {noun} in a fresh process failed too ({staged.what})")
    if staged[0] == "failed" and (staged[1], staged[2]) == (draws.__name__, draws.DrawCrashed.__qualname__):
        return staged
    reason = staged[3] if staged[0] == "failed" else f"the property was {staged[0]} when asked to stage it"
    return _crashed(f"{message}; the {noun} could not be staged: {(reason.splitlines() or ['?'])[0]}")


def _crashed(message: str) -> tuple:
    return ("failed", draws.__name__, draws.DrawCrashed.__qualname__, message, "")


def _raise(result: tuple) -> None:
    """Pass, skip or fail as the property did in its worker, with an exception of pytest's process's own making."""
    __tracebackhide__ = True
    if result[0] == "passed":
        return
    if result[0] == "skipped":
        pytest.skip(result[1])
    _, module, name, message, trace = result
    failure = _known_failure(module, name)
    if failure is not None:
        try:
            known = failure(message)
        except Exception:  # noqa: BLE001 - a type made otherwise is reported as a PropertyError
            known = None
        if known is not None:
            raise known
    error = PropertyError(f"{module}.{name}: {message}" if name else message)
    if trace:
        error.add_note(f"in the engine's worker process:\n{trace}")
    raise error


def _known_failure(module: str, name: str) -> type | None:
    """gradspec's own failure types (a finite-difference mismatch, a disagreement with the reference engine, a crashed
    draw), raised again as themselves; anything else is a PropertyError naming it."""
    if not module.startswith("gradspec."):
        return None
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) and issubclass(found, (AssertionError, draws.DrawCrashed)) else None
