"""Hand checks of each expectations/mygrad.txt line, in mygrad 2.5.0 alone (no gradspec)."""
import numpy as np
import mygrad as mg

print("mygrad", mg.__version__, "numpy", np.__version__)
# 1. floor, ceil, sign, trunc, fmod, remainder: NumPy ufuncs that mygrad does not implement refuse variables
for f in (mg.floor, mg.ceil, mg.sign, mg.trunc):
    try:
        f(mg.tensor([1.5, -2.5])); print(f.__name__, "ran")
    except ValueError as e:
        print(f.__name__, "ValueError:", e)
for f in (mg.fmod, mg.remainder):
    try:
        f(mg.tensor([5.5, -2.5]), mg.tensor([2.0, 2.0])); print(f.__name__, "ran")
    except ValueError as e:
        print(f.__name__, "ValueError:", e)
print("floor of a constant:", mg.floor(mg.tensor([1.5], constant=True)))
# 2. constant += variable stays constant (inplace/operand-requires-grad)
c, x = mg.tensor([1.0, 2.0], constant=True), mg.tensor([10.0, 20.0])
c += x
y = (c * 3).sum(); y.backward()
print("c += x:", c, "constant:", c.constant, "creator:", c.creator, "x.grad:", x.grad)
# 3. a result of constants has a creator (leaves-and-results)
k = mg.tensor([1.0, 2.0], constant=True) * 2
print("constant * 2: constant", k.constant, "creator", type(k.creator).__name__)
# 4. non-leaf .grad filled (nonleaf-grad-is-none)
x = mg.tensor([1.0, 2.0]); u = x * 2; (u * u).sum().backward()
print("u.grad after backward:", u.grad, "x.grad:", x.grad)
# 5. views by basic indexing updated in place without error (multi-output-inplace-raises)
x = mg.tensor([[1.0, 2.0], [3.0, 4.0]]); b = x * 1
a0, a1 = b[0], b[1]
a0 *= 2
print("b after a0 *= 2 (a0 = b[0]):", b, "a0 base is b:", a0.base is b)
# 6. integer indexing gives a copy (slice-aliases-both-ways, view-of-view-update)
x = mg.tensor([1.0, 2.0, 3.0, 4.0]); b = x * 1
v, e = b[1:3], b[0]
b += 10
print("v:", v, "e:", e, "e.base:", e.base, "v.base is b:", v.base is b)
x = mg.tensor([[1.0, 2.0], [3.0, 4.0]]); b = x * 1; r = b[1]; e = r[0]; e *= 5
print("view of view: b", b, "r", r, "e", e)
# 7. constant base updated through a variable stays constant, and so does its view (view-gains-requires-grad)
c, w = mg.tensor([1.0, 2.0, 3.0, 4.0], constant=True), mg.tensor(3.0)
v = c[1:3]
c *= w
print("c *= w:", c, "c.constant", c.constant, "v", v, "v.constant", v.constant)
v.sum().backward(); print("w.grad:", w.grad)
# 8. in-place update of a view of a leaf (view-of-leaf-inplace-raises)
x = mg.tensor([1.0, 2.0, 3.0]); v = x[0:2]; v *= 2
print("x after v *= 2:", x, "x.creator:", type(x.creator).__name__)
# 9. float32 with a Python number gives float64 (pow-number-exponent, float32)
a = mg.tensor(np.array([0.0, -1.5, 0.7], dtype=np.float32))
print("float32 ** 3:", (a ** 3).dtype, " * 2.0:", (a * 2.0).dtype, " numpy float32 ** 3:", (np.asarray(a) ** 3).dtype)
# not listed: derivative steps in one case after another (norm, reductions-and-shapes) — backward replaces .grad
x = mg.tensor([3.0, -4.0]); mg.linalg.norm(x).backward(); first = x.grad
mg.linalg.norm(x, ord=1).backward()
print("norm p=2 grad", first, "then p=1 grad", x.grad, "(replaced, not added)")
# 10. float32 tensors meeting a Python number become float64: each expression as the float32 cases write it
f32 = lambda v: mg.tensor(np.array(v, dtype=np.float32))
x, a, c, z = f32([1.0, 2.0]), f32([0.0, -1.5, 0.7]), f32([-1.0, 0.5, 3.0]), f32([1.0, 2.5])
m = np.array([1, 0])
for text, value in [("x * 1", x * 1), ("x * 2", x * 2), ("x + 2", x + 2), ("x + 1", x + 1), ("a ** 0", a ** 0),
                    ("a ** 3", a ** 3), ("2 ** c", 2 ** c), ("0 ** z", 0 ** z),
                    ("where(m != 0, 5.0, x)", mg.where(m != 0, 5.0, x)), ("x * x (no number)", x * x)]:
    print(f"float32 {text}: {value.dtype}")
b = x * x; b[0] = 7; print("float32 b[0] = 7 keeps", b.dtype)
