# LEAF-1: a tensor made by the user has no grad_fn (PyTorch: None).
from common import T, paddle
x = T([1.0], True)
c = T([1.0])
print("x (requires grad): is_leaf", x.is_leaf, "grad_fn", x.grad_fn and x.grad_fn.name())
print("c (constant): is_leaf", c.is_leaf, "grad_fn", c.grad_fn and c.grad_fn.name())
