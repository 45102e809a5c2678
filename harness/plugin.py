"""The pytest plugin: every case file becomes one test per engine, device and dtype.

Ids read `cases/accumulation/x.yaml::torch-cpu-float64`. A broken case file is one
collection error naming file, line and column; the other cases still run. An engine or
device asked for that cannot run here is a usage error with the reason (with `--engine
all`, those not installed are skipped and the summary says why); a case that needs a
capability the engine lacks is skipped as not applicable. A run that judges nothing fails, and
so does a fuzz run whose every property was skipped.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from html import escape
from pathlib import Path

import pytest
from gradspec import __version__, contracts, paths
from gradspec.fuzz import campaign, isolated
from gradspec.language.case import Case
from gradspec.language.errors import CaseFileError, did_you_mean
from gradspec.language.graph import case_graph, node_at
from gradspec.language.loader import is_case_file, load_case, loops_back
from gradspec.printable import shown
from gradspec.reports import html, markdown
from gradspec.reports.report import UNFINISHED, ReportBuilder, is_final
from gradspec.reports.tables import JUDGED, OUTCOMES
from gradspec.running import expectations, import_probe
from gradspec.running.interpreter import ERROR, FAILED, NOT_APPLICABLE, Outcome, run_case
from gradspec.running.isolation import Request, Workers
from gradspec.running.registry import EngineNotFound, default_engines, load_adapter, registered

ALL_DTYPES = ("float64", "float32")

try:  # a derandomized profile for CI: pytest --hypothesis-profile ci (a project's own "ci" profile overrides it)
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
except ImportError:  # pragma: no cover - hypothesis is a dependency
    pass
KNOWN_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class EngineChoice:
    name: str  # as given: an entry point name or package.module:Class
    adapter: type

    @property
    def label(self) -> str:
        """The engine's name in test ids and reports."""
        return self.adapter.name or self.name

    @cached_property
    def info(self) -> dict:
        """Version and capabilities for reports; plain types, since pytest-xdist sends them between processes."""
        try:
            version = str(self.adapter.version())
        except Exception as exc:  # noqa: BLE001 - the adapter's fault, reported, never a broken case file
            version = f"unknown (version() raised {type(exc).__name__}: {str(exc)[:200]})"
        # spec: the --engine value that selects it again, for a report's reproduction commands
        return {"version": version, "capabilities": sorted(self.adapter.capabilities), "spec": self.name}


def time_limit(text: str) -> float:
    """A case's time limit: a finite number of seconds above 0 and at most a week (0, nan or inf would make every
    case an error, or none ever one)."""
    import argparse
    import math
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(seconds) and 0 < seconds <= 7 * 24 * 3600):
        raise argparse.ArgumentTypeError(f"{text!r}: a time limit is a number of seconds above 0 and at most "
                                         "604800 (a week)")
    return seconds


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradspec", "gradspec conformance cases")
    group.addoption("--engine", action="append", default=[], metavar="NAME",
                    help="engine to run the cases on: a registered name (torch, reference, jax, ...), "
                         "package.module:AdapterClass, or `all` for every registered engine; repeat or "
                         "comma-separate for several "
                         "(default: the built-in engines that are installed)")
    group.addoption("--device", action="append", default=[], metavar="DEVICE",
                    help="device(s) to run on: cpu, cuda (default: every device the engine has; "
                         "devices this machine lacks are skipped)")
    group.addoption("--dtype", action="append", default=[], metavar="DTYPE",
                    help="dtype(s) to run in: float64, float32 (default: every dtype the engine supports)")
    group.addoption("--gradspec-report", metavar="PATH", help="write a JSON conformance report (spec/report.schema.json)")
    group.addoption("--gradspec-markdown", metavar="PATH", help="write a Markdown summary (for a CI job summary)")
    group.addoption("--gradspec-html", metavar="PATH", help="write a self-contained HTML report")
    group.addoption("--expectations", action="append", default=[], metavar="FILE",
                    help="a known-failures file: `<case id>[::run] <reason>` per line; listed failures are "
                         "expected failures and do not fail the run (repeatable); gradspec:NAME is a shipped file; "
                         "`gradspec expectations REPORT.json` writes one from a run")
    group.addoption("--strict-expectations", action="store_true",
                    help="fail on a listed case that passes and on an id that matches no collected case, and refuse "
                         "a line whose reason is still the placeholder `gradspec expectations` wrote")
    group.addoption("--gradspec-traceback", action="store_true",
                    help="show the whole traceback of an engine or adapter exception in a failure")
    group.addoption("--gradspec-isolation", choices=("process", "none"), default="process",
                    help="run engines in a worker process, so that a crash or a hang costs one case or fuzz "
                         "property (default), or in pytest's own process (none: for a debugger)")
    group.addoption("--gradspec-timeout", type=time_limit, default=600.0, metavar="SECONDS",
                    help="the longest one case, or one fuzz draw, may take before it is an error and its process is "
                         "killed (default 600; with --gradspec-isolation process)")
    fuzz = parser.getgroup("gradspec-fuzz", "gradspec fuzzing (pytest --pyargs gradspec.fuzz)")
    fuzz.addoption("--fuzz-examples", type=int, default=100, metavar="N",
                   help="random graphs per fuzz property and engine (0 turns fuzzing off; default 100)")
    fuzz.addoption("--fuzz-staging", default="fuzz-staging", metavar="DIR",
                   help="where shrunk failing draws are written as case files (default fuzz-staging/, "
                        "outside the corpus)")
    fuzz.addoption("--fuzz-database", action="append", default=[], metavar="URL",
                   help="hypothesis example database, shared by workers, jobs and machines: a folder (one CI keeps "
                        "between runs, or on a shared file system), redis://host:port/db (needs gradspec[campaign]), "
                        "either after readonly: to replay without saving; repeat to use several "
                        "(default: hypothesis's own, .hypothesis/examples)")


