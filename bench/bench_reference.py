"""Benchmark the reference engine against peers measured in the same run; prints ratios, asserts nothing.

    python bench/bench_reference.py [--repeat N]

1. forward + backward of a 10,000-op chain of size-1 tensors, against PyTorch CPU eager
   (target: at most 0.7x PyTorch's time);
2. the same with create_graph=True;
3. a 1,000-op chain of mul/add on 10^5-element tensors, against the same numpy calls
   (forward and the hand-written backward) without any graph (target: within 1.1x);
4. growth from a 1,000-op to a 10,000-op chain of size-1 tensors (target: at most 11x);
5. a chain that alternates views and in-place updates through them (`v = b[1:]`, `v *= c`,
   `b[0] = ...`), 1,000 steps on a 64-element base, forward and backward, against PyTorch CPU
   eager (target: at most 1.0x PyTorch's time; the strided path of views.py, no index maps),
   and its growth from 1,000 to 4,000 steps (linear: about 4x).
Each figure is the best of --repeat runs, ours and the peer's measured alternately so that
both see the same machine conditions.
"""

from __future__ import annotations

import argparse
import platform
import warnings

import numpy as np
from gradspec import reference_engine as rg
from timing import best_of

try:
    import torch
except ImportError:  # the PyTorch comparisons are skipped without it
    torch = None


def chain(module, ops: int, size: int, create_graph: bool = False):
    """y = ((x*c + d)*c + d)...; ops alternate mul and add; then backward."""
    make = (lambda v, g=False: rg.tensor(v, requires_grad=g)) if module == "reference" else (
        lambda v, g=False: torch.tensor(v, requires_grad=g, dtype=torch.float64))
    x = make(np.full(size, 1.0), True)
    c, d = make(np.full(size, 1.0001)), make(np.full(size, 0.001))

    def run():
        y = x
        for i in range(ops):
            y = y * c if i % 2 == 0 else y + d
        loss = y.sum()
        loss.backward(create_graph=create_graph)
        x.grad = None
    return run


def view_chain(module, steps: int, size: int = 64):
    """b = x * 1, then per step a view of b updated in place, alternating slices, select and assignment."""
    make = (lambda v, g=False: rg.tensor(v, requires_grad=g)) if module == "reference" else (
        lambda v, g=False: torch.tensor(v, requires_grad=g, dtype=torch.float64))
    x, c = make(np.full(size, 1.0), True), make(np.full(size - 1, 1.0001))

    def run():
        b = x * 1
        for i in range(steps):
            if i % 3 == 0:
                v = b[1:]
                v *= c
            elif i % 3 == 1:
                b.select(0, i % size).add_(0.001)
            else:
                b[0] = b[1] * 0.5
        loss = b.sum()
        loss.backward()
        x.grad = None
    return run


def numpy_chain(ops: int, size: int):
    """The same arithmetic as chain(...) in plain numpy: forward, then the backward by hand."""
    x, c, d = np.full(size, 1.0), np.full(size, 1.0001), np.full(size, 0.001)

    def run():
        y = x
        for i in range(ops):
            y = y * c if i % 2 == 0 else y + d
        g = np.ones(size)
        for i in reversed(range(ops)):
            if i % 2 == 0:
                g = g * c
        return g
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    r = args.repeat
    # The create_graph workload makes PyTorch warn of a leaf-gradient cycle (HIGHER-6): expected, not news.
    warnings.filterwarnings("ignore", message=r".*create_graph=True will create a reference cycle")
    print(f"reference engine benchmark; python {platform.python_version()}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'absent'}; best of {r}")
    rows = []
    if torch is not None:
        torch.set_num_threads(1)
        for create_graph, label in ((False, "10,000-op chain, size 1"), (True, "10,000-op chain, size 1, create_graph")):
            ours, theirs = best_of(r, chain("reference", 10_000, 1, create_graph), chain("torch", 10_000, 1, create_graph))
            target = "<= 0.7" if not create_graph else "(none)"
            rows.append((label, "torch eager", ours, theirs, target))
    ours, plain = best_of(r, chain("reference", 1_000, 100_000), numpy_chain(1_000, 100_000))
    rows.append(("1,000-op chain, size 1e5", "plain numpy", ours, plain, "<= 1.1"))
    large, small = best_of(r, chain("reference", 10_000, 1), chain("reference", 1_000, 1))
    rows.append(("growth 1,000 -> 10,000 ops", "1,000 ops", large, small, "<= 11"))
    if torch is not None:
        ours, theirs = best_of(r, view_chain("reference", 1_000), view_chain("torch", 1_000))
        rows.append(("views and in-place, 1,000 steps, size 64", "torch eager", ours, theirs, "<= 1.0"))
    large, small = best_of(r, view_chain("reference", 4_000), view_chain("reference", 1_000))
    rows.append(("views and in-place growth 1,000 -> 4,000", "1,000 steps", large, small, "~4 (linear)"))
    print(f"{'workload':<40} {'peer':<12} {'ours (s)':>10} {'peer (s)':>10} {'ratio':>7}  target")
    for label, peer, a, b, target in rows:
        print(f"{label:<40} {peer:<12} {a:>10.4f} {b:>10.4f} {a / b:>7.2f}  {target}")


if __name__ == "__main__":
    main()
