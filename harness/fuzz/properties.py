"""The fuzz properties and how a failing draw is reported: shrunk by hypothesis, then written as a case file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ..adapter import Adapter
from ..adapters.reference_adapter import ReferenceAdapter
from . import oracle, sequences, staging
from .strategies import Draw, graphs

FD_DERIVATION = ("Expected gradients are central finite differences (h = 1e-6) of the "
                 "reference engine's forward at the drawn point, from a fuzz draw that hypothesis shrank. Derive "
                 "them by hand before moving this case into cases/.")


def first_order(problem: oracle.Problem, rng: np.random.Generator) -> None:
    oracle.check_first_order(problem, oracle.directions(rng, problem))


def second_order(problem: oracle.Problem, rng: np.random.Generator) -> None:
    oracle.check_second_order(problem, oracle.directions(rng, problem), oracle.directions(rng, problem))


def run(check: Callable, adapter: Adapter, fuzz_settings: settings, staging_folder: Path, stem: str) -> None:
    """Check random graphs on `adapter`; on failure write the shrunk draw out and name the file."""
    failing: dict = {}

    @fuzz_settings
    @given(draw=graphs(), seed=st.integers(0, 2**32 - 1))
    def prop(draw: Draw, seed: int) -> None:
        try:
            check(oracle.Problem(adapter, draw), np.random.default_rng(seed))
        except oracle.OracleMismatch:
            failing["draw"] = draw  # the last failure hypothesis replays is the shrunk one
            raise

    try:
        prop()
    except oracle.OracleMismatch as exc:
        path = _write_failure(failing["draw"], adapter, staging_folder, stem)
        raise oracle.OracleMismatch(f"{exc}\nshrunk draw written to {path}; replay it with: "
                                    f"pytest {path} --engine {adapter.name} --device {adapter.device}") from None


def _write_failure(draw: Draw, adapter: Adapter, folder: Path, stem: str) -> Path:
    """A case whose expected gradients are finite differences of the reference engine's forward."""
    reference = oracle.Problem(ReferenceAdapter("cpu", "float64"), draw)
    expected = oracle.elementwise_gradient(reference)
    data = staging.with_gradient_expectation(draw.data, draw.leaves, draw.output, draw.grad_output, expected,
                                             adapter.name, FD_DERIVATION, ["VJP-2"])
    return staging.write_case(data, folder, f"{stem}-{adapter.name}")


def run_sequences(adapter: Adapter, fuzz_settings: settings, staging_folder: Path) -> None:
    """Random sequences of autograd calls must behave on `adapter` as on the reference engine."""
    reference = ReferenceAdapter("cpu", "float64")
    failing: dict = {}

    @fuzz_settings
    @given(sequence=sequences.sequences())
    def prop(sequence: sequences.Sequence) -> None:
        try:
            sequences.compare(sequence, adapter, reference)
        except sequences.Disagreement:
            failing["sequence"] = sequence
            raise

    try:
        prop()
    except sequences.Disagreement as exc:
        sequence = failing["sequence"]
        try:
            observed = _reference_observations(sequence, reference)
        except sequences.Disagreement:
            raise sequences.Disagreement(f"{exc}\nno case written: the reference engine cannot run this sequence "
                                         "itself") from None
        data = sequences.as_case(sequence, observed, adapter.name)
        path = staging.write_case(data, staging_folder, f"sequence-{adapter.name}")
        raise sequences.Disagreement(f"{exc}\nshrunk sequence written to {path}; replay it with: "
                                     f"pytest {path} --engine {adapter.name} --device {adapter.device}") from None


def _reference_observations(sequence: sequences.Sequence, reference: Adapter) -> list[dict]:
    """What the reference engine observes, comparing it with itself (which cannot disagree)."""
    return sequences.compare(sequence, reference, ReferenceAdapter("cpu", "float64"))
