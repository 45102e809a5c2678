# INPLACE-3: an in-place update of a leaf that requires grad is refused (leaf_inplace); the refused update changes
# nothing (PyTorch checks before writing).
from common import T, attempt
x = T([1.0, 2.0], True)
attempt("x.add_(1) on a leaf requiring grad", lambda: x.add_(T(1.0)))
print("x after the refused add_:", x.numpy(), "inplace_version", x.inplace_version)
y = T([1.0, 2.0, 3.0], True)
attempt("y[0:2] = [5, 6] on a leaf requiring grad", lambda: y.__setitem__(slice(0, 2), T([5.0, 6.0])))
print("y after the refused assignment:", y.numpy())
