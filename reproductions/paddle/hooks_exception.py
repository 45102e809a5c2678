# HOOK-9: an exception raised by a hook propagates out of backward unchanged (PyTorch: the same exception object).
from common import T

class Mine(Exception):
    pass

x = T([1.0], True)
u = x * 2
u.register_hook(lambda g: (_ for _ in ()).throw(Mine("from the hook")))
try:
    u.sum().backward()
except Exception as e:  # noqa: BLE001
    print("raised", type(e).__name__, "is Mine:", isinstance(e, Mine), "message:", str(e).splitlines()[0])
