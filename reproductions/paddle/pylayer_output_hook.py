# CUSTOM-14, HOOK-2: a hook on a PyLayer's output replaces the gradient its backward receives (PyTorch: [2, 20]).
from common import T, paddle
from pylayer_common import layer
received = []
Double = layer("Double", lambda ctx, x: x * 2, lambda ctx, g: (received.append(g.numpy()), g * 2)[1])
x = T([1.0, 2.0], True)
y = Double.apply(x)
y.register_hook(lambda g: g * 2)
(y * T([1.0, 10.0])).sum().backward()
print("backward received", received, "x.grad", x.grad.numpy())
z = T([1.0, 2.0], True)
u = z * 2
u.register_hook(lambda g: g * 2)
(u * T([1.0, 10.0])).sum().backward()
print("for comparison, a built-in op's output: z.grad", z.grad.numpy())
