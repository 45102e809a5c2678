# The crash the sequence fuzzer met: paddle.grad over a graph holding a PyLayer, after a backward over it, dies
# with SIGSEGV in GradNodePyLayer::Copy (paddle.grad copies the graph; the PyLayer node's copy crashes). Each variant in
# a child process.
import subprocess
import sys

CHILD = '''
import sys
from common import T, paddle
from pylayer_common import layer
Flattened = layer("Flattened", lambda ctx, x: x * 2, lambda ctx, g: g * 2)
x = T(2.0, True)
other = T(0.5, True)
loss = Flattened.apply(x).sum()
for call in sys.argv[1].split(","):
    if call == "grad":
        print("grad", paddle.grad(loss, [x], retain_graph=True)[0].numpy(), flush=True)
    elif call == "grad_other":
        print("grad, other input", paddle.grad(loss, [x, other], retain_graph=True, allow_unused=True)[0].numpy(), flush=True)
    else:
        loss.backward(retain_graph=True); print("backward", x.grad.numpy(), flush=True)
'''
for calls in ("grad,grad", "grad_other,grad_other", "backward,grad", "grad,backward", "backward,backward"):
    run = subprocess.run([sys.executable, "-c", CHILD, calls], capture_output=True, text=True)
    done = [line for line in run.stdout.splitlines() if line.startswith(("grad", "backward"))]
    print(f"{calls:24} exit {run.returncode}{' (SIGSEGV)' if run.returncode == -11 else ''}: {done}")
