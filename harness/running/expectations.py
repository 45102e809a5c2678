"""Expectation files: the known failures of an engine, one case id per line with the reason after it.

    # expectations/myengine.txt
    lifetime/shared-node-freed.yaml                 keeps saved values alive after backward (issue 12)
    hooks/post-accumulate-grad.yaml::myengine-cpu-float32   hooks run before accumulation in float32
    grad_api/unused-input.yaml::myengine            returns None for unused inputs, never raises

An id is a case's path under cases/, optionally with `::engine` to name one engine (every
device and dtype), or `::run` to name one engine, device and dtype. Files of several
engines can then be given together in one run. A listed case that fails is an expected failure; one that passes is reported
as an unexpected pass; neither fails the run. Ids that match no collected case are
reported, so a list does not silently go stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ExpectationFileError(ValueError):
    """A line that is not `<case id> <reason>`; the message names file and line."""


@dataclass(frozen=True)
class Expectation:
    pattern: str  # a case id, or a case id with ::engine or ::run
    reason: str
    where: str  # file:line, for messages

    def matches(self, case_id: str, run: str, engine: str) -> bool:
        return self.pattern in (case_id, f"{case_id}::{engine}", f"{case_id}::{run}")

    def concerns(self, engines: set[str]) -> bool:
        """Whether the line is about one of these engines (a bare case id is about every engine)."""
        _, _, target = self.pattern.partition("::")
        return not target or any(target == engine or target.startswith(f"{engine}-") for engine in engines)


def load(path: str | Path) -> list[Expectation]:
    """The expectations in a file; `gradspec:NAME` is the file gradspec ships for engine NAME."""
    if str(path).startswith("gradspec:"):
        from gradspec.corpus import expectation_file
        path = expectation_file(str(path).removeprefix("gradspec:"))
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a leading BOM is not part of the first id
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
