"""A drawn case as the function it defines: its compute steps, compiled once into closures.

The oracle evaluates the function two ways. In numpy float64, with the op vocabulary's
forwards as the reference engine writes them (the strategies track values while drawing
with the same table), to take difference quotients: a few numpy calls, and independent of
the engine, so an engine whose forward and backward are wrong in the same way still
disagrees. And on the engine under test, through its adapter, to differentiate it.
Compiling once matters because the oracle calls the function many times per graph. detach and
data are constants of the function, held at their value at the drawn point (CUTS).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gradspec.adapter import Adapter
from gradspec.language.case import Case
from gradspec.language.expressions import Call, Expr, Num, Ref, call_kwargs
from gradspec.language.forwards import numpy_forward

Function = Callable[[Mapping[str, Any]], Any]  # leaf values by name -> the output's value
Apply = Callable[[str, list, dict], Any]  # (op, operands, keyword arguments) -> value
Cut = Callable[[int, Any], Any]  # (which cut, its operand's value) -> what the cut gives there

# Ops that cut the gradient but not the value. As functions of the leaves they are the identity, which finite
# differences would differentiate; the oracle holds each one constant instead, at its value at the drawn point
# (`frozen_cuts`), so that the function it differentiates is the one the engine's gradient is the gradient of.
CUTS = frozenset({"detach", "data"})


def numpy_function(case: Case, output: str, frozen: Mapping[int, Any] | None = None) -> Function:
    """The case's function in numpy float64; overflow shows as inf, which the oracle silences and checks for.

    Each detach and data (numbered in the order the steps call them) gives its value in `frozen`; without
    `frozen`, its value at the first point the function is evaluated at, which is then held.
    """
    held: dict[int, Any] = dict(frozen or {})

    def cut(site: int, value: Any) -> Any:
        if site not in held:
            held[site] = np.array(value, copy=True)
        return held[site]
    return compile_steps(case, output, lambda op, operands, kwargs: numpy_forward(op, operands, kwargs), cut)


def frozen_cuts(case: Case, output: str, point: Mapping[str, Any]) -> dict[int, Any]:
    """The value each detach and data gives at `point`: the constants the oracle holds them at."""
    values: dict[int, Any] = {}

    def record(site: int, value: Any) -> Any:
        values[site] = np.array(value, copy=True)
        return value
    compile_steps(case, output, lambda op, operands, kwargs: numpy_forward(op, operands, kwargs), record)(point)
    return values


def engine_function(case: Case, output: str, adapter: Adapter, frozen: Mapping[int, Any] | None = None) -> Function:
    """The case's function on an engine: leaf values are the engine's tensors, every op goes through the adapter.

    With `frozen`, each detach and data is a constant tensor of its frozen value instead of the engine's op (for
    the gradient at points other than the drawn one, which the second-order check differentiates).
    """
    cut = None
    if frozen is not None:
        def cut(site: int, value: Any) -> Any:
            return adapter.tensor(np.asarray(frozen[site]), False, adapter.dtype)
    return compile_steps(case, output, adapter.apply, cut)


def compile_steps(case: Case, output: str, apply: Apply, cut: Cut | None = None) -> Function:
    """The compute steps as one function; any other step is refused, since only a graph is a function.

    `cut`, where given, computes each detach and data from its site number and its operand's value.
    """
    program = []
    sites = iter(range(1 << 30))
    for step in case.steps:
        if step.kind != "compute":
            raise ValueError(f"{step.describe()}: the oracle evaluates graphs of compute steps only")
        program.append((step.statement.names_bound, _compile(step.statement.expr, apply, cut, sites)))

    def evaluate(values: Mapping[str, Any]) -> Any:
        env = dict(values)
        for names, compute in program:
            result = compute(env)
            if len(names) == 1 and not isinstance(result, (tuple, list)):
                env[names[0]] = result
            else:  # `a, b = split(...)`
                env.update(zip(names, result, strict=True))
        return env[output]

    return evaluate


def _compile(expr: Expr, apply: Apply, cut: Cut | None, sites) -> Callable[[dict], Any]:
    """A closure computing `expr` from the names defined so far."""
    if isinstance(expr, Num):
        number = expr.value
        return lambda env: number
    if isinstance(expr, Ref):
        return operator.itemgetter(expr.name)
    if isinstance(expr, Call) and expr.op in CUTS and cut is not None:
        site, inner = next(sites), _compile(expr.args[0], apply, cut, sites)
        return lambda env: cut(site, inner(env))
    if isinstance(expr, Call):
        op, operands, kwargs = expr.op, [_compile(arg, apply, cut, sites) for arg in expr.args], call_kwargs(expr)
        return lambda env: apply(op, [operand(env) for operand in operands], kwargs)
    raise ValueError(f"the oracle cannot evaluate {expr!r}: it reads state, not values")
