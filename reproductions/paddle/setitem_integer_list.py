# VIEW-10, ACC-1: b[[0, 3]] = u sends u the gradient at the listed positions (PyTorch: u.grad = [1, 4]).
from common import T
for dtype in ("float64", "float32"):
    for attempt_number in range(3):
        x = T([1.0, 2.0, 3.0, 4.0], True, dtype)
        u = T([10.0, 20.0], True, dtype)
        b = x * 2
        b[[0, 3]] = u
        (b * T([1.0, 2.0, 3.0, 4.0], dtype=dtype)).sum().backward()
        print(dtype, "b", b.numpy(), "x.grad", x.grad.numpy(), "u.grad", u.grad.numpy())