def _junit_classname(config: pytest.Config, report: pytest.TestReport, case_id: str) -> None:
    """JUnit classname `cases.area.case` instead of pytest's `cases.area.case.yaml` (made from the file name).

    pytest offers no public way to set it outside a test function, so this uses its JUnit
    plugin's node reporter, and does nothing where that is not there.
    """
    try:
        from _pytest.junitxml import xml_key
        xml = config.stash.get(xml_key, None)
        if xml is not None:
            stem = case_id.rsplit(".", 1)[0].replace("/", ".")
            xml.node_reporter(report).add_attribute("classname", f"cases.{stem}")
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - another pytest's internals
        pass


def _stop_as_if_interrupted(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


write_atomically = paths.write_atomically  # the old file or the new one, never half of one (tests replace it here)


def _check_writable(outputs: dict[str, str | None], inputs: list[str]) -> None:
    """A report that cannot be written, or must not be (a device, a FIFO, a case file, another report's path), is a
    usage error now, not a surprise after the whole run; nothing is created before the run has something to write."""
    try:
        paths.writable_outputs(outputs, inputs)
    except paths.BadPath as exc:
        raise pytest.UsageError(f"cannot write the report: {exc}") from None


REPORT_OPTIONS = ("--gradspec-report", "--gradspec-markdown", "--gradspec-html")


def _begin_reports(config: pytest.Config) -> None:
    """Check the report paths, then put an unfinished report (ReportBuilder.unfinished) at each, which the end of the
    run replaces: a usage error, a crash, or a kill (SIGKILL included) before then leaves reports that say so, never
    the reports of an earlier run. SIGTERM (a CI job's timeout) stops the run as Ctrl-C does, so that the reports are
    still written, marked incomplete. The controller only: pytest-xdist's workers write no report."""
    if hasattr(config, "workerinput") or config.getoption("help", False) or config.getoption("markers", False):
        return
    reports = {option: config.getoption(option) for option in REPORT_OPTIONS}
    junit = config.getoption("xmlpath", None)
    inputs = [*config.args, *(str(expectations.resolve_path(p)) for p in config.getoption("--expectations"))]
    _check_writable({**reports, "--junitxml": junit}, inputs)  # pytest's --junitxml too
    if not any(reports.values()) and not junit:
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_as_if_interrupted)
    with _signals_held() as arrived:  # each file whole: a marker or the earlier report, never a half-written one
        _write_all(config, ReportBuilder.unfinished(), [])
        if junit:  # pytest writes its own at the end; until then, one error saying the run has not finished
            with contextlib.suppress(OSError):
                write_atomically(Path(junit), UNFINISHED_JUNIT)
    if arrived:  # Ctrl-C or SIGTERM while they were written: stopped now, the markers say so
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(arrived[0]).name}")


