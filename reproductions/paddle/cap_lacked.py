# Each capability the adapter leaves out, and why, in a few lines of Paddle (views, data_alias: cap_views_lacking.py,
# cap_data_lacking.py; the torch_* choices and saved_hooks_version_check: see the probe runs in the summary).
import inspect

from common import T, attempt, paddle

print("backward_create_graph, backward_inputs: Tensor.backward", inspect.signature(paddle.Tensor.backward),
      "| paddle.autograd.backward", inspect.signature(paddle.autograd.backward))
print("materialize_grads: in paddle.grad's parameters?", "materialize_grads" in inspect.signature(paddle.grad).parameters)
print("post_accumulate_grad_hooks: Tensor.register_post_accumulate_grad_hook?",
      hasattr(paddle.Tensor, "register_post_accumulate_grad_hook"))
x = T([1.0], True)
node = (x * 2).grad_fn
print("node_hooks: public methods of grad_fn:", [n for n in dir(node) if not n.startswith("__")])
print("inference_mode: paddle.inference_mode?", hasattr(paddle, "inference_mode"), "| Tensor.is_inference?",
      hasattr(paddle.Tensor, "is_inference"))
print("custom_once_differentiable: paddle.autograd has", [n for n in dir(paddle.autograd) if "once" in n.lower()])
print("custom_dirty: PyLayerContext.mark_dirty?", hasattr(paddle.autograd.PyLayerContext, "mark_dirty"),
      "(it has mark_not_inplace, the opposite)")
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    u = x * 2
    _ = u.grad  # a non-leaf's unset .grad (PyTorch warns)
    y = (x ** 3).sum()
    y.backward(retain_graph=True)
print("warnings, nonleaf_grad_warning: Python warnings for a non-leaf's .grad read:", [str(w.message)[:60] for w in caught])
# torch_kink_conventions: max along an axis with ties gives each tied element the whole gradient (documented for
# paddle.max: "amax evenly distributes gradient between these equal values, while max propagates gradient to all")
m = T([[1.0, 3.0, 3.0]], True)
print("kinks: d max(m, axis=1) with a tie:", paddle.grad(paddle.max(m, axis=1).sum(), m)[0].numpy().tolist(),
      "(PyTorch: [[0, 1, 0]])")
a = T([0.0], True)
print("kinks: d atan2(0, 0):", [g.numpy().tolist() for g in paddle.grad(paddle.atan2(a, a * 1).sum(), a)], "(PyTorch: 0)")
# torch_recorded_constants: PyTorch records relu's constant gradient (requires grad), not clamp's; Paddle marks both
r = T([0.5, -0.5], True)
print("recorded constants: relu's", paddle.grad(paddle.nn.functional.relu(r).sum(), r, create_graph=True)[0].requires_grad,
      "clamp's", paddle.grad(paddle.clip(r, -0.2, 0.2).sum(), r, create_graph=True)[0].requires_grad, "(PyTorch: True, False)")
# gradient_passthrough: without create_graph PyTorch hands back a user's output gradient that reached a result as it is
v = T([2.0], True)
g, = paddle.grad(x + 1, x, v)
print("gradient passthrough: grad(x + 1, x, v) is v:", g is v, "requires_grad", g.requires_grad, "(PyTorch: True, True)")
# saved_hooks_version_check: Paddle does not check the version of a value saved through hooks (as PyTorch)
s = x * 1
with paddle.autograd.saved_tensors_hooks(lambda t: t, lambda t: t):
    z = (s * s).sum()
s.add_(T(1.0))
attempt("saved hooks, source updated in place, backward", lambda: (z.backward(), "no error")[1])
