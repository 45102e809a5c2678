"""Collect what a pytest run over case files observed into a JSON report (spec/report.schema.json).

Records come from test reports, which pytest-xdist forwards from its workers, so a
parallel run gives the same report. Each case item carries what the report needs in its
user_properties.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from collections import Counter
from pathlib import Path

import pytest

from gradspec import __version__, contracts
from gradspec.corpus import describe
from gradspec.running import expectations

REPORT_VERSION = 1
# What a report path holds from the start of a run until the run writes its reports: a run killed (even by SIGKILL),
# crashed or stopped by a usage error leaves this, never the report of an earlier run.
UNFINISHED = ("the run writing this report has not finished: it is still running, or it stopped before its end "
              "(a usage error, a crash, or a kill: see its output)")


class ReportBuilder:
    def __init__(self):
        self.results: list[dict] = []
        self.broken: list[dict] = []
        self.engines: dict[str, dict] = {}  # version and capabilities per engine label; the plugin fills it in
        self.case_paths: set[str] = set()
        self.case_files: dict[str, str] = {}  # case id -> its file, to tell whether the shipped coverage applies
        self._coverage: dict | None = None
        self.items_reported = 0  # every item's final report, gradspec's or not, to tell whether any was lost
        self.expected = 0
        self.complete = True
        self.incomplete_reason: str | None = None  # why complete is False, in words
        self.strict_expectations = False  # --strict-expectations: an unexpected pass fails the run
        self.rerun: dict = {}  # the start folder, rootdir and expectation files, for rerun commands (tables.reproduce)

    def add_test(self, report: pytest.TestReport) -> dict | None:
        """Count a final report; for a case item, record and return its result (None for any other item)."""
        if not is_final(report):
            return None
        self.items_reported += 1
        properties = dict(report.user_properties)
        if "gradspec_case" not in properties:
            if report.failed and ".yaml::" in report.nodeid:
                return self.add_lost(report)  # a case item whose process died under it: no properties came back
            return None
        outcome, message = _outcome(report, properties)
        self.case_paths.add(properties["gradspec_path"])
        self.case_files[properties["gradspec_case"]] = properties["gradspec_path"]
        result = {
            "case": properties["gradspec_case"], "title": properties["gradspec_title"],
            "area": properties["gradspec_area"], "engine": properties["gradspec_engine"],
            "device": properties["gradspec_device"], "dtype": properties["gradspec_dtype"],
            "outcome": outcome, "rules": json.loads(properties["gradspec_rules"]),
            "capabilities": json.loads(properties["gradspec_capabilities"]), "message": message,
            "ops": json.loads(properties.get("gradspec_ops", "[]")),
            "nodeid": report.nodeid, "duration": round(report.duration, 6),
        }
        if outcome in ("failed", "error") and "gradspec_graph" in properties:
            result["graph"] = json.loads(properties["gradspec_graph"])
        if outcome in ("failed", "error") and "gradspec_failed_at" in properties:
            result["failed_at"] = json.loads(properties["gradspec_failed_at"])
        self.results.append(result)
        return result

    def add_lost(self, report: pytest.TestReport) -> dict:
        """A case item that crashed its worker (pytest-xdist reports it failed, with no properties): an error."""
        path, _, run = report.nodeid.partition("::")
        engine, device, dtype = (run.rsplit("-", 2) + ["", ""])[:3]
        case = path.split("cases/", 1)[-1]
        result = {
            "case": case, "title": "", "area": case.split("/")[0] if "/" in case else "", "engine": engine,
            "device": device, "dtype": dtype, "outcome": "error", "rules": [], "capabilities": [],
            "message": f"the process running this case died: {report.longreprtext.strip()[:2000]}",
            "nodeid": report.nodeid, "duration": round(report.duration, 6)}
        self.results.append(result)
        return result

    def finish(self, expected: int, interrupted: bool, why: str | None = None) -> None:
        """Whether every collected item reported, and the run was not stopped (`why`: what stopped it)."""
        self.expected = expected
        self.complete = not interrupted and self.items_reported >= expected
        counted = f"{self.items_reported} of {expected} collected items reported"
        if interrupted:
            self.incomplete_reason = f"{why or 'the run was interrupted'}: {counted}"
        elif not self.complete:
            self.incomplete_reason = f"results were lost (a process running cases died): {counted}"

    def missing_text(self) -> str:
        return self.incomplete_reason or f"{self.items_reported} of {self.expected} collected items reported"

    @classmethod
    def unfinished(cls) -> dict:
        """The report a run writes at its start (UNFINISHED), for its end to replace."""
        builder = cls()
        builder.complete, builder.incomplete_reason = False, UNFINISHED
        return builder.as_json()

    def add_broken_file(self, report: pytest.CollectReport) -> None:
        self.broken.append({"path": report.nodeid, "error": report.longreprtext.strip()})

    def as_json(self) -> dict:
        return {
            "report_version": REPORT_VERSION,
            "gradspec_version": __version__,
            "case_schema_version": contracts.case_schema()["properties"]["schema_version"]["const"],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "platform": {"system": platform.system(), "machine": platform.machine(),
                         "python": platform.python_version()},
            "engines": self.engines,
            "summary": dict(sorted(Counter(r["outcome"] for r in self.results).items())),
            "complete": self.complete, "expected_items": self.expected, "reported_items": self.items_reported,
            **({"incomplete_reason": self.incomplete_reason} if not self.complete and self.incomplete_reason else {}),
            "strict_expectations": self.strict_expectations,
            **({"rerun": self.rerun} if self.rerun else {}),
            "results": sorted(self.results, key=lambda r: (r["case"], r["engine"], r["device"], r["dtype"])),
            "broken_case_files": sorted(self.broken, key=lambda b: b["path"]),
            "rule_coverage": self.rule_coverage(),
            "corpus": describe(self.case_paths),
        }

    def rule_coverage(self) -> dict:
        """Which rules this run's cases cite, and which of those catch the rule's planted fault.

        Read from spec/fault_coverage.json (`gradspec faults --write-coverage`), never worked out by running cases:
        a report records what the run observed, and a case that hangs or crashes at report time would lose every
        report. A case file not in that data, or changed since, is listed as `unverified`.
        """
        if self._coverage is None:
            self._coverage = coverage_of(self.results, self.case_files)
        return self._coverage


def coverage_of(results: list[dict], case_files: dict[str, str]) -> dict:
    """Per rule: the run's cases citing it, those of them known to catch its fault, and those not known."""
    data = contracts.fault_coverage()
    known = data["cases"]
    trusted = {case for case, path in case_files.items() if case in known and _digest(path) == known[case]["sha256"]}
    cited: dict[str, set[str]] = {}
    for result in results:
        for rule in result["rules"]:
            cited.setdefault(rule, set()).add(result["case"])
    coverage = {}
    for rule, entry in contracts.rules().items():
        cited_by = sorted(cited.get(rule, ()))
        judged = entry.level == "MUST" or rule in data["faulted_rules"]
        coverage[rule] = {"level": entry.level, "cited_by": cited_by,
                          "caught_by": sorted(c for c in cited_by if c in trusted and rule in known[c]["catches"])
                          if judged else None,
                          "unverified": sorted(c for c in cited_by if c not in trusted) if judged else []}
    return coverage


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:  # gone since it ran, or unreadable: its coverage is not known
        return None


