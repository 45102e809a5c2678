# LEAF-4: requires_grad_(False) on a non-leaf (PyTorch: nonleaf_requires_grad).
from common import T, attempt
x = T([1.0], True)
y = x * 2
attempt("y.requires_grad_(False), y = x * 2", lambda: (y.requires_grad_(False), y.requires_grad, y.is_leaf)[1:])
