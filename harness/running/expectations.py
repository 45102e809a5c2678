"""Expectation files: the known failures of an engine, one case id per line with the reason after it.

    # expectations/myengine.txt
    lifetime/shared-node-freed.yaml                 keeps saved values alive after backward (issue 12)
    hooks/post-accumulate-grad.yaml::myengine-cpu-float32   hooks run before accumulation in float32
    grad_api/unused-input.yaml::myengine            returns None for unused inputs, never raises

An id is a case's path under cases/, optionally with `::engine` to name one engine (every
device and dtype), or `::run` to name one engine, device and dtype. Files of several
engines can then be given together in one run. An id may also be written as pytest prints it
(`cases/area/x.yaml::engine-cpu-float64`, or with a longer path in front): everything up to
the last folder named `cases` is dropped. A listed case that fails is an expected failure; one that passes is reported
as an unexpected pass; neither fails the run. Ids that match no collected case are
reported, so a list does not silently go stale.

A reason that begins with `intermittent:` is a failure that happens in some runs only (a race the engine loses now
and then, with its reproduction's rate in the reason): a run where it fails is an expected failure, one where it
passes is a pass, never an unexpected pass, so --strict-expectations does not fail on the luck of the scheduler.

`gradspec expectations REPORT.json` writes such a file from a run (from_report): one line per
failure, with PLACEHOLDER as its reason until a person writes why; --strict-expectations
refuses a file that still has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gradspec.paths import BadPath, readable_file

PLACEHOLDER = "REASON: explain why"  # what `gradspec expectations` writes where a person must write the reason
INTERMITTENT = "intermittent:"  # a reason's prefix for a failure that some runs do not show


class ExpectationFileError(ValueError):
    """A line that is not `<case id> <reason>`; the message names file and line."""


@dataclass(frozen=True)
class Expectation:
    pattern: str  # a case id, or a case id with ::engine or ::run
    reason: str
    where: str  # file:line, for messages

    @property
    def placeholder(self) -> bool:
        """Whether the reason is still the one `gradspec expectations` wrote: nobody has said why yet."""
        return PLACEHOLDER in self.reason

    @property
    def intermittent(self) -> bool:
        """Whether the failure shows in some runs only: a pass is then no news, even under --strict-expectations."""
        return self.reason.lower().startswith(INTERMITTENT)

    def matches(self, case_id: str, run: str, engine: str) -> bool:
        return self.pattern in (case_id, f"{case_id}::{engine}", f"{case_id}::{run}")

    def concerns(self, engines: set[str], runs: set[str] | None = None) -> bool:
        """Whether the line is about one of these engines (a bare case id is about every engine) and, where it names
        one engine-device-dtype run, about one of the `runs` of this session (a float32 line in a float64-only run
        is about nothing here)."""
        _, _, target = self.pattern.partition("::")
        if not target or target in engines:
            return True
        if runs is not None:
            return target in runs
        return any(target.startswith(f"{engine}-") for engine in engines)


def resolve_path(path: str | Path) -> Path:
    """`gradspec:NAME` is the file gradspec ships for engine NAME; any other path is itself."""
    if str(path).startswith("gradspec:"):
        from gradspec.corpus import expectation_file
        return expectation_file(str(path).removeprefix("gradspec:"))
    return Path(path)


def load(path: str | Path) -> list[Expectation]:
    """The expectations in a file; `gradspec:NAME` is the file gradspec ships for engine NAME."""
    path = resolve_path(path)
    try:
        lines = readable_file(path, "expectation file").read_text(encoding="utf-8-sig").splitlines()  # -sig: BOM
    except BadPath as exc:
        raise ExpectationFileError(str(exc)) from None
    except OSError as exc:
        raise ExpectationFileError(f"{path}: cannot read the expectation file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ExpectationFileError(f"{path}: not UTF-8 text (byte {exc.start}): an expectation file is UTF-8") from None
    found, first_seen = [], {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        pattern, _, reason = text.partition(" ")
        pattern = normalized(pattern)
        if not reason.strip():
            raise ExpectationFileError(f"{path}:{number}: expected `<case id> <reason>`: every known failure "
                                       f"needs a reason after its id, got {text!r}")
        if not pattern.endswith((".yaml", ".yml")) and "::" not in pattern:
            raise ExpectationFileError(f"{path}:{number}: expected a case id such as area/name.yaml "
                                       f"(optionally ::engine or ::engine-device-dtype), got {pattern!r}")
        if pattern in first_seen:
            raise ExpectationFileError(f"{path}:{number}: {pattern!r} is listed twice (first at line {first_seen[pattern]})")
        first_seen[pattern] = number
        found.append(Expectation(pattern, reason.strip(), f"{path}:{number}"))
    return found


def normalized(pattern: str) -> str:
    """An id as pytest prints it (`cases/area/x.yaml::run`, `../cases/...`, an absolute path) as a case id
    (`area/x.yaml::run`): the path after the last folder named `cases`, as loader.case_id makes case ids.

    `pytest -v` prints `cases/area/x::yaml::run`: its terminal turns each dot of an item's reportinfo domain (the
    case id and run) into `::`. Such an id has the dots back.
    """
    parts = pattern.split("::")
    if len(parts) >= 3 and parts[-2] in ("yaml", "yml"):
        pattern = ".".join(parts[:-1]) + "::" + parts[-1]
    path, sep, target = pattern.partition("::")
    parts = path.replace("\\", "/").split("/")
    if "cases" in parts[:-1]:
        last = len(parts) - 1 - parts[::-1].index("cases")
        path = "/".join(parts[last + 1:])
    return f"{path}{sep}{target}"


def from_report(report: dict, source: str = "the report") -> tuple[str, list[str]]:
    """The expectation file for a run's failures and errors, and a note per unexpected pass left out.

    A case failing on every run (two or more) of an engine in the report gets one `case::engine` line, otherwise
    one line per run. Expected failures keep the reason their line had; the others get PLACEHOLDER, which --strict-expectations
    refuses until a person replaces it. Unexpected passes are left out: their engines no longer fail them.
    """
    runs: dict[tuple[str, str], dict[str, dict]] = {}
    for result in report["results"]:
        runs.setdefault((result["case"], result["engine"]), {})[f"{result['device']}-{result['dtype']}"] = result
    lines, dropped = [], []
    for (case, engine), by_run in sorted(runs.items()):
        judged = {run: r for run, r in by_run.items() if r["outcome"] not in ("skipped", "not_applicable")}
        failing = {run: r for run, r in judged.items() if r["outcome"] in ("failed", "error", "expected_failure")}
        dropped += [f"{case}::{engine}-{run}: passed unexpectedly, left out ({r['message']})"
                    for run, r in sorted(judged.items()) if r["outcome"] == "unexpected_pass"]
        if not failing:
            continue
        every = failing == judged and len(judged) > 1  # one run alone says nothing of the engine's other dtypes
        ids = [f"{case}::{engine}"] if every else [f"{case}::{engine}-{run}" for run in sorted(failing)]
        first = failing[min(failing)]
        for identifier in ids:
            lines.append((identifier, _reason(first), _why(first)))
    width = max((len(identifier) for identifier, _, _ in lines), default=0) + 2
    out = [f"# Known failures from {source}, written by `gradspec expectations`: one `<case id> <reason>` per line.",
           f"# Replace each {PLACEHOLDER!r} with why the engine differs, checked by hand in the engine;",
           "# --strict-expectations refuses this file while one is left.", ""]
    for identifier, reason, why in lines:
        out += [f"# {why}"] if why else []
        out.append(f"{identifier:<{width}}{reason}")
    return "\n".join(out) + "\n", dropped


def _reason(result: dict) -> str:
    """An expected failure's reason as its line gave it (pytest adds ` (file:line)`); PLACEHOLDER for the rest."""
    if result["outcome"] == "expected_failure" and result["message"].strip():
        reason = result["message"].strip().splitlines()[0]
        head, _, tail = reason.rpartition(" (")
        return head if head and tail.endswith(")") and ":" in tail else reason
    return PLACEHOLDER


def _why(result: dict) -> str:
    """The line of a failure message that says what differed (its step), to help whoever writes the reason."""
    if result["outcome"] == "expected_failure":
        return ""
    lines = [line.strip() for line in result["message"].splitlines() if line.strip()]
    step = next((line for line in lines if line.startswith("step ")), lines[0] if lines else "")
    return f"{result['outcome']}: {step[:200]}" if step else result["outcome"]
