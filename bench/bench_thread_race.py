"""How often the PASS-9 thread cases catch a lock-free accumulation into .grad; prints figures, asserts nothing.

    python bench/bench_thread_race.py [--runs N] [--dtype float64] [--fault realistic|planted]
                                      [--switch-interval SECONDS] [--no-timing] [CASE.yaml ...]

With the fault of harness/faults.py planted in the reference engine (`realistic`: REALISTIC's PASS-9 fault, read
.grad, add, write back, with no lock and no delay; `planted`: FAULTS's, which sleeps between read and write), each
case is run --runs times; a run is caught when at least one case fails, and each case's own catch count is shown
too, with the lost gradient of each failing run. --switch-interval replaces the thread runner's SWITCH_INTERVAL
(harness/running/threads.py); 0.005, Python's default, shows the cases as they fare without it. Then each case's
time on the healthy reference engine and on PyTorch (CPU), best of 3, and whether it passed.
The cases default to every case citing PASS-9 that has a `threads` step. The target (issue 23): the realistic fault
caught in every run, each case well under 2 s per engine and dtype.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from pathlib import Path

from gradspec import faults
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.language.loader import load_case
from gradspec.running import threads
from gradspec.running.interpreter import PASSED, run_case

CASES = Path(__file__).resolve().parent.parent / "cases"


def thread_cases(paths: list[str]) -> list:
    if paths:
        return [load_case(Path(path)) for path in paths]
    cases = [load_case(path) for path in sorted((CASES / "backward_pass").glob("*.yaml"))]
    return [case for case in cases if "PASS-9" in case.rules]


def the_fault(kind: str) -> faults.Fault:
    if kind == "planted":
        return faults.FAULTS["PASS-9"]
    return next(fault for fault in faults.REALISTIC if fault.rule == "PASS-9")


def timed(case, adapter) -> tuple[float, str]:
    best, status = float("inf"), ""
    for _ in range(3):
        start = time.perf_counter()
        status = run_case(case, adapter).status
        best = min(best, time.perf_counter() - start)
    return best, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case files (default: the PASS-9 thread cases)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--fault", default="realistic", choices=["realistic", "planted"])
    parser.add_argument("--switch-interval", type=float, default=threads.SWITCH_INTERVAL,
                        help=f"seconds between thread switches while threads run (the harness's: {threads.SWITCH_INTERVAL})")
    parser.add_argument("--no-timing", action="store_true", help="only the catch rate")
    args = parser.parse_args()
    threads.SWITCH_INTERVAL = args.switch_interval
    warnings.simplefilter("ignore")
    cases = thread_cases(args.cases)
    fault = the_fault(args.fault)
    adapter = ReferenceAdapter("cpu", args.dtype)
    per_case: dict[str, list[str]] = {case.id: [] for case in cases}
    caught = 0
    start = time.perf_counter()
    with faults.planted(fault):
        for _ in range(args.runs):
            outcomes = {case.id: run_case(case, adapter) for case in cases}
            failed = {case_id: outcome for case_id, outcome in outcomes.items() if outcome.status != PASSED}
            caught += bool(failed)
            for case_id, outcome in failed.items():
                got = re.search(r"got (\[[^\]]*\])", outcome.message or "")
                per_case[case_id].append(got.group(1) if got else outcome.status)
    elapsed = time.perf_counter() - start
    print(f"fault ({args.fault}): the reference engine {fault.description}")
    print(f"switch interval while threads run: {args.switch_interval} s")
    print(f"caught in {caught}/{args.runs} runs ({args.dtype}; {elapsed:.1f} s in all)")
    for case_id, got in per_case.items():
        print(f"  {case_id:<55} fails {len(got)}/{args.runs}" + (f"; .grad got: {', '.join(got[:5])}"
                                                                  f"{' ...' if len(got) > 5 else ''}" if got else ""))
    if args.no_timing:
        return
    engines = [("reference", lambda dtype: ReferenceAdapter("cpu", dtype))]
    try:
        from gradspec.adapters.torch_adapter import TorchAdapter
        engines.append(("torch", lambda dtype: TorchAdapter("cpu", dtype)))
    except ImportError:
        print("(PyTorch not installed: its times are left out)")
    print("time per case without the fault, best of 3:")
    for case in cases:
        for name, make in engines:
            for dtype in ("float32", "float64"):
                seconds, status = timed(case, make(dtype))
                print(f"  {case.id:<55} {name:<9} {dtype}  {seconds * 1000:7.1f} ms  {status}")


if __name__ == "__main__":
    main()
