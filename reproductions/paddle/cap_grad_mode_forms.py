# grad_mode_forms: paddle.no_grad(), enable_grad() and set_grad_enabled(mode) as decorators of a function and of a
# generator function (the mode must hold at every resume).
from common import T, paddle
x = T([1.0], True)
for name, make, inside in (("no_grad", lambda: paddle.no_grad(), False), ("enable_grad", lambda: paddle.enable_grad(), True),
                           ("set_grad_enabled(False)", lambda: paddle.set_grad_enabled(False), False)):
    def plain():
        return paddle.is_grad_enabled(), (x * 2).requires_grad
    def gen():
        for _ in range(2):
            yield paddle.is_grad_enabled(), (x * 2).requires_grad
    outer = paddle.no_grad() if inside else paddle.enable_grad()
    with outer:
        try:
            function = make()(plain)()
        except Exception as e:  # noqa: BLE001
            function = f"{type(e).__name__}: {e}"
        try:
            generator = list(make()(gen)())
        except Exception as e:  # noqa: BLE001
            generator = f"{type(e).__name__}: {e}"
    print(f"{name:24} decorated function: {function}; decorated generator: {generator} (want mode {inside})")
# Between resumes the caller's mode is back (PyTorch restores it at each yield).
@paddle.no_grad()
def steps():
    for _ in range(2):
        yield paddle.is_grad_enabled()
seen = []
for inside in steps():
    seen.append((inside, paddle.is_grad_enabled()))
print("no_grad generator: (mode inside, caller's mode between resumes):", seen, "(want (False, True) twice)")
