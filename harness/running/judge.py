"""The verdict of an `expect` step, from what the engine showed as plain data (arrays, dtype names, flags, logs).

Judging is kept apart from looking: the interpreter reads the engine into an `Observed` and this module alone
decides. So the same judgment can be made twice, once in the engine's process (to stop the run where it fails)
and once more in pytest's own process from the observations the isolation worker sends back
(isolation.rejudge): an adapter that patches gradspec's comparison in its own process cannot change a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gradspec.language.case import Step, thawed
from gradspec.running.compare import array_mismatch, judged_dtype
from gradspec.running.saved_hooks import check_calls

Expected = tuple[frozenset[str], str]  # the floating dtypes a value may have (none: not judged), and the rule
FLAGS = ("requires_grad", "is_leaf", "has_grad_fn", "is_inference")


@dataclass(frozen=True)
class Read:
    """One value as the engine gave it: the array (None where the engine gave None), the dtypes it came in (the
    engine's name for it and numpy's), what it may be; or why it could not be read as a user reads it (SHAPE-5)."""
    array: np.ndarray | None
    given: tuple[str, ...]
    expected: Expected
    unreadable: str | None = None


@dataclass(frozen=True)
class Observed:
    """Everything one `expect` step looks at, read from the engine before anything is judged."""
    values: dict[str, Read]
    grads: dict[str, Read]
    grad_dtypes: dict[str, str | None]  # the engine's dtype name of each .grad, None where there is none
    flags: dict[str, dict[str, bool]]  # per flag of FLAGS, per tensor
    hook_log: list[tuple[str, np.ndarray | None, bool | None]] | None  # label, gradient, grad mode inside
    hook_dtypes: dict[str, Expected]
    backward_log: list[dict] | None  # calls of case functions' backwards (custom.py)
    saved_calls: list[tuple[str, str, np.ndarray]] | None  # saved-tensor hook calls (saved_hooks.py)
    case_dtypes: Expected  # what a value may be where nothing more is known
    run_dtype: str  # the dtype the run asked for
    supported: tuple[str, ...]  # the dtypes the engine declares


@dataclass(frozen=True)
class Judgment:
    """One judged `expect` step: which one (its index in expect_steps), where it ran, what was seen, what was found."""
    index: int
    step: str  # e.g. "step 5 (expect, line 21)"
    observed: Observed
    problems: tuple[str, ...]
    tensor: str | None


def snapshot(seen: Observed) -> Observed:
    """A copy of every array in `seen` (far cheaper than copy.deepcopy): an engine may change the arrays it gave
    after the step, and the copy must be judged as the step saw them."""
    def array(value):
        return None if value is None else np.array(value)

    def read(given: Read) -> Read:
        return Read(array(given.array), given.given, given.expected, given.unreadable)

    return Observed(
        {name: read(r) for name, r in seen.values.items()}, {name: read(r) for name, r in seen.grads.items()},
        dict(seen.grad_dtypes), {flag: dict(names) for flag, names in seen.flags.items()},
        None if seen.hook_log is None else [(label, array(grad), mode) for label, grad, mode in seen.hook_log],
        dict(seen.hook_dtypes),
        None if seen.backward_log is None else [{**call, "grads": [array(g) for g in call["grads"]]}
                                                for call in seen.backward_log],
        None if seen.saved_calls is None else [(label, which, array(value)) for label, which, value in seen.saved_calls],
        seen.case_dtypes, seen.run_dtype, seen.supported)


def expect_steps(steps: tuple[Step, ...], required: bool = True):
    """(step, required) for every `expect` step, blocks' bodies included, in one fixed order (their indices number
    judgments); required is False inside a block that expects an error, whose later steps may never run."""
    for step in steps:
        if step.kind == "expect":
            yield step, required
        yield from expect_steps(step.body, required and step.raises is None)


def judge_expect(expect: Mapping[str, Any], seen: Observed, tolerance: Mapping[str, float]) -> tuple[list[str], str | None]:
    """Every problem of one `expect` step, in the order the step writes its checks, and the tensor of the first."""
    problems: list[str] = []
    first: list[str] = []  # the tensor of the first problem, for reports to mark in the case's graph

    def about(name: str) -> None:
        if problems and not first:
            first.append(name)

    for name, want in expect.get("value", {}).items():
        _check(problems, f"value of {name}", want, seen.values[name], seen, tolerance)
        about(name)
    for name, want in expect.get("grad", {}).items():
        _check(problems, f".grad of {name}", want, seen.grads[name], seen, tolerance)
        about(name)
    for name, want in expect.get("grad_dtype", {}).items():
        got = seen.grad_dtypes[name]
        if got != want:
            problems.append(f"dtype of .grad of {name}: expected {want}, got {got}")
        about(name)
    for flag in FLAGS:
        for name, want in expect.get(flag, {}).items():
            got = seen.flags[flag][name]
            if got != want:
                problems.append(f"{flag} of {name}: expected {want}, got {got}")
            about(name)
    if "hook_calls" in expect:
        _hook_calls(problems, expect["hook_calls"], seen, tolerance)
    if "hook_grads" in expect:
        _hook_grads(problems, expect["hook_grads"], seen, tolerance)
    if "backward_calls" in expect:
        _backward_calls(problems, expect["backward_calls"], seen, tolerance)
    if "saved_hook_calls" in expect:
        check_calls(problems, seen.saved_calls or [], expect["saved_hook_calls"], tolerance, seen.case_dtypes[0],
                    seen.supported)
    return problems, (first[0] if first else None)


def _check(problems: list[str], what: str, want: Any, read: Read, seen: Observed, tolerance) -> None:
    if read.unreadable is not None:
        problems.append(f"{what}: the result cannot be read as a user reads it ({read.unreadable}), SHAPE-5")
        return
    compare(problems, what, want, read.array, read.given, read.expected, seen, tolerance)


def compare(problems: list[str], what: str, want: Any, got: np.ndarray | None, given: tuple[str, ...],
            expected: Expected, seen: Observed, tolerance) -> None:
    """One problem line for `what`: its dtype (judged_dtype), then its values in the tolerance of the dtype asked
    for; `given` holds the dtypes the engine gave it (none where it gave None)."""
    dtype, wrong = judged_dtype(expected[0], given or (seen.run_dtype,), seen.supported)
    mismatch = array_mismatch(thawed(want), got, dtype, tolerance)
    found = [f"{wrong} ({expected[1]})"] if wrong else []
    found += [mismatch] if mismatch else []
    if found:
        problems.append(f"{what}: {'; '.join(found)}")


def _logged(grad: np.ndarray | None) -> tuple[str, ...]:
    """The dtype a logged gradient came in (none where the hook saw None)."""
    return () if grad is None else (str(grad.dtype),)


def _hook_grads(problems: list[str], expected: Any, seen: Observed, tolerance) -> None:
    """Per hook, the gradients it saw in order; the order across hooks is not checked."""
    calls: dict[str, list] = {}
    for label, grad, _ in seen.hook_log or []:
        calls.setdefault(label, []).append(grad)
    if sorted(calls) != sorted(expected):
        problems.append(f"hooks called: expected {sorted(expected)}, got {sorted(calls)}")
        return
    for label, wanted in expected.items():
        got = calls[label]
        if len(got) != len(wanted):
            problems.append(f"hook {label}: expected {len(wanted)} call(s), got {len(got)}")
            continue
        for index, (want, grad) in enumerate(zip(wanted, got, strict=True), start=1):
            compare(problems, f"hook {label}, call {index}", want, grad, _logged(grad),
                    seen.hook_dtypes.get(label, seen.case_dtypes), seen, tolerance)


def _hook_calls(problems: list[str], expected: Any, seen: Observed, tolerance) -> None:
    log = seen.hook_log or []
    got_labels, want_labels = [label for label, _, _ in log], [call["hook"] for call in expected]
    if got_labels != want_labels:
        problems.append(f"hook calls: expected {want_labels}, got {got_labels}")
        return
    for index, (call, (label, grad, mode)) in enumerate(zip(expected, log, strict=True), start=1):
        if "grad" in call:
            compare(problems, f"hook call {index} ({label})", call["grad"], grad, _logged(grad),
                    seen.hook_dtypes.get(label, seen.case_dtypes), seen, tolerance)
        if "grad_mode" in call and mode != call["grad_mode"]:
            problems.append(f"hook call {index} ({label}): grad mode inside was {mode}, expected {call['grad_mode']}")


def _backward_calls(problems: list[str], expected: Any, seen: Observed, tolerance) -> None:
    """The calls of case functions' backwards since the last check, in order: which, what arrived, grad mode."""
    log = seen.backward_log or []
    got, want = [call["function"] for call in log], [call["function"] for call in expected]
    if got != want:
        problems.append(f"backward calls: expected {want}, got {got}")
        return
    for number, (call, arrived) in enumerate(zip(expected, log, strict=True), start=1):
        if len(call["grads"]) != len(arrived["grads"]):
            problems.append(f"backward call {number} ({arrived['function']}): expected {len(call['grads'])} "
                            f"gradient(s), got {len(arrived['grads'])}")
            continue
        for slot, (want_grad, grad) in enumerate(zip(call["grads"], arrived["grads"], strict=True)):
            compare(problems, f"backward call {number} ({arrived['function']}), gradient {slot}", want_grad, grad,
                    _logged(grad), seen.case_dtypes, seen, tolerance)
        if "grad_mode" in call and arrived["grad_mode"] != call["grad_mode"]:
            problems.append(f"backward call {number} ({arrived['function']}): grad mode inside was "
                            f"{arrived['grad_mode']}, expected {call['grad_mode']}")
