"""A case function's forward and backward, run with an engine's own ops: what an adapter wraps into the engine's
custom-derivative function (autograd.Function, custom_vjp, custom_gradient, defvjp).

The program knows nothing of any engine's custom-function API: `forward` maps input tensors
to the outputs and the values to save, `backward` maps the saved values and the outputs'
gradients to what the case's backward returns. Each backward call is logged (the gradients
that arrived, None where none did, and the grad mode inside) for `expect: backward_calls`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gradspec.language.case import FunctionDef
from gradspec.language.expressions import Call, Num, Ref, Statement, call_kwargs


class FunctionProgram:
    """One case function, bound to the operations of one engine run."""

    def __init__(self, definition: FunctionDef, apply: Callable, apply_inplace: Callable | None,
                 to_numpy: Callable[[Any], np.ndarray], grad_mode: Callable[[], bool | None], log: list):
        self.definition = definition
        self.apply, self.apply_inplace = apply, apply_inplace
        self.to_numpy, self.grad_mode, self.log = to_numpy, grad_mode, log

    @property
    def name(self) -> str:
        return self.definition.name

    def forward(self, *inputs: Any) -> tuple[tuple, tuple]:
        """The outputs, and the values to save for backward, of the forward steps on `inputs`."""
        definition = self.definition
        env = dict(zip(definition.inputs, inputs, strict=True))
        self._run(definition.forward, env)
        return tuple(env[name] for name in definition.outputs), tuple(env[name] for name in definition.save)

    def backward(self, saved: Sequence[Any], grads: Sequence[Any]) -> tuple:
        """What the backward steps return, one entry per `returns` name (None for null), from the saved values and
        each output's gradient (None where none arrived and gradients are not materialized)."""
        definition = self.definition
        self.log.append({"function": definition.name, "grad_mode": self.grad_mode(),
                         "grads": [None if g is None else self.to_numpy(g) for g in grads]})
        env = dict(zip(definition.save, saved, strict=True))
        env.update((definition.grad_name(output), g) for output, g in zip(definition.outputs, grads, strict=True))
        self._run(definition.backward, env)
        return tuple(None if name is None else env[name] for name in definition.returns)

    def _run(self, statements: Sequence[Statement], env: dict) -> None:
        for statement in statements:
            value = self._evaluate(statement.expr, env)
            if statement.inplace_op:
                env[statement.target] = self.apply_inplace(statement.inplace_op, env[statement.target], value)
            else:
                env[statement.target] = value

    def _evaluate(self, expr, env: dict) -> Any:
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, Ref):
            value = env[expr.name]
            if value is None:
                raise MissingGradient(f"{self.definition.name}'s backward reads {expr.name}, which arrived as None "
                                      "(no gradient reached that output and gradients are not materialized)")
            return value
        assert isinstance(expr, Call), expr  # the loader allows only ops inside a function
        return self.apply(expr.op, [self._evaluate(arg, env) for arg in expr.args], call_kwargs(expr))


class MissingGradient(Exception):
    """The case's backward used a gradient that arrived as None: a problem of the case, not of the engine."""