UNFINISHED_JUNIT = ('<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="gradspec" errors="1" '
                    'failures="0" skipped="0" tests="1"><testcase classname="gradspec" name="run not finished">'
                    f'<error message="{escape(UNFINISHED, quote=True)}"/></testcase></testsuite></testsuites>\n')


def _write_all(config: pytest.Config, data: dict, unwritten: list[str]) -> None:
    """Each report on its own and atomically: one that cannot be written never stops the others."""
    renderers = {"--gradspec-report": lambda data: json.dumps(data, indent=1) + "\n",
                 "--gradspec-markdown": markdown.render, "--gradspec-html": html.render}
    for option, render in renderers.items():
        path = config.getoption(option)
        if not path:
            continue
        try:
            write_atomically(Path(path), render(data))
        except OSError as exc:
            unwritten.append(f"{path}: {exc.strerror or exc}")


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM wait until the block is done (the main thread only: elsewhere they cannot be caught);
    yields the list of those that arrived."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda number, frame: arrived.append(number)) for number in held}
    try:
        yield arrived
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gradspec: a gradspec conformance case")
    _begin_reports(config)  # first: whatever stops this run from here on leaves no earlier run's report behind
    try:  # a database that cannot be used is a usage error before anything runs (gradspec.fuzz.campaign)
        config._gradspec_fuzz_databases = campaign.Databases.open(config.getoption("--fuzz-database"))  # type: ignore[attr-defined]
    except campaign.BadDatabase as exc:
        raise pytest.UsageError(str(exc)) from None
    config._gradspec = _Session(config)  # type: ignore[attr-defined]
    config.pluginmanager.register(config._gradspec, "gradspec-session")
    if config.getoption("--engine") or config.getoption("--device") or config.getoption("--dtype"):
        config._gradspec.resolve()  # an unknown or unusable choice is one usage error now, not one per case file


