# CUSTOM-9: a PyLayer's saved values obey the graph's lifetime: after a backward with retain_graph=True a second
# one runs, and a third after one without raises freed_graph (PyTorch). Paddle crashes (SIGSEGV) in the second, in
# GradNodePyLayer; without saved tensors it does not. Each run in a child process.
import subprocess
import sys

CHILD = '''
import sys
from common import T
from pylayer_common import layer
save = sys.argv[1] in ("save", "hooks")
import contextlib
from common import paddle
block = paddle.autograd.saved_tensors_hooks(lambda t: t, lambda t: t) if sys.argv[1] == "hooks" else contextlib.nullcontext()
def forward(ctx, x):
    if save:
        ctx.save_for_backward(x)
    ctx.x = x  # the value, without save_for_backward
    return x * x * x
def backward(ctx, g):
    x, = ctx.saved_tensor() if save else (ctx.x,)
    return g * 3 * x * x
Cube = layer("Cube", forward, backward)
x = T([1.0, 2.0], True)
with block:
    y = Cube.apply(x)
s = y.sum()
s.backward(retain_graph=True); print("first backward, retain_graph=True: x.grad", x.grad.numpy(), flush=True)
s.backward(); print("second backward: x.grad", x.grad.numpy(), flush=True)
try:
    s.backward(); print("third backward: x.grad", x.grad.numpy(), flush=True)
except Exception as e:
    print("third backward raised", type(e).__name__, str(e).splitlines()[0][:120])
'''
for mode in ("save", "attribute", "hooks"):
    run = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True)
    print(f"-- saved with {dict(save='save_for_backward', attribute='a ctx attribute', hooks='save_for_backward in a saved_tensors_hooks block (SAVED-2)')[mode]}:")
    print("\n".join(line for line in run.stdout.splitlines() if "backward" in line and "::" not in line))
    print("exit status", run.returncode, "(-11: SIGSEGV)" if run.returncode == -11 else "")
