# HIGHER-8: a gradient constant in value (leaky_relu's, abs's, the 1-norm's) differentiates to zeros whether or not
# the engine records it. Paddle marks it as requiring grad, yet differentiating it raises that the input does not
# appear in the backward graph (PyTorch: zeros).
from common import T, attempt, paddle
F = paddle.nn.functional
b = T([0.7, -1.3], True)
g, = paddle.grad(F.leaky_relu(b, 0.2).sum(), b, create_graph=True)
print("leaky_relu gradient", g.numpy(), "requires_grad", g.requires_grad)
attempt("paddle.grad(sum(g), b)", lambda: paddle.grad(g.sum(), b))
x = T([1.5, -2.0, 0.25], True)
ga, = paddle.grad(paddle.abs(x).sum(), x, create_graph=True)
print("abs gradient", ga.numpy(), "requires_grad", ga.requires_grad)
attempt("paddle.grad(sum(ga), x)", lambda: paddle.grad(ga.sum(), x))
attempt("1-norm under create_graph", lambda: paddle.grad(paddle.linalg.vector_norm(x, p=1), x, create_graph=True))
