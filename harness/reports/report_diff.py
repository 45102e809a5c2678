"""Compare two conformance reports: what newly fails, what got fixed, what else changed outcome."""

from __future__ import annotations

from gradspec.printable import shown

BAD = {"failed", "error"}
GOOD = {"passed", "expected_failure", "unexpected_pass"}
UNJUDGED = {"skipped", "not_applicable"}


def _key(result: dict) -> str:
    return f"{result['case']}::{result['engine']}-{result['device']}-{result['dtype']}"


def compare(before: dict, after: dict) -> dict[str, list[str]]:
    """Lines grouped as new_failures, no_longer_judged, fixes, changed, added and removed (each `id: old -> new`).

    A failure of a case new in `after` is a new failure too, and a result that was judged before
    but was skipped or not applicable after is no longer judged: either hides a regression.
    """
    old = {_key(r): r["outcome"] for r in before["results"]}
    new = {_key(r): r["outcome"] for r in after["results"]}
    groups: dict[str, list[str]] = {"new_failures": [], "no_longer_judged": [], "fixes": [], "changed": [],
                                    "added": [], "removed": []}
    for key in sorted(old.keys() & new.keys()):
        was, now = old[key], new[key]
        if was == now:
            continue
        line = f"{key}: {was} -> {now}"
        if now in BAD and was not in BAD:
            groups["new_failures"].append(line)
        elif now in UNJUDGED and was not in UNJUDGED:
            groups["no_longer_judged"].append(line)
        elif was in BAD and now in GOOD:
            groups["fixes"].append(line)
        else:
            groups["changed"].append(line)
    groups["added"] = [f"{key}: {new[key]}" for key in sorted(new.keys() - old.keys())]
    groups["new_failures"] += [f"{key}: (new) -> {new[key]}" for key in sorted(new.keys() - old.keys()) if new[key] in BAD]
    groups["removed"] = [f"{key}: {old[key]}" for key in sorted(old.keys() - new.keys())]
    broken = sorted({b["path"] for b in after["broken_case_files"]} - {b["path"] for b in before["broken_case_files"]})
    groups["new_failures"] += [f"{path}: could not be loaded" for path in broken]
    if after.get("complete") is False:  # an interrupted or crashed run: what it lacks was never judged
        groups["new_failures"].append("the later report is incomplete: " + (after.get("incomplete_reason") or (
            f"{after.get('reported_items')} of {after.get('expected_items')} collected items reported")))
    return groups


def failing(groups: dict[str, list[str]]) -> bool:
    """Whether the later run is worse: new failures, results no longer judged, or results missing."""
    return bool(groups["new_failures"] or groups["no_longer_judged"] or groups["removed"])


def render(groups: dict[str, list[str]]) -> str:
    titles = {"new_failures": "New failures", "no_longer_judged": "No longer judged (skipped or not applicable now)",
              "fixes": "Fixed", "changed": "Other changed outcomes",
              "added": "New results", "removed": "Results no longer present"}
    lines = []
    for name, title in titles.items():
        lines.append(f"{title}: {len(groups[name])}")
        lines += [f"  {line}" for line in groups[name]]
    return shown("\n".join(lines) + "\n")  # ids and engine names from the reports, for a terminal
