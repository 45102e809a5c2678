# VJP-1: an implicit output gradient for an output of several elements (PyTorch: nonscalar_implicit).
from common import T, attempt, paddle
x = T([1.0, 2.0], True)
attempt("y.backward() for y of shape [2]", lambda: ((x * 3).backward(), x.grad)[1])
attempt("paddle.grad(y, x) for y of shape [2]", lambda: paddle.grad(x * 3, x))