class _Session:
    """The engines, devices and dtypes chosen for this run, and the outcomes seen."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self._engines: list[EngineChoice] | None = None
        self.devices = _split(config.getoption("--device"))  # checked against the engines' own in resolve()
        self.dtypes = _split(config.getoption("--dtype"))
        self.outcomes: dict[str, Counter] = defaultdict(Counter)
        self.fuzz_outcomes: Counter = Counter()  # passed, failed, skipped over the fuzz properties' items
        self.report = ReportBuilder()
        self.report.strict_expectations = bool(config.getoption("--strict-expectations"))
        self.report.rerun = {"dir": str(config.invocation_params.dir), "rootdir": str(config.rootpath),
                             "expectations": list(config.getoption("--expectations"))}
        try:
            self.expectations = [e for path in config.getoption("--expectations") for e in expectations.load(path)]
        except expectations.ExpectationFileError as exc:
            raise pytest.UsageError(str(exc)) from None
        unexplained = [e for e in self.expectations if e.placeholder]
        if unexplained and config.getoption("--strict-expectations"):
            raise pytest.UsageError("--strict-expectations: " + "; ".join(
                f"{e.where}: the reason is still the placeholder {expectations.PLACEHOLDER!r}: write why the engine "
                "differs (checked by hand in the engine)" for e in unexplained))
        self.unmatched: list[expectations.Expectation] = []
        self.unwritten: list[str] = []  # reports that could not be written, and why
        self.worker = Workers()  # the processes engines run in, one per engine (--gradspec-isolation process)
        self.prestarted = False
        self.case_files_seen: dict[Path, Path] = {}  # resolved path: the path it was first collected under
        self.skip_reasons: dict[str, str] = {}  # why a whole engine-device-dtype run could not start
        self.case_file_errors: set[str] = set()

    def prestart(self, engine: str | None = None) -> None:
        """Start the first engine's worker without waiting (`engine`: before this process imports it), so that its
        start-up (importing the engine) overlaps this process's own import and collection instead of delaying the first
        case or fuzz property. Not in pytest-xdist's controller, which runs nothing."""
        config = self.config
        if self.prestarted or config.getoption("--gradspec-isolation") != "process" or \
                config.getoption("collectonly") or config.getoption("help", False) or \
                (config.getoption("dist", "no") != "no" and not hasattr(config, "workerinput")):
            return
        self.prestarted = True
        if engine is None:
            runnable = [choice for choice in self.engines if choice.adapter.unavailable_reason() is None]
            engine = runnable[0].name if runnable else None
        if engine is not None:
            self.worker.prestart(engine)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Remember broken case files (only this plugin collects YAML); pytest-xdist forwards these too."""
        if report.failed and report.nodeid.endswith((".yaml", ".yml")):
            self.case_file_errors.add(report.nodeid)
            self.report.add_broken_file(report)

    @pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: an id deselected here still exists
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Listed known failures become xfails; ids of this run's engines that match nothing are reported.

        With --strict-expectations an unexpected pass fails (strict xfail) and so does an id that
        names no collected case: a stale list would hide a regression behind a fixed bug.
        """
        for item in items:  # fuzz properties carry a mark of their own through pytest-xdist: judged_nothing counts them
            if "gradspec_fuzz_engine" in getattr(item, "fixturenames", ()):
                item.user_properties.append(("gradspec_fuzz", "1"))
        if not self.expectations:
            return
        strict = config.getoption("--strict-expectations")
        used = set()
        for item in items:
            if not isinstance(item, CaseItem):
                continue
            for expectation in self.expectations:
                if expectation.matches(item.case.id, item.name, item.engine.label):
                    item.add_marker(pytest.mark.xfail(reason=f"{expectation.reason} ({expectation.where})",
                                                      strict=strict and not expectation.intermittent))
                    used.add(expectation)
                    break
        engines = {engine.label for engine in self.engines}
        runs = {item.name for item in items if isinstance(item, CaseItem)}
        self.unmatched = [e for e in self.expectations if e not in used and e.concerns(engines, runs)]
        if strict and self.unmatched:
            raise pytest.UsageError("--strict-expectations: " + "; ".join(
                f"{e.where}: {e.pattern!r} matches no case collected in this run" for e in self.unmatched))

    @pytest.hookimpl(tryfirst=True)  # before --junitxml writes the test case
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count outcomes from reports, which pytest-xdist forwards from its workers to the controller."""
        properties = dict(report.user_properties)
        if "gradspec_case" in properties:
            _junit_classname(self.config, report, properties["gradspec_case"])
        if not is_final(report):
            return
        if "gradspec_fuzz" in properties:
            self.fuzz_outcomes[report.outcome] += 1
        result = self.report.add_test(report)  # every item counts towards completeness
        if result is None:
            return  # not a case item
        run = report.nodeid.rsplit("::", 1)[-1]
        self.outcomes[run][result["outcome"]] += 1
        if "gradspec_skip_reason" in properties:
            self.skip_reasons[run] = properties["gradspec_skip_reason"]

    def judged_nothing(self) -> bool:
        """Case items or fuzz properties ran, yet none was judged: all skipped or not applicable, so the run says
        nothing about any engine."""
        cases = any(counts[o] for counts in self.outcomes.values() for o in JUDGED)
        fuzz = self.fuzz_outcomes["passed"] + self.fuzz_outcomes["failed"]
        return bool(self.outcomes or self.fuzz_outcomes) and not (cases or fuzz)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.worker.stop()
        if hasattr(self.config, "workerinput"):
            return  # an xdist worker: the controller writes the reports and decides the exit status
        if self.judged_nothing() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.report.results:
            ran = {r["engine"] for r in self.report.results}
            self.report.engines = {engine.label: engine.info for engine in self.engines if engine.label in ran}
        stopped = {pytest.ExitCode.INTERRUPTED: "the run was interrupted (Ctrl-C, SIGINT or SIGTERM)",
                   pytest.ExitCode.INTERNAL_ERROR: "pytest stopped on an internal error",
                   pytest.ExitCode.USAGE_ERROR: "a usage error stopped the run"}.get(session.exitstatus)
        self.report.finish(expected=session.testscollected, interrupted=stopped is not None, why=stopped)
        if not self.report.complete and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a run that lost results never reports success
        with _signals_held() as arrived:  # a signal now waits: the reports are written whole, and complete
            self.write_reports()
        if arrived and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        if self.unwritten and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def write_reports(self) -> None:
        """Each report on its own and atomically: one that cannot be written never stops the others."""
        if any(self.config.getoption(option) for option in REPORT_OPTIONS):
            _write_all(self.config, self.report.as_json(), self.unwritten)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.judged_nothing() and not self.outcomes:  # fuzz properties only: no table of cases to show
            terminalreporter.write_line(f"no fuzz property was judged ({self.fuzz_outcomes['skipped']} skipped: see the "
                                        "reasons with -rs): this run says nothing about any engine, and fails", red=True)
        if not (self.outcomes or self.case_file_errors or self.unwritten):
            return
        def write(line: str, **markup) -> None:  # names and engine messages: controls shown, never acted on
            terminalreporter.write_line(shown(line), **markup)
        terminalreporter.section(f"gradspec {__version__} conformance summary")
        for run in sorted(self.outcomes):
            counts = self.outcomes[run]
            total = sum(counts.values())
            if counts["skipped"] == total and run in self.skip_reasons:
                write(f"{run:<28} not run: {self.skip_reasons[run]}")
                continue
            parts = ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in OUTCOMES if counts[s])
            write(f"{run:<28} {counts['passed']:>4}/{total:<4} passed   ({parts})")
        if self.case_file_errors:
            write(f"{len(self.case_file_errors)} case file(s) could not be loaded: " + ", ".join(sorted(self.case_file_errors)))
        for failure in self.unwritten:
            write(f"could not write the report {failure}", red=True)
        if not self.report.complete:
            write(f"incomplete: {self.report.missing_text()}; the reports say so, and the run fails", red=True)
        if self.judged_nothing():
            write("no case was judged (every one skipped or not applicable): this run says nothing about any engine, "
                  "and fails", red=True)
        if len(self.unmatched) <= 3:
            for expectation in self.unmatched:
                write(f"{expectation.where}: expectation {expectation.pattern!r} matches no case collected in this run")
        else:
            write(f"{len(self.unmatched)} expectations match no case collected in this run (a part of the corpus ran, "
                  f"or the ids are stale; --strict-expectations fails on them): "
                  + ", ".join(e.where for e in self.unmatched[:3]) + ", ...")

    @staticmethod
    def _checked(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
        for value in values:
            if value not in known:
                raise pytest.UsageError(f"unknown {what} {value!r}{did_you_mean(value, known)}; known: {', '.join(known)}")
        return values

    @property
    def engines(self) -> list[EngineChoice]:
        return self.resolve()

    def resolve(self) -> list[EngineChoice]:
        """Load the adapters; done on first use, so that runs without case files never load one."""
        if self._engines is None:
            names = _split(self.config.getoption("--engine")) or default_engines()
            optional: set[str] = set()  # brought in by `all`: skipped with the reason where they cannot run
            if "all" in names:
                optional = set(registered()) - set(names)
                names = [n for n in names if n != "all"] + sorted(optional)
            if not names:
                raise pytest.UsageError("no gradspec engine is registered; is gradspec installed (pip install -e .)?")
            self.prestart(names[0])  # its worker imports the engine while this process does
            try:
                self._engines = [EngineChoice(name, _imported(name)) for name in names]
            except EngineNotFound as exc:
                raise pytest.UsageError(str(exc)) from None
            labels = [engine.label for engine in self._engines]
            clashes = sorted({label for label in labels if labels.count(label) > 1})
            if clashes:  # their results would merge into one engine's in every report
                raise pytest.UsageError(f"two chosen engines are both named {clashes[0]!r}: "
                                        + ", ".join(e.name for e in self._engines if e.label == clashes[0])
                                        + "; give an adapter class a name of its own")
            self._check_runnable([e for e in self._engines if e.name not in optional])
        return self._engines

    def _check_runnable(self, required: list[EngineChoice]) -> None:
        """Engines, devices and dtypes that were asked for must run here: skipping them all would judge nothing."""
        engines = self._engines or []
        self._checked(self.devices, tuple(dict.fromkeys(KNOWN_DEVICES + tuple(d for e in engines for d in e.adapter.devices))),
                      "device")
        self._checked(self.dtypes, tuple(dict.fromkeys(ALL_DTYPES + tuple(d for e in engines for d in e.adapter.dtypes))),
                      "dtype")
        for engine in required:
            reason = engine.adapter.unavailable_reason()
            if reason:
                raise pytest.UsageError(f"engine {engine.label!r} cannot run here: {reason}")
        for device in self.devices:
            able = [e for e in engines if device in e.adapter.devices]
            if not able:
                raise pytest.UsageError(f"--device {device}: no chosen engine has it")
            for engine in (e for e in able if e in required):  # engines `all` brought in may not even be installed
                reason = engine.adapter.device_unavailable_reason(device)
                if reason:
                    raise pytest.UsageError(f"--device {device}: engine {engine.label!r} cannot use it here: {reason}")


def _imported(name: str) -> type:
    """The adapter class, once a process of its own has survived importing it (import_probe: an adapter gradspec does
    not ship may segfault or exit there, which would end this process with no word)."""
    import_probe.check(name)
    return load_adapter(name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Fuzz properties run once per chosen engine and device, in float64 (finite differences need it)."""
    if "gradspec_fuzz_engine" not in metafunc.fixturenames:
        return
    session: _Session = metafunc.config._gradspec  # type: ignore[attr-defined]
    runs = [(engine, device) for engine in session.engines for device in (session.devices or engine.adapter.devices)]
    metafunc.parametrize("gradspec_fuzz_engine", runs,
                         ids=[f"{engine.label}-{device}-float64" for engine, device in runs])
    if metafunc.config.getoption("--fuzz-examples") > 0:
        session.prestart()  # the properties run in the engine's worker: its import overlaps the rest of collection


