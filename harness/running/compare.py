"""Compare observed values with expected ones under the tolerance policy, and say precisely how they differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gradspec import contracts


def tolerance_for(dtype: str, override: Mapping[str, float] | None = None) -> dict[str, float]:
    """The policy's rtol/atol for a dtype (spec/tolerances.yaml), with a case's override on top."""
    policy = dict(contracts.tolerances().get(dtype, {"rtol": 0.0, "atol": 0.0}))
    policy.update(override or {})
    return policy


def is_floating(dtype: str | None) -> bool:
    """float16, bfloat16, float32, float64, ... by name; never an integer or boolean dtype."""
    return dtype is not None and "float" in dtype


def judged_dtype(expected: frozenset[str], given: Sequence[str], supported: Sequence[str]) -> tuple[str, str | None]:
    """The dtype whose tolerance judges a value, and what is wrong with the dtype the engine gave it, if anything.

    The dtype asked for decides, never the one the engine gave: a float32 result in a float64 run is judged with
    float64's tolerance, and its dtype is itself a failure (SHAPE-1, SHAPE-6). `expected` holds the floating dtypes
    the value may have (two where operands of two dtypes meet and the engine's promotion decides), none for an
    integer or boolean result, which is judged in the dtype given; `given` the dtypes the engine gave (its tensor's,
    the array's); `supported` the dtypes the engine declares: a dtype it declares it lacks is no failure.
    """
    floating = [dtype for dtype in given if is_floating(dtype)]
    if not expected:
        return (given[0] if given else "float64"), None
    asked = sorted(dtype for dtype in expected if dtype in supported)
    tightest = min(asked or sorted(expected), key=lambda dtype: tolerance_for(dtype)["rtol"])
    wrong = [dtype for dtype in floating if dtype not in expected]
    if not floating:
        return tightest, None  # an integer result where a floating one was expected: judged as the one expected
    if not wrong:
        return floating[0], None
    if not asked:  # the engine declares it has none of the dtypes asked for: it gives what it has
        return floating[0], None
    return tightest, f"dtype {wrong[0]}, expected {' or '.join(sorted(expected))}"


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
