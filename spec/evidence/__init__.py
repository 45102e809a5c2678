"""The experiments that decided rules of the rule book, kept so that anyone can rerun them on any installed release.

Each module here holds the experiments behind some rules: small functions, decorated with `experiment`, that
drive the installed engine (torch, imported inside the function) through the situation a rule sentence speaks
about, at its edges, and return what they observed as a list of `(what, observed, expected)` triples. A triple
whose observed value differs from what the rule book says is a contradiction. `python -m gradspec.spec.evidence`
runs every experiment and exits 1 on any contradiction; `make versions` runs it on every release it installs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Observation = tuple[str, Any, Any]  # what was looked at, what the engine did, what the rule book says


@dataclass
class Experiment:
    rules: tuple[str, ...]
    claim: str  # the rule book's sentence (or part of it) that the experiment tries to break
    run: Callable[[], list[Observation]]
    engine: str = "torch"
    module: str = field(default="")

    @property
    def name(self) -> str:
        return f"{self.module}.{self.run.__name__}"


EXPERIMENTS: list[Experiment] = []


def f64(values: Any, requires_grad: bool = False) -> Any:
    """A float64 torch tensor, the dtype every experiment works in (torch is imported here, when one runs)."""
    import torch
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def experiment(*rules: str, claim: str, engine: str = "torch") -> Callable[[Callable[[], list[Observation]]], Callable]:
    """Register a function as the experiment behind `rules`; it returns its observations."""
    def register(run: Callable[[], list[Observation]]) -> Callable[[], list[Observation]]:
        EXPERIMENTS.append(Experiment(tuple(rules), claim, run, engine, run.__module__.rsplit(".", 1)[-1]))
        return run
    return register
