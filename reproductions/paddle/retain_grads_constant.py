# RETAIN-4: retain_grads on a tensor that does not require grad (PyTorch: not_requires_grad).
from common import T, attempt
c = T([1.0])
attempt("c.retain_grads(), c not requiring grad", lambda: (c.retain_grads(), "no error")[1])
