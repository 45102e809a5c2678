# views (lacked): a view shares its base's values, and an in-place update through it reaches the base's history
# (VIEW rules). Paddle's slices share values, but the update's gradient does not reach the base's leaves, and
# expand's result does not alias its base.
from common import T, paddle
x = T([1.0, 2.0, 3.0, 4.0], True)
w = T(3.0, True)
b = x * 1
v = b[1:3]
v.multiply_(w)  # b[1:3] *= w through the view
print("b after the view update:", b.numpy(), "(shared values)")
(b * b).sum().backward()
print("x.grad", x.grad.numpy(), "(PyTorch: [2, 36, 54, 8])", "w.grad", w.grad, "(PyTorch: 78)")
a = T([1.0, 2.0])
e = paddle.expand(a, [2, 2])
a.add_(T(100.0))
print("expand's result after its base changed:", e.numpy().tolist(), "(a view: [[101, 102], [101, 102]])")
