"""Load the machine-readable contracts in spec/ once: ops, errors, capabilities, tolerances, schema, rules.

Everything several parts of gradspec read is defined there and only there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

# "- **ID** LEVEL: sentence", or "- **ID** LEVEL [cap, cap]: sentence" for a rule that only engines with those
# capabilities can be held to (its cases declare them).
RULE_LINE = re.compile(r"^- \*\*(?P<id>[A-Z]+-\d+)\*\* (?P<level>MUST|ENGINE-SPECIFIC)"
                       r"(?: \[(?P<needs>[a-z_]+(?:, [a-z_]+)*)\])?: (?P<text>.+)$")
RULE_ID = re.compile(r"^- \*\*[A-Z]+-\d+\*\*")


@dataclass(frozen=True)
class Rule:
    id: str
    level: str  # "MUST" or "ENGINE-SPECIFIC"
    text: str
    needs: tuple[str, ...] = ()  # capabilities an engine must have for the rule to apply to it


def _read(name: str) -> str:
    return resources.files("gradspec.spec").joinpath(name).read_text(encoding="utf-8")


def _yaml(name: str, key: str) -> dict:
    return yaml.safe_load(_read(name))[key]


@cache
def ops() -> dict[str, dict]:
    """The op vocabulary, by name (spec/ops.yaml)."""
    return _yaml("ops.yaml", "ops")


@cache
def error_kinds() -> dict[str, dict]:
    """Error kinds a case may expect (spec/errors.yaml)."""
    return _yaml("errors.yaml", "errors")


@cache
def warning_kinds() -> dict[str, dict]:
    """Warning kinds a case may expect (spec/errors.yaml)."""
    return _yaml("errors.yaml", "warnings")


@cache
def capabilities() -> dict[str, dict]:
    """Capabilities an engine may have (spec/capabilities.yaml)."""
    return _yaml("capabilities.yaml", "capabilities")


@cache
def tolerances() -> dict[str, dict[str, float]]:
    """Default rtol and atol per dtype (spec/tolerances.yaml)."""
    return _yaml("tolerances.yaml", "tolerances")


@cache
def version_differences() -> list[dict]:
    """Releases of engines that differ from a rule, and how (spec/versions.yaml)."""
    return _yaml("versions.yaml", "differences")


@cache
def case_schema() -> dict:
    """The JSON Schema of case files (spec/case.schema.json)."""
    return json.loads(_read("case.schema.json"))


@cache
def fault_coverage() -> dict:
    """Which rules' planted faults each shipped case catches (spec/fault_coverage.json, `gradspec faults
    --write-coverage`): what reports read instead of running cases again."""
    return json.loads(_read("fault_coverage.json"))


@cache
def report_schema() -> dict:
    """The JSON Schema of conformance reports (spec/report.schema.json)."""
    return json.loads(_read("report.schema.json"))


@cache
def rules() -> dict[str, Rule]:
    """Rules of the rule book (spec/semantics.md), by id, in the book's order."""
    found: dict[str, Rule] = {}
    for line in _read("semantics.md").splitlines():
        match = RULE_LINE.match(line)
        if RULE_ID.match(line) and not match:
            raise ValueError(f"spec/semantics.md: a rule line not in the form '- **ID** LEVEL [caps]: sentence': {line}")
        if match:
            needs = tuple(match["needs"].split(", ")) if match["needs"] else ()
            rule = Rule(match["id"], match["level"], match["text"], needs)
            if rule.id in found:
                raise ValueError(f"spec/semantics.md defines rule {rule.id} twice")
            found[rule.id] = rule
    return found


AREA_HEADING = re.compile(r"^## (?P<area>[A-Z]+): (?P<title>.+)$")


@cache
def rule_areas() -> dict[str, str]:
    """The rule book's areas (the prefix of rule ids: LIFE, ACC, ...) and their titles, in the book's order."""
    return {m["area"]: m["title"] for line in _read("semantics.md").splitlines() if (m := AREA_HEADING.match(line))}
