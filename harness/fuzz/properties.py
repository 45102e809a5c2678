"""The fuzz properties and how a failing draw is reported: shrunk by hypothesis, then written as a case file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gradspec import contracts
from gradspec.adapter import Adapter
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.fuzz import draws, kinks, oracle, sequences, staging, wrapping
from gradspec.fuzz.differences import tolerated_ops
from gradspec.fuzz.strategies import Draw, graphs
from hypothesis import given, settings
from hypothesis import strategies as st

FD_DERIVATION = ("Expected gradients are central finite differences (h = 1e-6) of the case's function "
                 "evaluated in numpy float64 at the drawn point, from a fuzz draw that hypothesis shrank. Derive "
                 "them by hand before moving this case into cases/.")


def first_order(problem: oracle.Problem, rng: np.random.Generator) -> None:
    oracle.check_first_order(problem, oracle.directions(rng, problem))


def second_order(problem: oracle.Problem, rng: np.random.Generator) -> None:
    oracle.check_second_order(problem, oracle.directions(rng, problem), oracle.directions(rng, problem))


HVP_DERIVATION = ("Expected values are the Hessian of the case's function times the vector u (the tensors named "
                  "u_*), estimated by nested central finite differences (h = 1e-4) of the case's function in "
                  "numpy float64, from a fuzz draw that hypothesis shrank. Derive them by hand before moving this "
                  "case into cases/.")


def run(check: Callable, adapter: Adapter, fuzz_settings: settings, staging_folder: Path, stem: str,
        engine: str | None = None, indexing: bool = False) -> None:
    """Check random graphs on `adapter` against finite differences; `engine` is the --engine spec, for replaying.

    With `indexing`, the graphs also index, view and expand values (capability view_ops).
    """
    def judge(example: tuple[Draw, int]) -> None:
        draw, seed = example
        check(oracle.Problem(adapter, draw), np.random.default_rng(seed))

    def write(example: tuple[Draw, int], failure: Exception) -> Path:
        draw, seed = example  # expected values: finite differences of the definition, which no engine runs
        problem = oracle.Problem(adapter, draw)
        if check is second_order:  # the same directions the check drew, so the case replays the failure
            u = oracle.directions(np.random.default_rng(seed), problem)
            # an engine without grad or grad assignment keeps the first gradient in .grad beside H·u
            first = None if {"grad", "grad_assignment"} & adapter.capabilities else oracle.elementwise_gradient(problem)
            data = staging.with_hessian_vector_expectation(draw, u, oracle.elementwise_hvp(problem, u),
                                                           adapter, HVP_DERIVATION, first)
        else:
            data = staging.with_gradient_expectation(draw, oracle.elementwise_gradient(problem), adapter,
                                                     FD_DERIVATION, ["VJP-2"])
        return staging.write_case(data, staging_folder, f"{stem}-{adapter.name}", failure)

    exclude = excluded_ops(adapter, twice=check is second_order)
    _run_and_stage("draw", st.tuples(graphs(indexing=indexing, exclude=exclude), st.integers(0, 2**32 - 1)),
                   judge,
                   oracle.OracleMismatch, write,
                   adapter, fuzz_settings, engine)


def run_sequences(adapter: Adapter, fuzz_settings: settings, staging_folder: Path, engine: str | None = None,
                  strategy=None, stem: str = "sequence", judge: type[Adapter] = ReferenceAdapter) -> None:
    """Random sequences of autograd calls must behave on `adapter` as on the reference engine.

    `strategy` draws the sequences (default `sequences.sequences()`; `view_sequences.view_sequences()` for views).
    `judge` is the engine whose observations count as right (the discovery benchmark plants faults in the reference
    engine and judges it by PyTorch, so that the fault sits where an engine's would).
    """
    reference = judge("cpu", "float64")

    def write(sequence: sequences.Sequence, failure: Exception) -> Path:
        try:  # the judge's observations, comparing it with itself (which cannot disagree)
            observed = sequences.compare(sequence, reference, judge("cpu", "float64"))
        except sequences.Disagreement:
            raise sequences.Disagreement(f"{failure}\nno case written: the judge cannot run this "
                                         "sequence itself") from None
        data = sequences.as_case(sequence, observed, adapter.name)
        return staging.write_case(data, staging_folder, f"{stem}-{adapter.name}", failure)

    # a sequence may differentiate a create_graph result again
    twice = "create_graph" in adapter.capabilities
    both, agreed = common_capabilities(adapter, reference)
    exclude = excluded_ops(adapter, twice) | excluded_ops(reference, twice)  # a judge's recorded bugs are no finding
    default = sequences.sequences(exclude=exclude, extras=both, agreed=agreed)
    _run_and_stage("sequence", default if strategy is None else strategy,
                   lambda sequence: sequences.compare(sequence, adapter, reference),
                   sequences.Disagreement, write, adapter, fuzz_settings, engine)


def common_capabilities(adapter: Adapter, reference: Adapter) -> tuple[frozenset[str], frozenset[str]]:
    """What both engines can do (so what a sequence may call), and the engine-specific capabilities (those no step
    implies: conventions such as torch_detach_inplace) on which they agree, so that a draw may meet the situations
    they decide."""
    from gradspec.running.interpreter import effective_capabilities
    ours, theirs = effective_capabilities(type(adapter)), effective_capabilities(type(reference))
    conventions = {name for name, entry in contracts.capabilities().items() if not entry.get("implied_by")}
    return frozenset(ours & theirs), frozenset(name for name in conventions if (name in ours) == (name in theirs))


def excluded_ops(adapter: Adapter, twice: bool = False) -> frozenset[str]:
    """The ops a property does not draw for this engine: those it lacks (`lacking_ops`: declared, and its op table's
    gaps), those whose difference in the installed release spec/versions.yaml already records (its known failures are
    the corpus's; fuzzing looks for new ones), those whose values its expectation file records as different (`op:NAME`
    in `fuzz_tolerates`), and, for a property that differentiates `twice`, those the adapter declares
    `once_differentiable_ops`."""
    from gradspec.reports.versions import recorded_ops
    once = frozenset(adapter.once_differentiable_ops) if twice else frozenset()
    return adapter.missing_ops() | recorded_ops(adapter.name, adapter.version()) | once | tolerated_ops(adapter)


def run_kinks(adapter: Adapter, fuzz_settings: settings, staging_folder: Path, engine: str | None = None) -> None:
    """Gradients exactly at kinks must follow the KINK rules (for engines that claim PyTorch's conventions)."""
    def write(example: kinks.KinkDraw, failure: Exception) -> Path:
        return staging.write_case(kinks.case_of(example), staging_folder, f"kink-{adapter.name}", failure)

    _run_and_stage("kink draw", kinks.kink_draws(exclude=excluded_ops(adapter)), lambda e: kinks.check(e, adapter),
                   kinks.KinkMismatch, write, adapter, fuzz_settings, engine)


def run_wrapping(adapter: Adapter, fuzz_settings: settings, staging_folder: Path, engine: str | None = None) -> None:
    """A chain of ops wrapped in a custom function with its own derivative must change no derivative."""
    def write(example: wrapping.Wrapped, failure: Exception) -> Path:
        return staging.write_case(wrapping.case_of(example, adapter), staging_folder, f"wrapping-{adapter.name}",
                                  failure)

    second = {"grad", "create_graph"} <= adapter.capabilities  # else first derivatives, by grad or backward
    _run_and_stage("wrapped graph", wrapping.wrapped_graphs(exclude=excluded_ops(adapter, twice=second),
                                                            second_order=second),
                   lambda example: wrapping.check(example, adapter), wrapping.NotTransparent, write, adapter,
                   fuzz_settings, engine)


def _run_and_stage(noun: str, strategy, judge: Callable, failure_type: type[AssertionError], write: Callable,
                   adapter: Adapter, fuzz_settings: settings, engine: str | None) -> None:
    """Run `judge` on drawn examples; on failure write the shrunk example as a case and name the file.

    In a fuzz worker, each example is told to pytest's process before it is judged (draws.Watch), and a worker asked
    to replay the example its predecessor died in stages that one instead of drawing."""
    watch = draws.current
    if watch is not None and watch.replay is not None:
        path = write(watch.replay.example, watch.replay.crash)
        raise draws.DrawCrashed(f"{watch.replay.crash}\n{noun} written to {path}; "
                                f"{_replay_command(path, adapter, engine)}", watch.replay.crash.what)
    failing: dict = {}

    @fuzz_settings
    @given(example=strategy)
    def prop(example) -> None:
        if watch is not None:
            watch.drawing(noun, example)
        try:
            judge(example)
        except failure_type:
            failing["example"] = example  # the last failure hypothesis replays is the shrunk one
            raise

    try:
        prop()
    except Exception as exc:  # also hypothesis's Flaky and groups of distinct failures, which wrap ours
        if "example" not in failing:
            raise
        if watch is not None:
            watch.staging()
        path = write(failing["example"], exc)
        detail = str(exc)
        for inner in getattr(exc, "exceptions", ()):  # a group of distinct failures: each one's first line
            detail += f"\n  - {(str(inner).splitlines() or [''])[0]}"
        raise failure_type(f"{detail}\nshrunk {noun} written to {path}; "
                           f"{_replay_command(path, adapter, engine)}") from None


def _replay_command(path: Path, adapter: Adapter, engine: str | None) -> str:
    return f"replay it with: pytest {path} --engine {engine or adapter.name} --device {adapter.device} --dtype float64"
