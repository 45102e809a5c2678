# HIGHER-3: a gradient computed without create_graph does not require grad (PyTorch: requires_grad False).
from common import T, attempt, paddle
x = T([1.0], True)
y = (x ** 5).sum()
y.backward(retain_graph=True)
print("x.grad after backward: requires_grad", x.grad.requires_grad, "grad_fn", x.grad.grad_fn and x.grad.grad_fn.name())
attempt("paddle.grad(x.grad, x)", lambda: paddle.grad(x.grad, x))
g, = paddle.grad(y, x)
print("paddle.grad result: requires_grad", g.requires_grad)
