# CUSTOM-2, CUSTOM-6: paddle.grad with respect to some of a PyLayer's inputs (PyTorch: the gradients of those; an
# input whose gradient is None is unused_input). Paddle refuses the gradients the backward returns for the others,
# though they require grad.
from common import T, attempt, paddle
from pylayer_common import layer
def forward(ctx, a, b):
    ctx.save_for_backward(a, b)
    return a * b
def backward(ctx, g):
    a, b = ctx.saved_tensor()
    return g * b, g * a
Product = layer("Product", forward, backward)
def forward2(ctx, a, b):
    ctx.save_for_backward(a)
    return a * b
def backward2(ctx, g):
    a, = ctx.saved_tensor()
    return None, g * a
OnlySecond = layer("OnlySecond", forward2, backward2)
a = T([1.0, 2.0], True)
b = T([3.0, 4.0], True)
s = Product.apply(a, b).sum()
attempt("Product: paddle.grad(s, [a, b])", lambda: paddle.grad(s, [a, b], retain_graph=True))
attempt("Product: paddle.grad(s, a)", lambda: paddle.grad(s, a, retain_graph=True))
t = OnlySecond.apply(a, b).sum()
attempt("OnlySecond (returns None, g*a): paddle.grad(t, a)", lambda: paddle.grad(t, a, retain_graph=True))
attempt("OnlySecond: paddle.grad(t, [a, b], allow_unused=True)", lambda: paddle.grad(t, [a, b], allow_unused=True))
