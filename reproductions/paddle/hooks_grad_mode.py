# PASS-1: a tensor hook runs with grad mode on exactly when the pass has create_graph (PyTorch: False, False, True).
from common import T, paddle
x = T([1.0, 2.0], True)
u = x * 2
seen = []
u.register_hook(lambda g: seen.append(paddle.is_grad_enabled()))
s = (u * u).sum()
s.backward(retain_graph=True)
with paddle.enable_grad():
    paddle.grad(s, x, retain_graph=True)
with paddle.no_grad():
    paddle.grad(s, x, retain_graph=True, create_graph=True)
print("grad mode inside the hook: backward", seen[0], "| grad under enable_grad", seen[1],
      "| grad with create_graph under no_grad", seen[2])
with paddle.no_grad():
    s.backward(retain_graph=True)
print("backward under no_grad: grad mode inside the hook", seen[3])
