"""Saved-tensor hooks for a case's `saved_tensor_hooks` blocks: the pack and unpack the case asks for, a log of every
call, and the check of `saved_hook_calls` against it (SAVED rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gradspec.adapter import Adapter
from gradspec.language.case import thawed
from gradspec.running.compare import array_mismatch, judged_dtype


class SavedHookLog:
    """Every pack and unpack call since the last check: (block label, "pack" or "unpack", the value it got)."""

    def __init__(self, adapter: Adapter):
        self.adapter = adapter
        self.calls: list[tuple[str, str, np.ndarray]] = []

    def block(self, args: Mapping[str, Any]):
        """The engine's saved-tensor hooks block for a step's arguments (label, pack, unpack)."""
        label, pack, unpack = args["saved_tensor_hooks"], args.get("pack"), args.get("unpack")
        adapter = self.adapter

        def pack_hook(tensor):
            self.calls.append((label, "pack", adapter.to_numpy(tensor)))
            if pack is None:
                return tensor
            if pack.get("in_place"):
                return adapter.apply_inplace("mul", tensor, float(pack["scale"]))
            return adapter.apply("mul", [tensor, float(pack["scale"])], {})

        def unpack_hook(packed):
            self.calls.append((label, "unpack", adapter.to_numpy(packed)))
            return packed if unpack is None else adapter.apply("mul", [packed, float(unpack["scale"])], {})

        return adapter.saved_tensor_hooks(pack_hook, unpack_hook)

    def check(self, problems: list[str], expected: Any, tolerance: Any, dtypes: frozenset[str] = frozenset()) -> None:
        """The calls since the last check against `expected` (check_calls); the log starts afresh."""
        calls, self.calls = self.calls, []
        check_calls(problems, calls, expected, tolerance, dtypes, type(self.adapter).dtypes)


def check_calls(problems: list[str], calls: list[tuple[str, str, np.ndarray]], expected: Any, tolerance: Any,
                dtypes: frozenset[str], supported: tuple[str, ...]) -> None:
    """Pack calls in the order values were saved; unpack calls in any order (engines promise none, SAVED-2).

    `dtypes`: the floating dtypes a saved value may have (the case's), whose tolerance judges it, never the dtype
    the engine gave: a floating value of another dtype is itself a problem (SHAPE-6). Plain data in, so that it
    judges as well from observations sent back by the engine's process (judge.py).
    """
    for which in ("pack", "unpack"):
        got = [(label, value) for label, call, value in calls if call == which]
        want = [(call[which], thawed(call["value"])) for call in expected if which in call]
        if len(got) != len(want):
            problems.append(f"saved-tensor {which} calls: expected {len(want)}, got {len(got)} "
                            f"({[label for label, _ in got]})")
            continue
        if which == "unpack":
            got = _facing(want, got, tolerance, dtypes, supported)
        for number, ((want_label, want_value), (label, value)) in enumerate(zip(want, got, strict=True), 1):
            dtype, wrong = judged_dtype(dtypes, (str(value.dtype),), supported)
            mismatch = "; ".join(filter(None, [wrong and f"{wrong} (SHAPE-6)",
                                               array_mismatch(want_value, value, dtype, tolerance)]))
            if label != want_label or mismatch:
                problems.append(f"saved-tensor {which} call {number}: expected {want_label} with {want_value}, "
                                f"got {label}: {mismatch or 'the same value'}")


def _facing(want: list, got: list, tolerance: Any, dtypes: frozenset[str], supported: tuple[str, ...]) -> list:
    """`got` reordered so that each wanted call faces an equal one where there is one, and a leftover where not."""
    left, facing = list(got), [None] * len(want)
    for slot, (want_label, want_value) in enumerate(want):
        index = next((i for i, (label, value) in enumerate(left) if label == want_label and not array_mismatch(
            want_value, value, judged_dtype(dtypes, (str(value.dtype),), supported)[0], tolerance)), None)
        if index is not None:
            facing[slot] = left.pop(index)
    return [call if call is not None else left.pop(0) for call in facing]
