# CUSTOM-1, CUSTOM-10: a value computed in a PyLayer's forward has no graph, so under create_graph a backward
# reading only it and the implicit output gradient gives a gradient that does not require grad (PyTorch: False).
from common import T, paddle
from pylayer_common import layer
def forward(ctx, x):
    t = x * 3
    ctx.save_for_backward(t)
    print("inside forward: grad enabled", paddle.is_grad_enabled(), "t requires grad", t.requires_grad)
    return t * x
def backward(ctx, g):
    t, = ctx.saved_tensor()
    return g * 2 * t
Triple = layer("Triple", forward, backward)
x = T([1.5, -2.0], True)
g, = paddle.grad(Triple.apply(x).sum(), x, create_graph=True)
print("g =", g.numpy(), "requires_grad", g.requires_grad)
y = T([1.5, -2.0], True)
h, = paddle.grad((y * 3).sum(), y, create_graph=True)
print("for comparison, built-in d(sum(3y))/dy requires_grad", h.requires_grad)
