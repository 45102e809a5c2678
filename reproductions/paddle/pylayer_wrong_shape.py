# CUSTOM-4: a PyLayer backward returning a gradient that cannot be summed to its input's shape (PyTorch:
# custom_grad_shape). Paddle passes it on: a [2] input gets a [3] (or 0-d) gradient.
from common import T, attempt, paddle
from pylayer_common import layer
Widened = layer("Widened", lambda ctx, x: x * 2, lambda ctx, g: paddle.ones([3], dtype="float64") * g.sum())
Flattened = layer("Flattened", lambda ctx, x: x * 2, lambda ctx, g: g.sum())
x = T([1.0, 2.0], True)
attempt("paddle.grad through a backward returning [3] for a [2] input", lambda: paddle.grad(Widened.apply(x).sum(), x))
attempt("paddle.grad through a backward returning 0-d for a [2] input", lambda: paddle.grad(Flattened.apply(x).sum(), x))
attempt("backward: x.grad", lambda: (Widened.apply(x).sum().backward(), x.grad)[1])
# Found by the sequence fuzzer: a gradient of a shape the input broadcasts to ([2, 3] for a [3] input) is neither
# summed back (PyTorch) nor refused (JAX; CUSTOM-5): the [3] leaf gets a [2, 3] .grad (SHAPE-1).
def product_forward(ctx, a, b):
    ctx.save_for_backward(a, b)
    return a * b
def product_backward(ctx, g):
    a, b = ctx.saved_tensor()
    return g * b, g * a
Product = layer("Product", product_forward, product_backward)
u = T([1.0, 2.0, 3.0], True)
v = T([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], True)
Product.apply(u, v).sum().backward()
print("Product(u [3], v [2, 3]): u.grad shape", u.grad.shape, "(PyTorch: [3], summed to [3, 3, 3])")
