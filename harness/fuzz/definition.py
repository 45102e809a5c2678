"""A drawn case as the function it defines: its compute steps, compiled once into closures.

The oracle evaluates the function two ways. In numpy float64, with the op vocabulary's
forwards as the reference engine writes them (the strategies track values while drawing
with the same table), to take difference quotients: a few numpy calls, and independent of
the engine, so an engine whose forward and backward are wrong in the same way still
disagrees. And on the engine under test, through its adapter, to differentiate it.
Compiling once matters because the oracle calls the function many times per graph.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from gradspec.adapter import Adapter
from gradspec.language.case import Case
from gradspec.language.expressions import Call, Expr, Num, Ref, call_kwargs
from gradspec.language.forwards import numpy_forward

Function = Callable[[Mapping[str, Any]], Any]  # leaf values by name -> the output's value
Apply = Callable[[str, list, dict], Any]  # (op, operands, keyword arguments) -> value

NOT_A_FUNCTION = {"detach": "detach cuts the gradient but not the value, so finite differences cannot judge it"}


def numpy_function(case: Case, output: str) -> Function:
    """The case's function in numpy float64; overflow shows as inf, which the oracle silences and checks for."""
    return compile_steps(case, output, lambda op, operands, kwargs: numpy_forward(op, operands, kwargs))


def engine_function(case: Case, output: str, adapter: Adapter) -> Function:
    """The case's function on an engine: leaf values are the engine's tensors, every op goes through the adapter."""
    return compile_steps(case, output, adapter.apply)


def compile_steps(case: Case, output: str, apply: Apply) -> Function:
    """The compute steps as one function; any other step is refused, since only a graph is a function."""
    program = []
    for step in case.steps:
        if step.kind != "compute":
            raise ValueError(f"{step.describe()}: the oracle evaluates graphs of compute steps only")
        program.append((step.statement.target, _compile(step.statement.expr, apply)))

    def evaluate(values: Mapping[str, Any]) -> Any:
        env = dict(values)
        for target, compute in program:
            env[target] = compute(env)
        return env[output]

    return evaluate


def _compile(expr: Expr, apply: Apply) -> Callable[[dict], Any]:
    """A closure computing `expr` from the names defined so far."""
    if isinstance(expr, Num):
        number = expr.value
        return lambda env: number
    if isinstance(expr, Ref):
        return operator.itemgetter(expr.name)
    if isinstance(expr, Call) and expr.op not in NOT_A_FUNCTION:
        op, operands, kwargs = expr.op, [_compile(arg, apply) for arg in expr.args], call_kwargs(expr)
        return lambda env: apply(op, [operand(env) for operand in operands], kwargs)
    reason = NOT_A_FUNCTION.get(getattr(expr, "op", None), "it reads state, not values")
    raise ValueError(f"the oracle cannot evaluate {expr!r}: {reason}")
