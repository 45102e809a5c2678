# Each capability the adapter declares, checked in a few lines of Paddle (see cap_*.py for the longer ones).
import threading

from common import T, paddle
from pylayer_common import layer

checks = {}
def check(name):
    def register(fn):
        try:
            checks[name] = fn()
        except Exception as e:  # noqa: BLE001
            checks[name] = f"FAILED {type(e).__name__}: {str(e).splitlines()[0][:100]}"
    return register

@check("backward")
def _():
    x = T([1.0, 2.0], True); (x * x).sum().backward(); (x * x).sum().backward()
    return x.grad.numpy().tolist() == [4.0, 8.0]  # accumulates
@check("grad")
def _():
    x = T([1.0, 2.0], True); g, = paddle.grad((x * x).sum(), x)
    return g.numpy().tolist() == [2.0, 4.0] and x.grad is None
@check("create_graph")
def _():
    x = T([1.0, 2.0], True); g, = paddle.grad((x ** 3).sum(), x, create_graph=True)
    return paddle.grad(g.sum(), x)[0].numpy().tolist() == [6.0, 12.0]
@check("graph_lifetime")
def _():
    x = T([1.0], True); y = (x ** 3).sum(); y.backward(retain_graph=True); y.backward()
    try:
        y.backward()
    except SystemError as e:
        return "TensorWrappers" in str(e)
@check("allow_unused")
def _():
    x, w = T([1.0], True), T([1.0], True)
    return paddle.grad((x * 2).sum(), [x, w], allow_unused=True)[1] is None
@check("retain_grad")
def _():
    x = T([1.0], True); u = x * 2; u.retain_grads(); (u * 3).sum().backward(); return u.grad.numpy().tolist() == [3.0]
@check("tensor_hooks")
def _():
    x = T([1.0], True); h = x.register_hook(lambda g: g * 10); (x * 2).sum().backward(); h.remove()
    (x * 2).sum().backward(); return x.grad.numpy().tolist() == [22.0]
@check("grad_mode")
def _():
    x = T([1.0], True)
    with paddle.no_grad():
        a = x * 2
        with paddle.enable_grad():
            b = x * 2
    with paddle.set_grad_enabled(False):
        c = x * 2
    return (a.requires_grad, b.requires_grad, c.requires_grad) == (False, True, False)
@check("detach")
def _():
    x = T([1.0], True); d = x.detach(); return not d.requires_grad and d.is_leaf
@check("inplace")
def _():
    x = T([1.0, 2.0], True); y = x * 1; y.add_(T([1.0, 1.0])); (y * y).sum().backward()
    return y.inplace_version == 1 and x.grad.numpy().tolist() == [4.0, 6.0]
@check("version_counters")
def _():
    x = T([1.0], True); y = x * 1; z = y * y; y.add_(T(1.0))
    try:
        z.sum().backward()
    except RuntimeError as e:
        return "modified by an inplace operation" in str(e)
@check("view_ops")
def _():
    x = T([[1.0, 2.0], [3.0, 4.0]], True); (x[0:1, [1, 0]].sum() + paddle.unsqueeze(x, 0).sum()).backward()
    return x.grad.numpy().tolist() == [[2.0, 2.0], [1.0, 1.0]]
@check("index_ops")
def _():
    x = T([[1.0, 2.0], [3.0, 4.0]], True); i = paddle.to_tensor([[1, 1], [0, 0]], dtype="int64")
    paddle.take_along_axis(x, i, axis=1, broadcast=False).sum().backward()
    return x.grad.numpy().tolist() == [[0.0, 2.0], [2.0, 0.0]]
@check("setitem")
def _():
    x = T([1.0, 2.0, 3.0], True); u = T([5.0], True); b = x * 1; b[1:2] = u; (b * 2).sum().backward()
    return x.grad.numpy().tolist() == [2.0, 0.0, 2.0] and u.grad.numpy().tolist() == [2.0]
@check("detach_inplace")
def _():
    x = T([1.0], True); y = x * 2; z = y * 3; y.detach_()
    return (y.requires_grad, y.is_leaf, z.requires_grad) == (False, True, True)
