"""The finite-difference oracle, in float64: compare an engine's derivatives with difference quotients.

Directional checks, as PyTorch's fast gradcheck does: uᵀ∇f from one backward against
the derivative of f along u, estimated by a central difference of the function the case
defines, evaluated in numpy (harness/fuzz/definition.py) rather than by the engine.
With h = 1e-6 the truncation error, about h² times the third derivative over 6, is
negligible next to the tolerance, and the rounding error, about eps·|f|/h, is part of
it. The second order compares
wᵀHu, from a double backward, with the derivative along w of uᵀ∇f. When a directional
check fails, a per-element pass names the input and the element that disagree. An engine
without grad is differentiated through backward and .grad (`backward_grads`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gradspec.adapter import Adapter
from gradspec.fuzz import definition
from gradspec.fuzz.strategies import Draw

STEP = 1e-6
RTOL = 1e-6  # relative to the magnitudes involved; a planted 1e-4 error stands far above it
ROUNDING = 2.2e-16 / STEP  # rounding error of a central difference, per unit of the magnitudes involved


class OracleMismatch(AssertionError):
    """The engine's derivative disagrees with finite differences; the message says where."""


@dataclass
class Problem:
    """A drawn graph on one engine: how to evaluate it and its derivatives at chosen leaf values."""

    adapter: Adapter
    draw: Draw

    def __post_init__(self):
        self.case = self.draw.case
        # int64 tensors (indices, masks) keep their dtype: they are never perturbed
        self.point = {t.name: t.value if t.dtype == "int64" else t.value.astype(np.float64) for t in self.case.tensors}
        # Terms inside the graph scale with its inputs even where they cancel (x/x, x - x), so the
        # rounding noise of a difference quotient does too.
        self.magnitude = 1.0 + max(float(np.max(np.abs(v), initial=0.0)) for v in self.point.values()
                                   if v.dtype != np.int64)
        self.weights = np.ones(1) if self.draw.grad_output is None else np.asarray(self.draw.grad_output)
        # detach and data are constants of the function, held at their value at the drawn point (definition.CUTS)
        self.frozen = definition.frozen_cuts(self.case, self.draw.output, self.point)
        self.on_numpy = definition.numpy_function(self.case, self.draw.output, self.frozen)
        self.on_engine = definition.engine_function(self.case, self.draw.output, self.adapter)
        self.held_on_engine = self.on_engine if not self.frozen else definition.engine_function(
            self.case, self.draw.output, self.adapter, self.frozen)

    def objective(self, values: dict[str, np.ndarray]) -> float:
        """f(x) = <v, output(x)> (or the output itself when it has one element), from the case's definition."""
        output = self.on_numpy({**self.point, **values})  # constants (indices, masks, shifts) stay put
        return output.item() if self.draw.grad_output is None else float(np.vdot(output, self.weights))

    def gradient(self, values: dict[str, np.ndarray] | None = None, create_graph: bool = False):
        """The engine's ∇f at `values`: (engine tensors or None per leaf, the leaves as engine tensors).

        Fresh leaves each time, so that an engine without grad answers through backward and .grad alike.
        """
        evaluate = self.on_engine if values is None else self.held_on_engine  # the engine's own cuts at the point
        values = self.point if values is None else {**self.point, **values}
        tensors = {t.name: self.adapter.tensor(values[t.name], t.requires_grad, t.dtype or self.adapter.dtype)
                   for t in self.case.tensors}
        output = evaluate(tensors)
        inputs = [tensors[name] for name in self.draw.leaves]
        if not by_grad(self.adapter):
            weights = self.weights if self.draw.grad_output is not None else np.ones(self.adapter.to_numpy(output).shape)
            return backward_grads(self.adapter, output, self.adapter.like(weights, output), inputs, create_graph), tensors
        grad_outputs = None
        if self.draw.grad_output is not None:
            grad_outputs = [self.adapter.like(self.weights, output)]
        grads = self.adapter.grad([output], inputs, grad_outputs, None, create_graph or None, True, None)
        return list(grads), tensors

    def gradient_arrays(self, values=None) -> list[np.ndarray]:
        return self.arrays(self.gradient(values)[0])

    def arrays(self, grads: list) -> list[np.ndarray]:
        """Engine gradients, one per leaf, as arrays; None (no dependence) as zeros of the leaf's shape. A gradient
        in another dtype than its leaf's is a mismatch itself (SHAPE-1): float32 gradients in a float64 run would
        otherwise pass the finite-difference comparison, whose tolerance is float64's."""
        dtypes = {t.name: t.dtype or self.adapter.dtype for t in self.case.tensors}
        arrays = []
        for g, n in zip(grads, self.draw.leaves, strict=True):
            if g is None:
                arrays.append(np.zeros_like(self.point[n]))
                continue
            given = self.adapter.dtype_name(g)
            if given != dtypes[n] and dtypes[n] in self.adapter.dtypes:
                raise OracleMismatch(f"the gradient of {n} has dtype {given}, expected {dtypes[n]}, its leaf's (SHAPE-1)")
            arrays.append(self.adapter.to_numpy(g))
        return arrays

    def allowance(self, scale: float, size: float) -> float:
        """How far engine and estimate may differ: relative to the magnitudes involved, plus rounding noise."""
        return RTOL * scale + ROUNDING * (size + self.magnitude)

    def moved(self, direction: list[np.ndarray], step: float) -> dict[str, np.ndarray]:
        return {n: self.point[n] + step * d for n, d in zip(self.draw.leaves, direction, strict=True)}


