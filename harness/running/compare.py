"""Compare observed values with expected ones under the tolerance policy, and say precisely how they differ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gradspec import contracts


def tolerance_for(dtype: str, override: Mapping[str, float] | None = None) -> dict[str, float]:
    """The policy's rtol/atol for a dtype (spec/tolerances.yaml), with a case's override on top."""
    policy = dict(contracts.tolerances().get(dtype, {"rtol": 0.0, "atol": 0.0}))
    policy.update(override or {})
    return policy


def array_mismatch(expected: Any, got: np.ndarray | None, dtype: str,
                   override: Mapping[str, float] | None = None) -> str | None:
    """None if `got` matches `expected` (None, or a nested list); else a one-line explanation."""
    if expected is None:
        return None if got is None else f"expected None, got {_show(got)}"
    if got is None:
        return f"expected {_show(np.asarray(expected))}, got None"
    got = np.asarray(got)
    if got.dtype.kind not in "fiub":  # complex, strings, objects: never compared by their real part or by repr
        return f"expected real numbers, got values of dtype {got.dtype}: {_show(got)}"
    want = np.asarray(expected, dtype=np.float64)
    if want.shape != got.shape:
        return f"expected shape {list(want.shape)}, got shape {list(got.shape)}: expected {_show(want)}, got {_show(got)}"
    tol = tolerance_for(dtype, override)
    have = got.astype(np.float64)
    close = np.isclose(have, want, rtol=tol["rtol"], atol=tol["atol"], equal_nan=True)
    if close.all():
        return None
    diff = np.where(close, 0.0, np.abs(have - want))
    diff = np.nan_to_num(diff, nan=np.inf)
    tolerance = f"(tolerance rtol={tol['rtol']:g}, atol={tol['atol']:g}, {dtype})"
    if want.size == 1:
        return f"expected {_show(want)}, got {_show(got)} {tolerance}"
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    return (f"expected {_show(want)}, got {_show(got)}; "
            f"worst at index {list(worst)}: expected {float(want[worst])!r}, got {float(have[worst])!r} {tolerance}")


def _show(array: np.ndarray) -> str:
    if array.ndim == 0:
        return repr(array.item())
    return np.array2string(array, precision=8, separator=", ", threshold=50)
