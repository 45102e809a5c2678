# DERIV-1: prod's gradient is the product of the other elements, exact at zeros (PyTorch: [0, 6, 0] and [0, 0, 0]).
from common import T, paddle
one_zero = T([2.0, 0.0, 3.0], True)
two_zeros = T([0.0, 0.0, 3.0], True)
print("d prod([2, 0, 3]):", paddle.grad(paddle.prod(one_zero), one_zero)[0].numpy())
print("d prod([0, 0, 3]):", paddle.grad(paddle.prod(two_zeros), two_zeros)[0].numpy())
rows = T([[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]], True)
print("d sum(prod(rows, axis=1)):", paddle.grad(paddle.prod(rows, axis=1).sum(), rows)[0].numpy().tolist())
c = T([2.0, 0.0, 3.0], True)
print("d sum(cumprod([2, 0, 3])):", paddle.grad(paddle.cumprod(c, dim=0).sum(), c)[0].numpy(), "(PyTorch: [1, 8, 0])")
