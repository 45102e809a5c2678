# PASS-5: backward works through a chain of any depth (PyTorch: 100,000 additions are fine). Paddle's backward
# gives the right gradient, then the process dies (SIGSEGV) when the chain is freed, as it does without any
# backward. Each run in a child process.
import subprocess
import sys

CHILD = '''
import sys
from common import T
x = T([0.5], True)
y = x * 1
for _ in range(int(sys.argv[1])):
    y = y + x
if sys.argv[2] == "backward":
    y.sum().backward()
    print("backward done: x.grad", x.grad.numpy(), flush=True)
del y
print("chain freed", flush=True)
'''
for depth, mode in ((10000, "backward"), (30000, "backward"), (100000, "backward"), (100000, "no backward")):
    run = subprocess.run([sys.executable, "-c", CHILD, str(depth), mode], capture_output=True, text=True)
    out = [line for line in run.stdout.splitlines() if line.startswith(("backward done", "chain freed"))]
    print(f"depth {depth}, {mode}: exit status {run.returncode}{' (SIGSEGV)' if run.returncode == -11 else ''};", *out)
