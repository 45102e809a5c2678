"""Property tests of the reference engine against central finite differences in float64 (hypothesis)."""

from __future__ import annotations

import numpy as np
from gradspec import reference_engine as rg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Unary ops with a domain where they are smooth, and the engine method that applies them.
UNARY = {
    "exp": (-3.0, 3.0), "log": (0.2, 5.0), "sin": (-3.0, 3.0), "cos": (-3.0, 3.0), "tanh": (-2.0, 2.0),
    "sigmoid": (-4.0, 4.0), "sqrt": (0.2, 5.0), "relu": (0.1, 3.0), "abs": (0.1, 3.0), "neg": (-3.0, 3.0),
}
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}


def unary(name, x):
    return -x if name == "neg" else getattr(x, name)()


def central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d(sum f)/dx elementwise for an elementwise-separable f, by central differences."""
    return (f(x + h) - f(x - h)) / (2 * h)


def values(low, high, shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(UNARY)), st.data())
def test_unary_first_and_second_derivatives_match_finite_differences(name, data):
    low, high = UNARY[name]
    x0 = data.draw(values(low, high, (3,)), label="x")

    def forward(array):
        with rg.no_grad():
            return unary(name, rg.tensor(array)).data

    x = rg.tensor(x0, requires_grad=True)
    first, = rg.grad(unary(name, x).sum(), x, create_graph=True)
    np.testing.assert_allclose(first.data, central_difference(forward, x0), rtol=1e-5, atol=1e-6)

    def derivative(array):
        t = rg.tensor(array, requires_grad=True)
        g, = rg.grad(unary(name, t).sum(), t)
        return g.data

    if first.requires_grad:  # neg has a constant derivative, so no graph (HIGHER-5)
        second, = rg.grad(first.sum(), x)
        np.testing.assert_allclose(second.data, central_difference(derivative, x0), rtol=1e-4, atol=1e-5)


SHAPES = st.sampled_from([((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 2))])


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(BINARY)), SHAPES, st.data())
def test_broadcast_binary_gradients_reduce_to_operand_shapes_and_match_finite_differences(name, shapes, data):
    a0 = data.draw(values(0.5, 2.0, shapes[0]), label="a")
    b0 = data.draw(values(0.5, 2.0, shapes[1]), label="b")
    weights = data.draw(values(-1.0, 1.0, np.broadcast_shapes(shapes[0], shapes[1])), label="weights")
    op = BINARY[name]
    a, b = rg.tensor(a0, requires_grad=True), rg.tensor(b0, requires_grad=True)
    (op(a, b) * rg.tensor(weights)).sum().backward()
    assert a.grad.shape == a0.shape and b.grad.shape == b0.shape

    def loss(a_value, b_value):
        with rg.no_grad():
            return float((op(rg.tensor(a_value), rg.tensor(b_value)) * rg.tensor(weights)).sum().data)

    for operand, value, grad in (("a", a0, a.grad.data), ("b", b0, b.grad.data)):
        expected = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            step = np.zeros_like(value)
            step[index] = 1e-6
            plus = loss(value + step, b0) if operand == "a" else loss(a0, value + step)
            minus = loss(value - step, b0) if operand == "a" else loss(a0, value - step)
            expected[index] = (plus - minus) / 2e-6
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6, err_msg=f"d/d{operand} of {name}")


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["sum", "mean"]), st.sampled_from([None, 0, 1]), st.booleans(), st.data())
def test_reductions_spread_the_gradient(name, dim, keepdim, data):
    x0 = data.draw(values(-2.0, 2.0, (2, 3)), label="x")
    x = rg.tensor(x0, requires_grad=True)
    reduced = getattr(x, name)(dim=dim, keepdim=keepdim)
    weights = data.draw(values(-1.0, 1.0, reduced.shape), label="weights")
    (reduced * rg.tensor(weights)).sum().backward()
    count = x0.size if dim is None else x0.shape[dim]
    expected = np.broadcast_to(weights if dim is None or keepdim else np.expand_dims(weights, dim), x0.shape)
    np.testing.assert_allclose(x.grad.data, expected / (count if name == "mean" else 1))


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.data())
def test_higher_order_of_a_polynomial(order, data):
    """d^k/dx^k x^5 = 5!/(5-k)! x^(5-k), through k nested create_graph passes."""
    x0 = data.draw(st.floats(0.5, 2.0), label="x")
    x = rg.tensor(x0, requires_grad=True)
    value = x ** 5
    for _ in range(order):
        value, = rg.grad(value, x, create_graph=True)
    coefficient = np.prod(range(5 - order + 1, 6))
    np.testing.assert_allclose(value.data, coefficient * x0 ** (5 - order), rtol=1e-12)
