# CUSTOM-10: a PyLayer's backward runs with grad mode on exactly when the pass has create_graph, whatever the
# caller's mode (PyTorch: False, True, False, True below). CUSTOM-1: its forward runs with grad mode off.
from common import T, paddle
from pylayer_common import layer
seen = []
def forward(ctx, x):
    seen.append(("forward", paddle.is_grad_enabled()))
    t = x * 3
    seen.append(("t inside forward requires grad", t.requires_grad))
    return x * 2
def backward(ctx, g):
    seen.append(("backward", paddle.is_grad_enabled()))
    return g * 2
Double = layer("Double", forward, backward)
x = T([1.0, 2.0], True)
s = Double.apply(x).sum()
with paddle.no_grad():
    g1, = paddle.grad(s, x, retain_graph=True)
    g2, = paddle.grad(s, x, retain_graph=True, create_graph=True)
with paddle.enable_grad():
    g3, = paddle.grad(s, x, retain_graph=True)
g4, = paddle.grad(s, x, retain_graph=True, create_graph=True)
print(seen)
print("requires_grad of g1..g4:", [g.requires_grad for g in (g1, g2, g3, g4)])
