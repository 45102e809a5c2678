"""The reference engine's tensor API, tested directly (the cases test it through the adapter)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from gradspec import reference_engine as rg
from gradspec.reference_engine import engine, graph, ops

from .conftest import REPO

SPEC_OPS = yaml.safe_load((REPO / "spec" / "ops.yaml").read_text())["ops"]
# Tensor methods rather than recorded ops: detach and data cut the graph; unbind, split and chunk
# make one view op (select or narrow) per output; cat and stack place each operand (joining.py).
NOT_RECORDED = {"detach", "data", "unbind", "split", "chunk", "cat", "stack"}


def test_op_table_follows_spec_ops_yaml():
    public = {name: op for name, op in ops.OPS.items() if not name.startswith("_")}
    assert set(public) == set(SPEC_OPS) - NOT_RECORDED
    for name, op in public.items():
        spec = SPEC_OPS[name]
        # the engine takes an index tensor as its attribute `index`, a condition as `condition`
        taken = {"index"} if "index_operand" in spec else {"condition"} if "condition_operand" in spec else set()
        assert len(op.rules) == spec["arity"] - len(taken), f"{name}: one rule per differentiable operand"
        assert op.saves == spec["saves"], f"{name}: saves {op.saves}, spec says {spec['saves']}"
        assert set(op.attrs) - taken == set(spec.get("attributes", {})), f"{name}: keyword arguments"
        assert op.view == spec.get("view", False), f"{name}: a view or not"


def test_hundred_thousand_op_chain_needs_no_recursion():
    x = rg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_chain_of_sixty_diamonds_visits_each_node_once(monkeypatch):
    """2^60 paths from output to input; the work must follow the nodes, not the paths."""
    applied, accumulated = [], []
    take_saved, accumulate_leaf = graph.Node.take_saved, engine._Pass.accumulate_leaf

    def counting_take_saved(node, *args):
        applied.append(node)
        return take_saved(node, *args)

    def counting_accumulate_leaf(self, node, gradient):
        accumulated.append(node)
        return accumulate_leaf(self, node, gradient)

    monkeypatch.setattr(graph.Node, "take_saved", counting_take_saved)
    monkeypatch.setattr(engine._Pass, "accumulate_leaf", counting_accumulate_leaf)
    x = rg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(60):
        y = y * 1.0 + y * 1.0
    y.backward()
    assert x.grad.item() == 2.0 ** 60
    assert len(applied) == len(set(applied)) == 3 * 60  # two muls and one add per diamond
    assert len(accumulated) == 1  # and the leaf, once


def test_first_gradient_never_aliases_the_callers_gradient():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    v = rg.tensor([1.0, 1.0])
    x.backward(v)
    x.backward(v)
    assert v.data.tolist() == [1.0, 1.0] and x.grad.data.tolist() == [2.0, 2.0]


def test_grad_keeps_the_leaf_dtype_and_shape():
    x = rg.tensor([[1.0, 2.0]], requires_grad=True, dtype="float32")
    w = rg.tensor([3.0], requires_grad=True, dtype="float64")
    (x * w).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == (1, 2)
    assert w.grad.dtype == np.float64 and w.grad.shape == (1,) and w.grad.item() == 3.0


def test_detach_shares_values_and_version_counter():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1.0
    d = a.detach()
    d += 1.0
    assert a.data.tolist() == [2.0, 3.0]
    assert a.version == d.version == 1
    assert not d.requires_grad and d.is_leaf


def test_inplace_mul_by_a_tensor_that_requires_grad_uses_the_old_value():
    x = rg.tensor([2.0], requires_grad=True)
    w = rg.tensor([5.0], requires_grad=True)
    a = x * 1.0
    a *= w  # a = x*w; d/dw needs the old a (2), d/dx is w (5)
    a.sum().backward()
    assert (x.grad.item(), w.grad.item()) == (5.0, 2.0)


def test_retain_grad_follows_the_tensor_through_an_inplace_update():
    x = rg.tensor([1.0], requires_grad=True)
    a = x * 2.0
    a.retain_grad()
    a *= 3.0
    (a * 5.0).sum().backward()
    assert a.grad.item() == 5.0  # the gradient of the updated a, not of the value before
    assert x.grad.item() == 30.0


def test_grad_modes_as_context_decorator_and_call():
    x = rg.tensor([1.0], requires_grad=True)

    @rg.no_grad()
    def unrecorded():
        return x * 2.0

    assert not unrecorded().requires_grad

    @rg.set_grad_enabled(False)
    def also_unrecorded():
        return x * 2.0

    assert rg.is_grad_enabled(), "decorating must not switch the mode"
    assert not also_unrecorded().requires_grad and rg.is_grad_enabled()
    with rg.no_grad():
        with rg.enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    rg.set_grad_enabled(False)  # like PyTorch, a plain call switches the mode
    try:
        assert not rg.is_grad_enabled()
    finally:
        rg.set_grad_enabled(True)
    assert rg.is_grad_enabled()


def test_hook_returning_a_non_tensor_and_post_hook_returning_a_value_are_refused():
    x = rg.tensor([1.0], requires_grad=True)
    u = x * 2.0
    u.register_hook(lambda g: 1)
    with pytest.raises(TypeError, match="hook returned 'int'"):
        u.sum().backward()
    z = rg.tensor([1.0], requires_grad=True)
    z.register_post_accumulate_grad_hook(lambda t: 5)
    with pytest.raises(rg.PostAccumulateReturnedError, match="should return None"):
        (z * 2.0).sum().backward()


def test_backward_inputs_must_not_be_empty():
    x = rg.tensor([1.0], requires_grad=True)
    with pytest.raises(rg.InvalidArgumentError, match="cannot be empty"):
        (x * 2.0).sum().backward(inputs=[])


def test_nodes_that_saved_nothing_may_run_again_like_pytorch():
    """LIFE-5 (ENGINE-SPECIFIC): the reference engine follows PyTorch here."""
    x = rg.tensor([1.0], requires_grad=True)
    y = (x + 1.0).sum()
    y.backward()
    y.backward()
    assert x.grad.item() == 2.0


@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,))])
def test_matmul_gradients_have_operand_shapes_for_1d_and_2d(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rg.tensor(rng.normal(size=a_shape), requires_grad=True)
    b = rg.tensor(rng.normal(size=b_shape), requires_grad=True)
    (a @ b).sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    ones = np.ones(np.shape(a.data @ b.data))
    a2 = a.data.reshape(1, -1) if a.data.ndim == 1 else a.data
    b2 = b.data.reshape(-1, 1) if b.data.ndim == 1 else b.data
    ones2 = ones.reshape(a2.shape[0], b2.shape[1])
    np.testing.assert_allclose(a.grad.data, (ones2 @ b2.T).reshape(a_shape))
    np.testing.assert_allclose(b.grad.data, (a2.T @ ones2).reshape(b_shape))


def test_a_view_shares_values_and_version_counter_with_its_base_and_a_copy_does_not():
    x = rg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    b = x * 1
    v, e, copy = b[1:3], b.select(0, 0), b[[1, 2]]
    v += 1
    assert b.data.tolist() == [1.0, 3.0, 4.0, 4.0] and e.item() == 1.0 and copy.data.tolist() == [2.0, 3.0]
    assert b.version == v.version == e.version == 1 and copy.version == 0
    assert v._view.base is b and b._view is None


def test_a_long_chain_of_views_and_in_place_updates_needs_no_recursion():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = x * 1
    for _ in range(20_000):
        view = b[1:]
        view *= 1.0
    b.sum().backward()
    assert x.grad.data.tolist() == [1.0, 1.0, 1.0]


def test_unbind_split_and_chunk_outputs_are_views_marked_as_one_of_several():
    b = rg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True) * 1
    for outputs in (b.unbind(), b.split(1), b.chunk(2, dim=1)):
        assert all(o._view.multi_output and o._view.base is b for o in outputs)
    assert [o.shape for o in b.chunk(2, dim=1)] == [(2, 1), (2, 1)]


def test_views_and_in_place_updates_through_them_build_no_index_map_and_differentiate_twice(monkeypatch):
    """Slices, select, permute and reshape, in-place updates through views and x[basic index] = v take the strided
    path (issue 26, item 7: an index map per view op made views 3.8x slower than PyTorch), recorded so that a
    second derivative goes through them. b = x * x, then b[:, 1:] *= 3, b[0] += 1, b[1, 0] = 0."""
    from gradspec.reference_engine import views

    def refuse(*args, **kwargs):
        raise AssertionError("an index map was built on the strided path")
    monkeypatch.setattr(views, "index_map", refuse)
    monkeypatch.setattr(views, "positions", refuse)
    x = rg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    b = x * x
    v = b[:, 1:]
    v *= 3.0
    b.select(0, 0).add_(1.0)
    b[1, 0] = 0.0
    y = b.permute(1, 0).reshape(-1).sum()  # b = [[x00^2 + 1, 3 x01^2 + 1, 3 x02^2 + 1], [0, 3 x11^2, 3 x12^2]]
    (g,) = rg.grad(y, x, create_graph=True)
    assert g.data.tolist() == [[2.0, 12.0, 18.0], [0.0, 30.0, 36.0]]  # 2 x00, 6 x01, 6 x02; 0, 6 x11, 6 x12
    (h,) = rg.grad(g.sum(), x)
    assert h.data.tolist() == [[2.0, 6.0, 6.0], [0.0, 6.0, 6.0]]
