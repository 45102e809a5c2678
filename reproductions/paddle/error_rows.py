# The error-table rows no passing case reaches: backward's own shape check, and autograd.backward's count check.
from common import T, attempt, paddle
x = T([1.0, 2.0, 3.0], True)
attempt("(2x).backward(a [2] gradient for a [3] output)", lambda: (x * 2).backward(T([1.0, 1.0])))
attempt("paddle.autograd.backward([y1, y2], [one gradient])",
        lambda: paddle.autograd.backward([(x * 2).sum(), (x * 3).sum()], [T(1.0)]))
attempt("paddle.grad([y1, y2], x, [one gradient])",
        lambda: paddle.grad([(x * 2).sum(), (x * 3).sum()], x, [T(1.0)]))
