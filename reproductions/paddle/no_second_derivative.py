# HIGHER-1, DERIV-2: with create_graph the gradient is recorded, so it differentiates again. For these ops Paddle's
# gradient has no gradient of its own: paddle.grad(..., create_graph=True) raises "The Op X_grad doesn't have any
# grad op". (The ops of the corpus's higher_order/*-second.yaml cases, called as the adapter calls them.)
from common import T, paddle
F = paddle.nn.functional
x = T([0.3, 0.6], True)  # inside every domain below but acosh's
m = T([[2.0, 0.5], [0.3, 1.5]], True)
OPS = {
    "asin": lambda: paddle.asin(x), "acos": lambda: paddle.acos(x), "atan": lambda: paddle.atan(x),
    "sinh": lambda: paddle.sinh(x), "cosh": lambda: paddle.cosh(x), "tan": lambda: paddle.tan(x),
    "asinh": lambda: paddle.asinh(x), "acosh": lambda: paddle.acosh(x + 1.5), "atanh": lambda: paddle.atanh(x),
    "expm1": lambda: paddle.expm1(x), "log1p": lambda: paddle.log1p(x), "log2": lambda: paddle.log2(x),
    "log10": lambda: paddle.log10(x), "erf": lambda: paddle.erf(x), "reciprocal": lambda: paddle.reciprocal(x),
    "gelu": lambda: F.gelu(x), "gelu tanh": lambda: F.gelu(x, approximate=True),
    "atan2": lambda: paddle.atan2(x, x + 1), "dot": lambda: paddle.dot(x, x + 1),
    "cumprod": lambda: paddle.cumprod(x, dim=0), "prod": lambda: paddle.prod(x),
    "logsumexp": lambda: paddle.logsumexp(x, axis=0), "softmax": lambda: F.softmax(x, axis=0) * (x + 1),
    "log_softmax": lambda: F.log_softmax(x, axis=0) * (x + 1), "norm": lambda: paddle.linalg.vector_norm(x, p=2),
    "inv": lambda: paddle.linalg.inv(m), "det": lambda: paddle.linalg.det(m),
    "solve": lambda: paddle.linalg.solve(m, m + 1),
    # for comparison, ops that have one
    "exp (has one)": lambda: paddle.exp(x), "tanh (has one)": lambda: paddle.tanh(x),
}
for name, f in OPS.items():
    inputs = [m] if name in ("inv", "det", "solve") else [x]
    try:
        g, = paddle.grad(f().sum(), inputs, create_graph=True)
        h, = paddle.grad(g.sum(), inputs)
        print(f"{name:16} second derivative: {h.numpy().ravel()[:2]}")
    except Exception as e:  # noqa: BLE001
        print(f"{name:16} raised {type(e).__name__}: {str(e).splitlines()[0][:90]}")