def by_grad(adapter: Adapter) -> bool:
    """Whether the oracle differentiates with the engine's grad; an engine without one, with backward into .grad."""
    return "grad" in adapter.capabilities


def backward_grads(adapter: Adapter, output, gradient, inputs: list, create_graph: bool = False,
                   clear: bool = False) -> list:
    """The inputs' gradients by one backward with an explicit output gradient: each input's .grad after it.

    None stays None (the input got no gradient: zeros to `Problem.arrays`, which finite differences then judge).
    With `clear`, the inputs hold a gradient already (a second backward for the Hessian): it is cleared first where
    the engine has grad_assignment, and subtracted after where it does not (an accumulating engine).
    """
    before = [None] * len(inputs)
    if clear and "grad_assignment" in adapter.capabilities:
        for tensor in inputs:
            adapter.set_grad(tensor, None)
    elif clear:
        before = [None if g is None else adapter.to_numpy(g) for g in map(adapter.read_grad, inputs)]
    adapter.backward(output, gradient, None, create_graph or None, None)
    grads = [adapter.read_grad(tensor) for tensor in inputs]
    return [g if g is None or b is None else adapter.like(adapter.to_numpy(g) - b, g)
            for g, b in zip(grads, before, strict=True)]


def derivative_along(function, problem: Problem, direction: list[np.ndarray]) -> tuple[float, float]:
    """d/dt function(x + t·direction) at t = 0 by a central difference, and the size of the values differenced.

    Overflow is allowed to show as inf, which the callers check for; one errstate for both
    evaluations, as entering it costs as much as a small graph's arithmetic.
    """
    with np.errstate(all="ignore"):
        ahead, behind = function(problem.moved(direction, STEP)), function(problem.moved(direction, -STEP))
    return (ahead - behind) / (2 * STEP), max(abs(ahead), abs(behind))


def directions(rng: np.random.Generator, problem: Problem) -> list[np.ndarray]:
    """A random unit direction over all leaves."""
    raw = [rng.standard_normal(problem.point[n].shape) for n in problem.draw.leaves]
    norm = np.sqrt(sum(float(np.sum(d * d)) for d in raw)) or 1.0
    return [d / norm for d in raw]


def check_first_order(problem: Problem, u: list[np.ndarray]) -> None:
    """uᵀ∇f from the engine must match the finite-difference derivative of f along u."""
    estimate, size = derivative_along(problem.objective, problem, u)
    if not np.isfinite(estimate):
        return  # the graph overflowed near this point; nothing to judge
    grads = problem.gradient_arrays()
    engine, terms = _inner(grads, u)
    if abs(engine - estimate) > problem.allowance(terms + abs(estimate), size):
        raise OracleMismatch(f"first derivative along a random direction: engine {engine!r}, finite differences "
                             f"{estimate!r}\n{_worst_element(problem, grads)}")


