# GRAD-8: an input listed twice gets the full gradient at each place, outputs listed twice are summed, and a
# tensor's gradient with respect to itself is ones (PyTorch: [2, 4] twice, [4, 8], 1).
from common import T, attempt, paddle
x = T([1.0, 2.0], True)
y = (x * x).sum()
attempt("paddle.grad(y, [x, x])", lambda: paddle.grad(y, [x, x], retain_graph=True))
attempt("paddle.grad([y, y], x)", lambda: paddle.grad([y, y], x, retain_graph=True))
attempt("paddle.grad(y, y)", lambda: paddle.grad(y, y))
