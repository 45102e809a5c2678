# VJP-3: an output gradient of another shape than its output (PyTorch: grad_shape_mismatch).
from common import T, attempt, paddle
x = T([1.0, 2.0, 3.0], True)
attempt("paddle.grad(2x [3], x, grad_outputs [2])", lambda: paddle.grad(x * 2, x, T([1.0, 1.0])))
attempt("paddle.grad(2x [3], x, grad_outputs [1, 3])", lambda: paddle.grad(x * 2, x, T([[1.0, 1.0, 1.0]])))
attempt("(2x).backward(grad [2])", lambda: (x * 2).backward(T([1.0, 1.0])))
