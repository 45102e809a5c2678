# data_alias and the op data: PyTorch's .data is the values under a version counter of their own, cut from the graph
# (INPLACE-5). What Paddle's Tensor.data is: shared values? its own version counter?
from common import T, attempt
x = T([1.0, 2.0], True)
d = x.data
print("x.data is x:", d is x, "| requires_grad", d.requires_grad)
y = x * 1
s = (y * y).sum()
dy = y.data
dy.add_(T(1.0))
print("after y.data.add_(1): y", y.numpy(), "y.inplace_version", y.inplace_version, "y.data version", dy.inplace_version)
attempt("backward through y * y, y saved", lambda: (s.backward(), x.grad)[1])
