# HOOK-8: a hook returning a gradient of another shape (PyTorch: hook_shape).
from common import T, attempt, paddle
x = T([1.0, 2.0], True)
u = x * 2
u.register_hook(lambda g: paddle.ones([3], dtype="float64"))
attempt("backward through a hook returning [3] for a [2] tensor", lambda: (u.sum().backward(), x.grad)[1])
