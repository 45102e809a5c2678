# GRAD-6 and GRAD-7: an input, or an output, that does not require grad (PyTorch: not_requires_grad, no_grad_fn).
from common import T, attempt, paddle
x = T([1.0, 2.0], True)
c = T([1.0, 2.0])
attempt("paddle.grad(sum(x * c), c), c not requiring grad", lambda: paddle.grad((x * c).sum(), c))
attempt("paddle.grad(sum(c * 2), x), output not requiring grad", lambda: paddle.grad((c * 2).sum(), x))
s = (c * 2).sum()
attempt("s.backward() on an output not requiring grad", lambda: (s.backward(), s.stop_gradient, x.grad))
