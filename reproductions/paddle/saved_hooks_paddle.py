# SAVED-1, SAVED-3, SAVED-4, SAVED-5 with paddle.autograd.saved_tensors_hooks around a PyLayer that saves its input.
import threading

from common import T, attempt, paddle
from pylayer_common import layer

def forward(ctx, x):
    ctx.save_for_backward(x)
    return x * x * x
def backward(ctx, g):
    x, = ctx.saved_tensor()
    return g * 3 * x * x
Cube = layer("Cube", forward, backward)
log = []
def hooks(name):
    return paddle.autograd.saved_tensors_hooks(lambda t: (log.append((name, "pack", t.numpy().tolist())), t)[1],
                                               lambda t: (log.append((name, "unpack", t.numpy().tolist())), t)[1])
x = T([1.0, 2.0], True)
c = T([3.0])
# SAVED-1: an operation that is not recorded (no_grad, or no input requiring grad) packs nothing (PyTorch: no call).
with hooks("log"):
    with paddle.no_grad():
        Cube.apply(x)
    Cube.apply(c)
print("SAVED-1, packs for calls not recorded:", log)
# SAVED-3: nested blocks, the innermost applies (PyTorch).
log.clear()
def nested():
    with hooks("outer"):
        with hooks("inner"):
            Cube.apply(x)
attempt("SAVED-3, nested saved_tensors_hooks", nested)
# SAVED-4: a thread started inside a block saves without its hooks (PyTorch: only the main thread's value packed).
log.clear()
z = T([3.0], True)
with hooks("main_only"):
    worker = threading.Thread(target=lambda: Cube.apply(z))
    worker.start()
    worker.join()
    Cube.apply(x)
print("SAVED-4, packs with a thread inside the block:", log)
# SAVED-5: a pack hook modifying its input in place raises (PyTorch: pack_hook_inplace).
a = x * 1
def pack_in_place(t):
    t.scale_(2.0)
    return t
with paddle.autograd.saved_tensors_hooks(pack_in_place, lambda t: t):
    attempt("SAVED-5, pack hook scaling its input in place", lambda: Cube.apply(a))
print("a after:", a.numpy())
