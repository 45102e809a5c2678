"""The recording layer for functional engines (gradspec.functional), driven through the torch.func adapter.

torch is always installed with gradspec's pinned requirements, so torch.func exercises the
layer everywhere; the JAX, HIPS autograd and TensorFlow adapters share every line tested here.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradspec.absent import Unsupported
from gradspec.functional import ImplicitGradientError, Recorded
from gradspec.language.case import Case
from gradspec.language.loader import build_case
from gradspec.running.interpreter import NOT_APPLICABLE, run_case

pytest.importorskip("torch")
from gradspec.adapters.torch_func_adapter import TorchFuncAdapter  # noqa: E402


@pytest.fixture
def engine():
    return TorchFuncAdapter("cpu", "float64")


def leaf(engine, *values):
    return engine.tensor(np.array(values, dtype=np.float64), True, "float64")


def op(engine, name, *args, **kwargs):
    return engine.apply(name, list(args), kwargs)


def values(engine, tensors):
    return [engine.to_numpy(t) for t in tensors]


def test_a_leaf_input_gets_its_total_gradient_and_a_non_leaf_its_partial_one(engine):
    x, w = leaf(engine, 3.0), leaf(engine, 2.0)
    u = op(engine, "mul", x, w)            # u = x*w
    y = op(engine, "mul", u, x)            # y = u*x = w*x^2
    dx, du = values(engine, engine.grad([y], [x, u], None, None, None, None, None))
    assert dx == pytest.approx([2 * 2.0 * 3.0])  # d(w x^2)/dx = 2wx, through u and directly
    assert du == pytest.approx([3.0])            # dy/du holding x fixed


def test_an_input_listed_twice_gets_the_full_gradient_at_each_place(engine):
    x = leaf(engine, 3.0)
    y = op(engine, "mul", x, x)
    first, second = values(engine, engine.grad([y], [x, x], None, None, None, None, None))
    assert first == pytest.approx([6.0]) and second == pytest.approx([6.0])


def test_without_create_graph_a_gradient_is_a_constant_and_with_it_a_recorded_value(engine):
    x = leaf(engine, 2.0)
    y = op(engine, "pow", x, 3.0)
    plain, = engine.grad([y], [x], None, None, False, None, None)
    recorded, = engine.grad([y], [x], None, None, True, None, None)
    assert plain.op is None and recorded.op == "grad"
    second, = engine.grad([recorded], [x], None, None, True, None, None)
    third, = engine.grad([second], [x], None, None, None, None, None)
    assert values(engine, [recorded, second, third]) == [pytest.approx([12.0]), pytest.approx([12.0]),
                                                          pytest.approx([6.0])]  # 3x^2, 6x, 6
    # The constant's derivative is zero: a functional engine has no graph to refuse with no_grad_fn.
    assert values(engine, engine.grad([plain], [x], None, None, None, None, None)) == [pytest.approx([0.0])]


def test_a_mixed_second_derivative_perturbs_both_levels(engine):
    x, y = leaf(engine, 0.5), leaf(engine, 2.0)
    f = op(engine, "mul", op(engine, "mul", x, y), y)  # x y^2
    dfdx, = engine.grad([f], [x], None, None, True, None, None)
    d2, = engine.grad([dfdx], [y], None, None, None, None, None)
    assert values(engine, [dfdx, d2]) == [pytest.approx([4.0]), pytest.approx([4.0])]  # y^2, 2y


def test_detach_is_the_engines_stop_gradient(engine):
    x = leaf(engine, 3.0)
    y = op(engine, "mul", x, op(engine, "detach", x))
    assert values(engine, engine.grad([y], [x], None, None, None, None, None)) == [pytest.approx([3.0])]


def test_an_implicit_gradient_needs_a_one_element_output(engine):
    x = leaf(engine, 1.0, 2.0)
    with pytest.raises(ImplicitGradientError) as raised:
        engine.grad([op(engine, "mul", x, 2.0)], [x], None, None, None, None, None)
    assert engine.classify(raised.value) == "nonscalar_implicit"


def test_concepts_without_a_counterpart_raise_unsupported_naming_the_engine(engine):
    x = leaf(engine, 1.0)
    for call in (lambda: engine.read_grad(x), lambda: engine.backward(x, None, None, None, None),
                 lambda: engine.register_hook(x, print), lambda: engine.no_grad()):
        with pytest.raises(Unsupported, match="torch-func engine has no"):
            call()
    assert isinstance(x, Recorded)


def test_a_case_needing_backward_is_not_applicable_rather_than_emulated(engine):
    case: Case = build_case({
        "schema_version": 1, "title": "t", "rules": ["ACC-1"], "source": "s", "derivation": "d",
        "capabilities": ["backward"],
        "tensors": {"x": {"value": [3.0], "requires_grad": True}},
        "steps": ["y = x * x", {"backward": "y"}, {"expect": {"grad": {"x": [6.0]}}}],
    }, "inline.yaml", "inline.yaml")
    outcome = run_case(case, engine)
    assert outcome.status == NOT_APPLICABLE and "backward" in outcome.message
