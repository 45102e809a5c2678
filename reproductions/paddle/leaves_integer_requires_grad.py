# LEAF-3: an integer tensor asked to require grad (PyTorch: integer_requires_grad).
from common import attempt, paddle
i = paddle.to_tensor([1, 2], dtype="int64")
attempt("int64 tensor requires_grad_(True)", lambda: (i.requires_grad_(True), i.requires_grad)[1])
j = paddle.to_tensor([1, 2], dtype="int64")
attempt("int64 tensor stop_gradient = False", lambda: (setattr(j, "stop_gradient", False), j.requires_grad)[1])
