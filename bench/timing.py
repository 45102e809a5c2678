"""Timing shared by the benchmarks: ours and its peers measured in turn, best of N each."""

from __future__ import annotations

import time


def best_of(repeat: int, *functions) -> tuple[float, ...]:
    """Best time of each function, measured in turn, round after round, so that all see the same machine conditions."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for function, seen in zip(functions, times, strict=True):
            start = time.perf_counter()
            function()
            seen.append(time.perf_counter() - start)
    return tuple(min(seen) for seen in times)
