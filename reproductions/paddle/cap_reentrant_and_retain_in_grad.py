# reentrant_backward: a backward started inside a hook of another pass runs to completion (PASS-8).
# retain_grad_in_grad: paddle.grad fills a retained non-leaf's .grad on its path (RETAIN-5, PyTorch's choice).
from common import T, paddle
x = T([2.0], True)
w = T([3.0], True)
def hook(g):
    (w * w).sum().backward()  # an inner pass, inside the outer one
    return g
u = x * 4
u.register_hook(hook)
u.sum().backward()
print("re-entrant: x.grad", x.grad.numpy(), "(4)", "w.grad", w.grad.numpy(), "(6)")
a = T([1.0, 2.0], True)
v = a * 3
v.retain_grads()
g, = paddle.grad((v * v).sum(), a)
print("paddle.grad:", g.numpy(), "retained v.grad", None if v.grad is None else v.grad.numpy(), "(PyTorch: [6, 12])")
