"""Discovery benchmark: which planted faults of `gradspec faults` the fuzzer alone finds, and how fast; asserts nothing.

    python bench/bench_discovery.py [--examples N] [--rules PASS-1,HOOK-2] [--json out.json]

For every fault (gradspec.faults: one per MUST rule, and the realistic ones), the fault is planted in the reference
engine, which then stands where an engine under test would, and the fuzz properties run, no case involved: the
finite-difference and kink properties on the faulty engine itself, the sequence and view-sequence properties with
PyTorch as the judge. They run in rounds (25 draws each, then 100, then --examples, default 300), cheapest first, as a
campaign on one core would; the first property that fails finds the fault, and the seconds until then (start-up of the
properties included) are its time to detection. Draws are derandomized, without a database and without shrinking, so
that the figures are the same on every run. First every property runs with no fault planted, and must pass. Printed:
the share found (target: at least 90%) and the median time to detection of those found (target: under 10 s), then
every fault not found, for the rule book's authors to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from tempfile import TemporaryDirectory

from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.faults import FAULTS, REALISTIC, planted
from gradspec.fuzz import properties, view_sequences
from hypothesis import HealthCheck, Phase, settings

try:
    from gradspec.adapters.torch_adapter import TorchAdapter
except ImportError:  # the sequence properties need a second engine
    TorchAdapter = None


def runs(examples: int):
    """The properties, each a function of a staging folder that raises when it finds a difference."""
    # no shrinking: the seconds measured are those until a failure is found, not until it is made small
    quick = settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    faulty = ReferenceAdapter("cpu", "float64")
    found = [("first-order", lambda d: properties.run(properties.first_order, faulty, quick, d, "first-order")),
             ("indexing", lambda d: properties.run(properties.first_order, faulty, quick, d, "indexing",
                                                   indexing=True)),
             ("second-order", lambda d: properties.run(properties.second_order, faulty, quick, d, "second-order")),
             ("kinks", lambda d: properties.run_kinks(faulty, quick, d)),
             ("wrapping", lambda d: properties.run_wrapping(faulty, quick, d))]
    if TorchAdapter is not None:  # the faulty engine under test, PyTorch the judge (where an engine's fault would be)
        torch = TorchAdapter("cpu", "float64")
        views = view_sequences.view_sequences(exclude=properties.excluded_ops(torch) | properties.excluded_ops(faulty))
        found += [("view-sequences", lambda d: properties.run_sequences(faulty, quick, d, strategy=views,
                                                                        stem="view-sequence", judge=TorchAdapter)),
                  ("sequences", lambda d: properties.run_sequences(faulty, quick, d, judge=TorchAdapter))]
    return found


def rounds(examples: int) -> list[int]:
    """Draws per property in each round: a few first for every property, then more, so that a fault one property finds
    at once is not found only after every other property has drawn all its examples (as a campaign on one core
    would run them)."""
    return sorted({min(examples, n) for n in (25, 100)} | {examples})


def discover(fault, examples: int) -> tuple[str | None, float, str]:
    """The first property that fails with the fault planted, the seconds it took and its message (None: none failed)."""
    start = time.perf_counter()
    with TemporaryDirectory() as folder, planted(fault) if fault else nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in rounds(examples):
            for name, run in runs(size):
                try:
                    run(Path(folder))
                except Exception as failure:  # noqa: BLE001 - any failure of a property is a finding (its own error too)
                    return name, time.perf_counter() - start, str(failure)
    return None, time.perf_counter() - start, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--rules", default="", help="comma-separated rule ids: only their faults")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N faults (resume a run)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    failing, seconds, message = discover(None, args.examples)
    if failing:
        raise SystemExit(f"property {failing} fails with no fault planted, so its findings would mean nothing:\n{message}")
    print(f"no fault planted: every property passes ({seconds:.1f} s for all rounds)", flush=True)
    wanted = set(filter(None, args.rules.split(",")))
    faults = [f for f in [*FAULTS.values(), *REALISTIC] if not wanted or f.rule in wanted][args.skip:]
    results = []
    for fault in faults:
        finder, seconds, _ = discover(fault, args.examples)
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
