# HOOK-11: under grad, a requested leaf's hook fires and its result is what grad returns (PyTorch: 240).
from common import T, paddle
x = T([3.0], True)
calls = []
x.register_hook(lambda g: (calls.append(("x", g.numpy().tolist())), g * 10)[1])
u = x * 2
u.register_hook(lambda g: calls.append(("u", g.numpy().tolist())))
g, = paddle.grad((u * u).sum(), x)
print("paddle.grad ->", g.numpy(), "hook calls", calls)
