# HIGHER-5: under create_graph, d(sum(3z))/dz reads nothing saved, so it does not require grad (PyTorch: False,
# and differentiating it raises no_grad_fn).
from common import T, attempt, paddle
z = T([2.0], True)
g, = paddle.grad((z * 3).sum(), z, create_graph=True)
print("g =", g.numpy(), "requires_grad", g.requires_grad, "grad_fn", g.grad_fn and g.grad_fn.name())
attempt("paddle.grad(g, z)", lambda: paddle.grad(g, z))
x = T([1.5, -2.0], True)
gc, = paddle.grad((x * 3).sum(), x, create_graph=True)
print("d(sum(3x))/dx requires_grad", gc.requires_grad)
