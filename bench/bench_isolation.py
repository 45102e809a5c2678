"""What running each case in a worker process costs: the corpus with and without isolation; prints, asserts nothing.

    python bench/bench_isolation.py [--repeat N] [--engine NAME] [PATH ...]

Runs `pytest PATH --engine NAME --gradspec-isolation process` (the default: one worker per engine, started while
pytest collects, each case sent to it parsed, its observations judged again in pytest's process) and the same with
`--gradspec-isolation none`, alternately, as whole pytest processes, so that start-up counts as a user sees it.
Prints the best wall time of each and the CPU time (pytest and its worker processes together), whose ratio a
machine shared with other work disturbs far less than the wall time's.
Target: isolation at most 1.25x the time without it (issue 24 measured 1.64x when the worker re-read every case
file; bench figures in the issue's closing note).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus_run(paths: list[str], engine: str, isolation: str) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest run over the corpus."""
    command = [sys.executable, "-m", "pytest", *paths, "--engine", engine, "--gradspec-isolation", isolation,
               "-q", "-p", "no:cacheprovider"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1: some case failed, which costs the same; anything else: no figure
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["cases"], help="case files or folders (default: cases)")
    parser.add_argument("--engine", default="reference")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seen: dict[str, list[tuple[float, float]]] = {"process": [], "none": []}
    for _ in range(args.repeat):  # in turn, so that both see the same machine conditions
        for isolation, runs in seen.items():
            runs.append(corpus_run(args.paths, args.engine, isolation))
    best = {isolation: (min(w for w, _ in runs), min(c for _, c in runs)) for isolation, runs in seen.items()}
    print(f"corpus {' '.join(args.paths)} on {args.engine}, best of {args.repeat}:")
    for isolation, (wall, cpu) in best.items():
        print(f"  isolation {isolation:<8} wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    print(f"  ratio              wall {best['process'][0] / best['none'][0]:6.2f}x   cpu "
          f"{best['process'][1] / best['none'][1]:6.2f}x   (target at most 1.25x)")


if __name__ == "__main__":
    main()
