# HOOK-10: a retained non-leaf's .grad holds the gradient after its hooks (PyTorch: the hooked value).
from common import T
x = T([1.0], True)
u = x * 2
u.retain_grads()
u.register_hook(lambda g: g * 3)
u.sum().backward()
print("hook registered after retain_grads: u.grad", u.grad.numpy(), "x.grad", x.grad.numpy(), "(hooked: 3 and 6)")
z = T([1.0], True)
v = z * 2
v.register_hook(lambda g: g * 3)
v.retain_grads()
v.sum().backward()
print("hook registered before retain_grads: v.grad", v.grad.numpy(), "z.grad", z.grad.numpy())
