# CUSTOM-9: a value a PyLayer saved, modified in place afterwards, makes its backward raise (PyTorch:
# inplace_modified), as a built-in op's saved value does in Paddle.
from common import T, attempt, paddle
from pylayer_common import layer
def forward(ctx, z):
    ctx.save_for_backward(z)
    return z * z
def backward(ctx, g):
    z, = ctx.saved_tensor()
    return g * 2 * z
Square = layer("Square", forward, backward)
x = T([1.0, 2.0], True)
z = x * 3
y = Square.apply(z)
z.add_(T(1.0))
attempt("PyLayer: grad after its saved z was updated in place", lambda: paddle.grad(y.sum(), x))
z = x * 3
y = z * z
z.add_(T(1.0))
attempt("built-in z * z: grad after z was updated in place", lambda: paddle.grad(y.sum(), x))