@pytest.fixture
def gradspec_fuzz_adapter(request, gradspec_fuzz_engine):
    """An adapter instance for one fuzz run, or a skip saying why the engine or device cannot run here."""
    if request.config.getoption("--fuzz-examples") <= 0:
        pytest.skip("fuzzing is off (--fuzz-examples 0)")
    engine, device = gradspec_fuzz_engine
    reason = engine.adapter.why_not_runnable(device, "float64")
    if reason:
        pytest.skip(reason)
    if isolated.applies(request.node):  # the worker makes the adapter: no engine code runs in pytest's process
        return isolated.InWorker(engine.name, device)
    return engine.adapter(device, "float64")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A fuzz property runs in its engine's worker process (gradspec.fuzz.isolated), as a case does: a draw that
    crashes or hangs is an error of that property, with the draw staged, and the run goes on."""
    if not isolated.applies(pyfuncitem):
        return None
    __tracebackhide__ = True  # the property's own failure, not this hook, is what a failure shows
    session: _Session = pyfuncitem.config._gradspec  # type: ignore[attr-defined]
    request = isolated.PropertyRequest.of(pyfuncitem)
    isolated.run(session.worker.for_engine(request.engine), request, pyfuncitem.config.getoption("--gradspec-timeout"))
    return True


@pytest.fixture
def gradspec_fuzz_settings(request):
    """Hypothesis settings on top of the active profile (e.g. --hypothesis-profile ci, derandomized), with this test's
    own place in the --fuzz-database databases (campaign.Databases)."""
    from hypothesis import HealthCheck, settings

    database = request.config._gradspec_fuzz_databases.for_test(request.node.name, settings().database)
    extra = {"database": database} if database is not None else {}
    return settings(max_examples=request.config.getoption("--fuzz-examples"), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], **extra)


@pytest.fixture
def gradspec_fuzz_staging(request) -> Path:
    return Path(request.config.getoption("--fuzz-staging"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """Case files only (see loader.is_case_file), wherever they lie under the paths pytest was given.

    Other YAML files are left alone, so the plugin, installed for every pytest session, never
    claims another project's files; `-p no:gradspec` turns it off altogether.
    """
    if not is_case_file(file_path):
        return None
    resolved = file_path.resolve()
    if file_path.is_symlink() and parent.config.rootpath.resolve() in resolved.parents:
        return None  # a link to a case file of this tree: the file is collected where it lies, under its own id
    seen = parent.config._gradspec.case_files_seen  # type: ignore[attr-defined]
    if seen.setdefault(resolved, file_path) != file_path:  # the same file through a linked folder: one set of results
        return None
    return CaseFile.from_parent(parent, path=file_path)  # (pytest may ask again for the same path: several arguments)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never walk a link to a folder around itself (`.` or `..`): pytest would collect forever."""
    return True if collection_path.is_dir() and loops_back(collection_path) else None


