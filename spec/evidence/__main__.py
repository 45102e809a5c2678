"""Run every experiment of gradspec.spec.evidence on the installed engine: `python -m gradspec.spec.evidence`."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import traceback

from gradspec.reports.versions import explanation
from gradspec.spec import evidence


def load_all() -> list[evidence.Experiment]:
    for module in sorted(pkgutil.iter_modules(evidence.__path__), key=lambda info: info.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{evidence.__name__}.{module.name}")
    return evidence.EXPERIMENTS


def _same(observed, expected) -> bool:
    if isinstance(expected, float) and isinstance(observed, (int, float)):
        return abs(observed - expected) <= 1e-12 * max(1.0, abs(expected)) or observed == expected
    return observed == expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradspec.spec.evidence", description=__doc__)
    parser.add_argument("-k", dest="select", default="", help="run only experiments whose rule or name contains this")
    parser.add_argument("--json", dest="json_path", help="also write every observation to this file")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: the experiments need it", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}")
    results, contradictions = [], 0
    for item in load_all():
        if args.select and not any(args.select in text for text in (*item.rules, item.name)):
            continue
        try:
            observations = item.run()
            error = None
        except Exception:  # an experiment that cannot run on this release is reported, never fatal
            observations, error = [], traceback.format_exc(limit=3)
        bad = [(what, observed, expected) for what, observed, expected in observations if not _same(observed, expected)]
        recorded = explanation(item.engine, str(torch.__version__), list(item.rules)) if bad else None
        verdict = "ERROR" if error else "RECORDED" if recorded else "CONTRADICTS" if bad else "agrees"
        contradictions += bool((bad and not recorded) or error)
        print(f"{verdict:<11} {','.join(item.rules):<22} {item.name}")
        for what, observed, expected in observations:
            mark = "  " if _same(observed, expected) else "!!"
            print(f"    {mark} {what}: observed {observed!r}, rule book says {expected!r}")
        if recorded:
            print(f"    spec/versions.yaml records this release as {recorded['kind']}: {recorded['what']}")
        if error:
            print("    " + error.strip().replace("\n", "\n    "))
        results.append({"rules": list(item.rules), "name": item.name, "claim": item.claim, "verdict": verdict,
                        "observations": [[what, repr(observed), repr(expected)] for what, observed, expected in observations],
                        "error": error})
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as handle:
            json.dump({"torch": torch.__version__, "experiments": results}, handle, indent=1)
    print(f"{len(results)} experiment(s), {contradictions} contradicting the rule book (and not recorded in "
          "spec/versions.yaml) or failing to run")
    return 1 if contradictions else 0


if __name__ == "__main__":
    sys.exit(main())