def report_problem(report: dict) -> str | None:
    """What JSON Schema cannot check in a report (spec/report.schema.json), or None: each result's graph draws."""
    for index, result in enumerate(report["results"]):
        problem = graph_problem(result.get("graph"))
        if problem:
            return f"results[{index}] ({result['case']} on {result['engine']}): {problem}"
    return None


def graph_problem(graph: dict | None) -> str | None:
    """Why a case graph cannot be drawn (graph.to_svg), or None: each edge joins two of its nodes, the one it comes
    from listed before the one it goes to, as case_graph lists them."""
    if not graph:
        return None
    first: dict[str, int] = {}
    for index, node in enumerate(graph["nodes"]):
        first.setdefault(node["id"], index)
    for source, target in graph["edges"]:
        missing = [end for end in (source, target) if end not in first]
        if missing:
            return f"its graph has an edge {source!r} -> {target!r} to a node it lacks ({missing[0]!r})"
        if first[source] >= first[target]:
            return f"its graph has an edge {source!r} -> {target!r} back to a node listed before it (a cycle)"
    return None


def is_final(report: pytest.TestReport) -> bool:
    """The report that decides an item's outcome: the call, a setup that skipped or failed (a fixture raised, so no
    call follows), or pytest-xdist's report of an item whose worker crashed (its phase is "???")."""
    return report.when in ("call", "???") or (report.when == "setup" and not report.passed)


STRICT_XPASS = "[XPASS(strict)]"  # pytest's report of a strict xfail that passed: failed, with no wasxfail


def _outcome(report: pytest.TestReport, properties: dict) -> tuple[str, str]:
    if report.failed and isinstance(report.longrepr, str) and report.longrepr.startswith(STRICT_XPASS):
        # --strict-expectations: a listed case that passed. It fails the run, but it is still an unexpected pass of
        # the engine, never an error of the adapter.
        return "unexpected_pass", report.longrepr.removeprefix(STRICT_XPASS).strip()
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "expected_failure", report.wasxfail
        if report.wasxfail.lower().startswith(expectations.INTERMITTENT):
            return "passed", f"the intermittent known failure did not show in this run: {report.wasxfail}"
        return "unexpected_pass", report.wasxfail
    if report.passed:
        return "passed", ""
    if report.failed and "gradspec_message" in properties:
        return "failed", properties["gradspec_message"]  # the judge found a deviation
    if report.failed:
        return "error", report.longreprtext  # the engine or its adapter crashed before a verdict
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    return ("not_applicable" if properties.get("gradspec_outcome") == "not_applicable" else "skipped"), reason
