# RETAIN-2: a retained non-leaf's .grad accumulates over passes, like a leaf's.
from common import T, paddle
x = T([3.0], True)
u = x * 2
u.retain_grads()
a = paddle.nn.functional.relu(u + 1)
a.backward(retain_graph=True)
print("after one backward: u.grad", u.grad.numpy(), "x.grad", x.grad.numpy())
a.backward()
print("after two backwards: u.grad", u.grad.numpy(), "(a leaf would hold 2x)", "x.grad", x.grad.numpy())