@check("requires_grad_toggle")
def _():
    c = T([1.0]); c.requires_grad_(); (c * 2).sum().backward(); return c.grad.numpy().tolist() == [2.0]
@check("introspection")
def _():
    x = T([1.0], True); y = x * 2; return (x.requires_grad, x.is_leaf, y.is_leaf, y.grad_fn is not None) == (True, True, False, True)
@check("grad_assignment")
def _():
    x = T([1.0], True); x.grad = T([5.0]); (x * 2).sum().backward(); a = x.grad.numpy().tolist(); x.clear_grad()
    return a == [7.0] and x.grad.numpy().tolist() == [0.0]
@check("requires_grad")
def _():
    return T([1.0]).requires_grad is False and T([1.0], True).requires_grad is True
@check("one_element_implicit")
def _():
    x = T([[1.0]], True); (x * 3).backward(); return x.grad.numpy().tolist() == [[3.0]]
@check("integer_tensors")
def _():
    return str(paddle.to_tensor([1, 2], dtype="int64").dtype) == "paddle.int64"
@check("custom_function")
def _():
    D = layer("D", lambda ctx, x: x * 2, lambda ctx, g: g * 2); x = T([1.0], True)
    return paddle.grad(D.apply(x).sum(), x)[0].numpy().tolist() == [2.0]
@check("custom_multiple_outputs")
def _():
    P = layer("P", lambda ctx, x: (x * 2, x * 3), lambda ctx, g1, g2: g1 * 2 + g2 * 3); x = T([1.0], True)
    a, b = P.apply(x); return paddle.grad((a + b).sum(), x)[0].numpy().tolist() == [5.0]
@check("custom_non_differentiable")
def _():
    def forward(ctx, x):
        a, b = x * 2, x * 3
        ctx.mark_non_differentiable(b)
        return a, b
    seen = []
    N = layer("N", forward, lambda ctx, g1, g2: (seen.append(g2.numpy().tolist()), g1 * 2)[1]); x = T([1.0], True)
    a, b = N.apply(x); g = paddle.grad(a.sum(), x)[0]
    return (b.requires_grad, seen, g.numpy().tolist()) == (False, [[0.0]], [2.0])
@check("custom_materialize_grads")
def _():
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x * 2, x * 3
    seen = []
    M = layer("M", forward, lambda ctx, g1, g2: (seen.append(g2), g1 * 2)[1]); x = T([1.0], True)
    a, b = M.apply(x); paddle.grad(a.sum(), x); return seen == [None]
@check("several_roots")
def _():
    x = T([1.0], True); paddle.autograd.backward([(x * 2).sum(), (x * 3).sum()], [T(1.0), T(2.0)])
    return x.grad.numpy().tolist() == [8.0]
@check("argument_forms")
def _():
    x = T([1.0], True); y = (x * 2).sum()
    a = paddle.grad(y, x, retain_graph=True); b = paddle.grad([y], [x], retain_graph=True); c = paddle.grad((y,), (x,))
    return [r[0].numpy().tolist() for r in (a, b, c)] == [[2.0]] * 3
@check("saved_tensor_hooks")
def _():
    log = []
    x = T([2.0], True)
    with paddle.autograd.saved_tensors_hooks(lambda t: (log.append("pack"), t)[1], lambda t: (log.append("unpack"), t)[1]):
        y = (x * x).sum()
    y.backward(); return log[:1] == ["pack"] and "unpack" in log and x.grad.numpy().tolist() == [4.0]
@check("threads")
def _():
    x = T([1.0], True); y = (x * 2).sum(); flags = []
    def worker():
        flags.append(paddle.is_grad_enabled())
        (x * 3).sum().backward()
    with paddle.no_grad():
        t = threading.Thread(target=worker); t.start(); t.join()
    y.backward(); return flags == [True] and x.grad.numpy().tolist() == [5.0]
for name, outcome in checks.items():
    print(f"{name:26} {outcome}")
print("see also cap_reentrant_and_retain_in_grad.py (reentrant_backward, retain_grad_in_grad) and cap_grad_mode_forms.py")
