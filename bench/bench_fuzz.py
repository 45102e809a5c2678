"""Benchmark the fuzzer: graphs checked per second, and the oracle's cost against torch's fast gradcheck.

    python bench/bench_fuzz.py [--examples N] [--repeat R]

1. Throughput of the first-order property (draw a graph, run the engine's gradient and
   the finite-difference oracle) against the reference engine and against torch, in one
   process on one core (target: at least 300 graphs per second against the reference).
2. The oracle's cost against torch.autograd.gradcheck(fast_mode=True) on the same
   function of n = 1,000 inputs, f(x) = sum(sin(x) * x), both on torch, measured
   alternately (target: the oracle at least 5x cheaper). The oracle's figure is the whole
   check, the engine's gradient through the adapter included; its share is printed too.
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.fuzz import oracle
from gradspec.fuzz.strategies import Draw, graphs
from hypothesis import HealthCheck, given, settings
from timing import best_of

try:
    import torch
    from gradspec.adapters.torch_adapter import TorchAdapter
except ImportError:
    torch = None


def throughput(adapter, examples: int) -> float:
    """Graphs checked per second by the first-order property."""
    checked = []

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(graphs())
    def prop(draw):
        problem = oracle.Problem(adapter, draw)
        oracle.check_first_order(problem, oracle.directions(np.random.default_rng(0), problem))
        checked.append(1)

    start = time.perf_counter()
    prop()
    return len(checked) / (time.perf_counter() - start)


def oracle_against_gradcheck(n: int, repeat: int) -> tuple[float, float]:
    x0 = np.linspace(-2.0, 2.0, n)
    data = {"schema_version": 1, "title": "bench", "rules": ["VJP-2"], "source": "bench", "derivation": "bench",
            "capabilities": ["grad"], "dtypes": ["float64"], "tensors": {"x": {"value": x0.tolist(), "requires_grad": True}},
            "steps": ["y = sum(mul(sin(x), x))"]}
    problem = oracle.Problem(TorchAdapter("cpu", "float64"), Draw(data, ("x",), "y", None))
    u = oracle.directions(np.random.default_rng(0), problem)
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)

    def ours():
        oracle.check_first_order(problem, u)

    def theirs():
        assert torch.autograd.gradcheck(lambda t: (torch.sin(t) * t).sum(), (x,), fast_mode=True)

    ours_time, theirs_time = best_of(repeat, ours, theirs)
    engine_time, _ = best_of(repeat, problem.gradient_arrays, theirs)
    return ours_time, theirs_time, engine_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    print(f"fuzz benchmark: {args.examples} graphs per engine; oracle timings best of {args.repeat}")
    rate = throughput(ReferenceAdapter("cpu", "float64"), args.examples)
    print(f"first-order graphs checked per second, reference engine: {rate:7.0f}   (target >= 300)")
    if torch is None:
        print("torch is not installed: the torch figures are skipped")
        return
    rate = throughput(TorchAdapter("cpu", "float64"), args.examples)
    print(f"first-order graphs checked per second, torch:            {rate:7.0f}")
    ours, theirs, engine = oracle_against_gradcheck(1000, args.repeat)
    print(f"oracle at n=1000: {ours * 1e3:.2f} ms; gradcheck(fast_mode=True): {theirs * 1e3:.2f} ms; "
          f"gradcheck / oracle = {theirs / ours:.1f}x   (target >= 5x)")
    print(f"  of the oracle's time, torch's own gradient through the adapter: {engine * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