def check_second_order(problem: Problem, u: list[np.ndarray], w: list[np.ndarray]) -> None:
    """wᵀHu from a double backward (create_graph) must match the derivative along w of uᵀ∇f."""
    adapter = problem.adapter
    grads, env = problem.gradient(create_graph=True)
    terms = [adapter.apply("sum", [adapter.apply("mul", [g, adapter.like(d, g)], {})], {})
             for g, d in zip(grads, u, strict=True) if g is not None]
    hvp = [np.zeros_like(d) for d in u]
    # An engine with PyTorch's graphs refuses to differentiate a gradient that has none (no_grad_fn); one
    # without requires_grad (functional engines) differentiates it to zero, which is the same answer.
    recorded = "introspection" not in adapter.capabilities or any(adapter.requires_grad(t) for t in terms)
    if terms and recorded:
        total = terms[0]
        for term in terms[1:]:
            total = adapter.apply("add", [total, term], {})
        inputs = [env[n] for n in problem.draw.leaves]
        if by_grad(adapter):
            hvp = problem.arrays(adapter.grad([total], inputs, None, None, None, True, None))
        else:  # backward(create_graph=True) filled .grad with g; a second backward differentiates uᵀg
            hvp = problem.arrays(backward_grads(adapter, total, adapter.like(np.ones(()), total), inputs, clear=True))
    engine, terms = _inner(hvp, w)
    estimate, size = derivative_along(lambda values: _inner(problem.gradient_arrays(values), u)[0], problem, w)
    if np.isfinite(estimate) and abs(engine - estimate) > 10 * problem.allowance(terms + abs(estimate), size):
        raise OracleMismatch(f"second derivative wᵀHu along random directions: engine {engine!r}, "
                             f"finite differences of the gradient {estimate!r}")


def _inner(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[float, float]:
    """The inner product over all leaves, and the size of its terms (what its rounding and a relative tolerance scale with)."""
    value = size = 0.0
    for x, y in zip(xs, ys, strict=True):
        terms = np.multiply(x, y)
        value += float(terms.sum())
        size += float(np.abs(terms).sum())
    return value, size


def _worst_element(problem: Problem, grads: list[np.ndarray]) -> str:
    """Per element: which input and which element disagree most with finite differences."""
    worst = (0.0, "no single element stands out")
    estimates = elementwise_gradient(problem)
    for name, grad in zip(problem.draw.leaves, grads, strict=True):
        for index in np.ndindex(grad.shape):
            estimate = estimates[name][index]
            error = abs(grad[index] - estimate) / (abs(estimate) + 1e-12)
            if error > worst[0]:
                where = f"{name}[{', '.join(map(str, index))}]" if index else name
                worst = (error, f"worst element: d f / d {where}: engine {float(grad[index])!r}, finite differences "
                                f"{estimate!r} (relative error {error:.2e})")
    return worst[1]


NESTED_STEP = 1e-4  # a difference of differences: rounding grows as eps / h^2, truncation as h^2


def elementwise_hvp(problem: Problem, u: list[np.ndarray]) -> dict[str, np.ndarray]:
    """H·u estimated element by element from the case's numpy definition alone (for writing a failing draw out).

    d/dx_e of the derivative of f along u, both by central differences; no engine's gradient is used,
    so the estimate stands apart from every engine under test.
    """
    def along_u(values: dict[str, np.ndarray]) -> float:
        with np.errstate(all="ignore"):
            ahead = problem.objective({n: values[n] + NESTED_STEP * d for n, d in zip(problem.draw.leaves, u, strict=True)})
            behind = problem.objective({n: values[n] - NESTED_STEP * d for n, d in zip(problem.draw.leaves, u, strict=True)})
        return (ahead - behind) / (2 * NESTED_STEP)

    result = {}
    for name in problem.draw.leaves:
        estimate = np.zeros_like(problem.point[name])
        for index in np.ndindex(estimate.shape):
            ahead, behind = dict(problem.point), dict(problem.point)
            ahead[name], behind[name] = ahead[name].copy(), behind[name].copy()
            ahead[name][index] += NESTED_STEP
            behind[name][index] -= NESTED_STEP
            estimate[index] = (along_u(ahead) - along_u(behind)) / (2 * NESTED_STEP)
        result[name] = estimate
    return result


def elementwise_gradient(problem: Problem) -> dict[str, np.ndarray]:
    """∇f estimated element by element (for writing a failing draw out as a case)."""
    result = {}
    for name in problem.draw.leaves:
        estimate = np.zeros_like(problem.point[name])
        for index in np.ndindex(estimate.shape):
            unit = [np.zeros_like(problem.point[n]) for n in problem.draw.leaves]
            unit[problem.draw.leaves.index(name)][index] = 1.0
            estimate[index] = derivative_along(problem.objective, problem, unit)[0]
        result[name] = estimate
    return result
