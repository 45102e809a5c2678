"""Discovery benchmark: which planted faults of `gradspec faults` the fuzzer alone finds, and how fast; asserts nothing.

    python bench/bench_discovery.py [--examples N] [--rules PASS-1,HOOK-2] [--json out.json]

For every fault (gradspec.faults: one per MUST rule, and the realistic ones), the fault is planted in the reference
engine and the fuzz properties run one after another, no case involved: the finite-difference and kink properties on
the faulty reference engine itself, the sequence and view-sequence properties with PyTorch as the engine under test
and the faulty reference engine as the judge (a disagreement either way is a finding). The first property that fails
finds the fault; the seconds until then (start-up of the properties included, on one core) are its time to
detection. Each property gets --examples draws (default 300), derandomized, without a database, so that the figures
are the same on every run. Printed: the share found (target: at least 90%) and the median time to detection of those
found (target: under 10 s), then every fault not found, for the rule book's authors to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from tempfile import TemporaryDirectory

from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.faults import FAULTS, REALISTIC, planted
from gradspec.fuzz import properties, view_sequences
from hypothesis import HealthCheck, settings

try:
    from gradspec.adapters.torch_adapter import TorchAdapter
except ImportError:  # the sequence properties need a second engine
    TorchAdapter = None


def runs(examples: int):
    """The properties, each a function of a staging folder that raises when it finds a difference."""
    quick = settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))
    faulty = ReferenceAdapter("cpu", "float64")
    found = [("first-order", lambda d: properties.run(properties.first_order, faulty, quick, d, "first-order")),
             ("indexing", lambda d: properties.run(properties.first_order, faulty, quick, d, "indexing",
                                                   indexing=True)),
             ("second-order", lambda d: properties.run(properties.second_order, faulty, quick, d, "second-order")),
             ("kinks", lambda d: properties.run_kinks(faulty, quick, d)),
             ("wrapping", lambda d: properties.run_wrapping(faulty, quick, d))]
    if TorchAdapter is not None:
        torch = TorchAdapter("cpu", "float64")
        found += [("sequences", lambda d: properties.run_sequences(torch, quick, d)),
                  ("view-sequences", lambda d: properties.run_sequences(
                      torch, quick, d, strategy=view_sequences.view_sequences(
                          exclude=properties.excluded_ops(torch)), stem="view-sequence"))]
    return found


def discover(fault, examples: int) -> tuple[str | None, float]:
    """The first property that fails with the fault planted, and the seconds it took (None: none failed)."""
    start = time.perf_counter()
    with TemporaryDirectory() as folder, planted(fault), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, run in runs(examples):
            try:
                run(Path(folder))
            except Exception:  # noqa: BLE001 - any failure of a property is a finding (its own error included)
                return name, time.perf_counter() - start
    return None, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--rules", default="", help="comma-separated rule ids: only their faults")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    wanted = set(filter(None, args.rules.split(",")))
    faults = [f for f in [*FAULTS.values(), *REALISTIC] if not wanted or f.rule in wanted]
    results = []
    for fault in faults:
        finder, seconds = discover(fault, args.examples)
        results.append({"rule": fault.rule, "fault": fault.description, "found_by": finder, "seconds": seconds})
        print(f"{fault.rule:10} {'found by ' + finder if finder else 'NOT FOUND':24} {seconds:7.1f} s  "
              f"{fault.description[:70]}", flush=True)
    found = [r for r in results if r["found_by"]]
    share = len(found) / len(results) if results else 0.0
    median = statistics.median(r["seconds"] for r in found) if found else float("nan")
    print(f"\n{len(found)}/{len(results)} planted faults found by fuzzing alone ({share:.0%}; target >= 90%), "
          f"median time to detection {median:.1f} s (target < 10 s), {args.examples} draws per property")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"examples": args.examples, "results": results}, indent=1))


if __name__ == "__main__":
    main()
