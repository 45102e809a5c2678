"""Benchmark the fuzzer: graphs checked per second, and the oracle's cost against torch's fast gradcheck.

    python bench/bench_fuzz.py [--examples N] [--repeat R]

1. Throughput of the first-order property (draw a graph, run the engine's gradient and
   the finite-difference oracle) against the reference engine and against torch, in one
   process on one core (target: at least 300 graphs per second against the reference).
2. The oracle's cost against torch.autograd.gradcheck(fast_mode=True) on the same
   function of n = 1,000 inputs, f(x) = sum(sin(x) * x), both on torch, measured
   alternately (target: the oracle at least 5x cheaper). Three figures, as the target can
   be read two ways and one of them has a ceiling:
   - the whole check: the oracle with torch's gradient through the adapter, which any
     check pays, gradcheck included;
   - the oracle's own work: the whole check less that gradient (measured on its own);
   - the floor for a whole check of this design: the same check written out by hand for
     this one function (two numpy evaluations, one torch gradient, one comparison).
Prints figures and ratios; no timing is asserted (the peers check their answers).
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


def oracle_against_gradcheck(n: int, repeat: int) -> tuple[float, float, float, float]:
    """Best times of: our whole check, gradcheck, torch's gradient through the adapter, the check by hand."""
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

    def by_hand():
        assert minimal_check(x0, u[0])

    return best_of(repeat, ours, theirs, problem.gradient_arrays, by_hand)


def minimal_check(x0: np.ndarray, u: np.ndarray) -> bool:
    """The first-order check of sum(sin(x) * x) with nothing general about it: the floor for our oracle's design."""
    ahead, behind = x0 + oracle.STEP * u, x0 - oracle.STEP * u
    estimate = (np.add.reduce(np.sin(ahead) * ahead) - np.add.reduce(np.sin(behind) * behind)) / (2 * oracle.STEP)
    x = torch.from_numpy(x0.copy()).requires_grad_(True)
    (gradient,) = torch.autograd.grad([(x.sin() * x).sum()], [x])
    terms = gradient.numpy() * u
    return abs(terms.sum() - estimate) <= oracle.RTOL * np.abs(terms).sum()


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
    ours, theirs, engine, by_hand = oracle_against_gradcheck(1000, args.repeat)
    print(f"at n=1000, gradcheck(fast_mode=True): {theirs * 1e3:.3f} ms; against it (target >= 5x):")
    for label, cost in (("whole check, torch's gradient included", ours),
                        (f"the oracle's own work (less {engine * 1e3:.3f} ms)", ours - engine),
                        ("the whole check by hand, no harness", by_hand)):
        print(f"  {label:44s} {cost * 1e3:.3f} ms  {theirs / cost:5.1f}x")
    print("  (the last is the floor for a check of this design, numpy differences and one torch gradient)")


if __name__ == "__main__":
    main()
