# CUSTOM-10: a saved value that requires grad, returned as it is by a PyLayer's backward, keeps requires_grad
# (PyTorch: True). Paddle sets stop_gradient on the returned tensor itself: the user's leaf w stops requiring grad.
from common import T, paddle
from pylayer_common import layer
def forward(ctx, x, w):
    ctx.save_for_backward(w)
    return x * w
def backward(ctx, g):
    w, = ctx.saved_tensor()
    return w, None
PassSaved = layer("PassSaved", forward, backward)
x = T([1.5, -2.0], True)
w = T([0.1, 0.7], True)
print("w requires grad before:", w.requires_grad)
ga, = paddle.grad(PassSaved.apply(x, w).sum(), x)
print("ga =", ga.numpy(), "requires_grad", ga.requires_grad, "| w requires grad after:", w.requires_grad)