class CaseFile(pytest.File):
    """One case file: one item per engine, device and dtype."""

    def collect(self):
        session: _Session = self.config._gradspec  # type: ignore[attr-defined]
        try:
            case = load_case(self.path)
        except CaseFileError as exc:
            exc.path = _relative(self.path, self.config.rootpath)
            raise self.CollectError(exc.format()) from None
        graph = case_graph(case)  # for reports; the same for every engine, device and dtype
        session.prestart()
        for engine in session.engines:
            for device in session.devices or engine.adapter.devices:
                for dtype in session.dtypes or engine.adapter.dtypes:
                    if case.dtypes and dtype not in case.dtypes:
                        continue  # the case itself says it only means something in other dtypes
                    yield CaseItem.from_parent(self, name=f"{engine.label}-{device}-{dtype}", case=case,
                                               engine=engine, device=device, dtype=dtype, graph=graph)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


class CaseFailed(Exception):
    """The engine did not behave as the case says."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.report())
        self.outcome = outcome


class CaseErrored(CaseFailed):
    """The adapter or gradspec raised an unclassified exception: no verdict about the engine."""


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, engine: EngineChoice, device: str, dtype: str, graph: dict, **kwargs):
        super().__init__(**kwargs)
        self.case, self.engine, self.device, self.dtype = case, engine, device, dtype
        self.add_marker("gradspec")
        self.extra_keyword_matches.update(case.rules)  # pytest -k ACC-2 selects the cases citing a rule
        self.graph = graph
        # What reports need, as strings (JSON for structures): pytest-xdist sends them between processes,
        # and JUnit XML writes them as they are.
        self.user_properties += [
            ("gradspec_case", case.id), ("gradspec_title", case.title), ("gradspec_area", case.area),
            ("gradspec_path", str(case.path)),
            ("gradspec_engine", engine.label), ("gradspec_device", device), ("gradspec_dtype", dtype),
            ("gradspec_rules", json.dumps(list(case.rules))),
            ("gradspec_capabilities", json.dumps(sorted(case.capabilities))),
            ("gradspec_ops", json.dumps(sorted(case.ops))),
        ]

    def runtest(self) -> None:
        try:
            self.judge()
        except (pytest.skip.Exception, CaseFailed):
            raise
        except BaseException:  # a crash before any verdict: reports show the case's graph with the error
            self.user_properties.append(("gradspec_graph", json.dumps(self.graph)))
            raise

    def judge(self) -> None:
        adapter_cls = self.engine.adapter
        reason = adapter_cls.why_not_runnable(self.device, self.dtype)
        if reason:
            self.user_properties += [("gradspec_outcome", "skipped"), ("gradspec_skip_reason", reason)]
            pytest.skip(shown(reason))
        tracebacks = self.config.getoption("--gradspec-traceback")
        if self.config.getoption("--gradspec-isolation") == "process":
            request = Request(str(self.case.path), self.engine.name, self.device, self.dtype, tracebacks, case=self.case)
            session: _Session = self.config._gradspec  # type: ignore[attr-defined]
            outcome = session.worker.run(request, self.config.getoption("--gradspec-timeout"))
        else:
            outcome = run_case(self.case, adapter_cls(self.device, self.dtype), tracebacks=tracebacks)
        self.user_properties.append(("gradspec_outcome", outcome.status))
        if outcome.status == NOT_APPLICABLE:
            pytest.skip(shown(f"not applicable: {outcome.message}"))
        if outcome.status in (FAILED, ERROR):  # the graph only where it helps: JUnit XML carries every property
            self.user_properties.append(("gradspec_graph", json.dumps(self.graph)))
            self.user_properties.append(("gradspec_failed_at", json.dumps({  # reports mark this node in the graph
                "step": outcome.step, "line": outcome.line, "tensor": outcome.tensor,
                "node": node_at(self.graph, outcome.tensor, outcome.line)})))
        if outcome.status == FAILED:
            self.user_properties += [("gradspec_message", self.failure_text(outcome))]
            raise CaseFailed(outcome)
        if outcome.status == ERROR:
            raise CaseErrored(outcome)  # reported as an error of the adapter or harness, not of the engine

    def failure_text(self, outcome: Outcome) -> str:
        """What a failure shows: the case, the engine, the step and its diff, and the rules cited."""
        rules = contracts.rules()
        cited = [f"  {rule}: {rules[rule].text}" for rule in self.case.rules if rule in rules]
        return shown("\n".join([
            f"{self.case.id}: {self.case.title}",
            f"engine {self.engine.adapter.name} {self.engine.adapter.version()} on {self.device}, {self.dtype}",
            outcome.report(),
            "rules:", *cited,
        ]))  # engine messages and case text with their control characters shown, never acted on (printable)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            return self.failure_text(excinfo.value.outcome)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.case.id}::{self.name}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    """Broken case files are collection errors, but must not stop the other cases from running."""
    state = getattr(session.config, "_gradspec", None)
    if state and state.case_file_errors and session.testsfailed == len(state.case_file_errors):
        session.config.option.continue_on_collection_errors = True
    return (yield)
