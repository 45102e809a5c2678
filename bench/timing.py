"""Timing shared by the benchmarks: ours and a peer measured alternately, best of N each."""

from __future__ import annotations

import time


def best_of(repeat: int, ours, peer) -> tuple[float, float]:
    """Best time of each, measured alternately so that both see the same machine conditions."""
    times: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for function, seen in ((ours, times[0]), (peer, times[1])):
            start = time.perf_counter()
            function()
            seen.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])
