"""Known differences the sequence fuzzer tolerates, each exactly, for the engines whose expectation files record them.

An engine that differs from the rule book on purpose or by a recorded bug (Paddle gives leaves a grad_fn, LEAF-1)
would fail every draw that meets the difference, hiding whatever else the fuzzer might find on it. An adapter names
the differences it has in `fuzz_tolerates` (name -> the case whose line in the engine's expectation file records it;
tests/test_fuzz_differences.py checks that the line exists): a disagreement that one of them describes ends the draw
there without failing it, since what follows may differ for that reason. Each entry matches one observable narrowly, so
that nothing else passes for it. An entry `op:NAME` names an op whose values differ (a constant kept in float32): the
properties do not draw that op for the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    rule: str
    says: str
    matches: Callable  # (Disagreement) -> bool


def _flags(disagreement, expect: tuple, have: tuple) -> bool:
    """Whether (requires_grad, is_leaf, has grad_fn) differ exactly so: the judge's flags match `expect` and the
    engine's `have` where these say True or False, and the two agree where they say None."""
    got, expected = disagreement.got, disagreement.expected
    if disagreement.observable != "flags" or not (isinstance(got, tuple) and isinstance(expected, tuple)
                                                   and len(got) == len(expected) == 3):
        return False
    return all(g == x if e is None else (x == e and g == h)
               for g, x, e, h in zip(got, expected, expect, have, strict=True))


KNOWN: dict[str, Difference] = {
    "leaf_has_grad_fn": Difference(
        "LEAF-1", "a leaf reports a grad_fn (Paddle's GradNodeAccumulation), all else the same",
        lambda d: _flags(d, (None, True, False), (None, True, True))),
    "results_become_leaves": Difference(
        "LEAF-2", "a pass that frees the graph drops its nodes, so its results become leaves without a grad_fn "
        "(mygrad's backward clears the graph it ran)",
        lambda d: _flags(d, (None, False, True), (None, True, False))),
    "unrecorded_result_has_grad_fn": Difference(
        "LEAF-2", "a result that does not require grad is no leaf and has a grad_fn (Paddle: a PyLayer's output "
        "marked non-differentiable)",
        lambda d: _flags(d, (False, True, False), (False, False, True))),
    "nonleaf_requires_grad_off_allowed": Difference(
        "LEAF-4", "requires_grad_(False) on a non-leaf is allowed instead of raising nonleaf_requires_grad",
        lambda d: _raised(d, "requires_grad_", None, "nonleaf_requires_grad")),
    "custom_gradient_for_constant_input_refused": Difference(
        "CUSTOM-3", "a custom backward's gradient for an input that does not require grad is refused, where it is "
        "ignored (Paddle: 'should return None at N position, because it's forward Tensor's stopgradient is true')",
        lambda d: _raised(d, None, "unclassified", None) and "stopgradient is true" in d.error),
    "unused_input_gives_none": Difference(
        "GRAD-3", "grad gives None for an input no output uses, without allow_unused, instead of raising unused_input",
        lambda d: _raised(d, None, None, "unused_input") and d.step in ("grad", "derivative")),
    "custom_grad_shape_unchecked": Difference(
        "CUSTOM-4", "a custom backward's gradient of a shape its input cannot be summed to is not refused: it passes, "
        "or fails later inside the engine (an error of no kind)",
        lambda d: d.observable == "raised" and d.expected == "custom_grad_shape" and d.got in (None, "unclassified")),
    "unreached_leaf_gets_zeros": Difference(
        "ACC-1", "backward fills zeros into the .grad of a leaf no gradient path reaches, where it stays None",
        lambda d: d.observable == "grad" and d.expected is None and d.got is not None and not d.got.any()),
    "one_output_per_grad": Difference(
        "GRAD-1", "grad differentiates one output at a time: the adapter refuses grad of several outputs",
        lambda d: d.observable == "unsupported" and "one output" in d.error),
}


def _raised(disagreement, step: str | None, got: str | None, expected: str | None) -> bool:
    """Whether the engine raised `got` (None: nothing) where the judge raised `expected`, at a `step` of that kind
    (None: any)."""
    return (disagreement.observable == "raised" and disagreement.got == got and disagreement.expected == expected
            and step in (None, disagreement.step))


def tolerated(engine, disagreement) -> str | None:
    """The name of the known difference of `engine` that describes `disagreement`, or None."""
    for name in getattr(engine, "fuzz_tolerates", {}):
        if not name.startswith("op:") and KNOWN[name].matches(disagreement):
            return name
    return None


def tolerated_ops(engine) -> frozenset[str]:
    """Ops whose values the engine computes otherwise, as its expectation file records (`op:NAME` entries of
    `fuzz_tolerates`: TensorFlow keeps leaky_relu's slope as a float32 attribute): no property draws them."""
    return frozenset(name[3:] for name in getattr(engine, "fuzz_tolerates", {}) if name.startswith("op:"))
