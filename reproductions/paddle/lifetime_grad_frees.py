# LIFE-1, LIFE-2: paddle.grad frees the graph by default (retain_graph defaults to create_graph, so False), and
# with create_graph=True, retain_graph=False; a later pass through saved values raises (PyTorch: freed_graph).
from common import T, attempt, paddle
w = T([[3.0]], True)
y = ((T([[4.0]]) @ w) ** 2).sum()
attempt("first paddle.grad(y, w)", lambda: paddle.grad(y, w))
attempt("second paddle.grad(y, w), retain_graph left out the first time", lambda: paddle.grad(y, w))
attempt("then y.backward()", lambda: (y.backward(), w.grad)[1])
x = T(2.0, True)
y2 = x ** 3
attempt("paddle.grad(y2, x, create_graph=True, retain_graph=False)",
        lambda: paddle.grad(y2, x, create_graph=True, retain_graph=False))
attempt("then y2.backward()", lambda: (y2.backward(), x.grad)[1])
z = x ** 3
z.backward()
attempt("for comparison: z.backward() twice", lambda: z.backward())
v = T([[3.0]], True)
y3 = ((T([[4.0]]) @ v) ** 2).sum()
attempt("paddle.grad(y3, v, retain_graph=False)", lambda: paddle.grad(y3, v, retain_graph=False))
attempt("then paddle.grad(y3, v) again", lambda: paddle.grad(y3, v))
