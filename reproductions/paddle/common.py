"""Quiet Paddle on the CPU, and small helpers for the reproductions."""
import os
import warnings

os.environ.setdefault("GLOG_minloglevel", "2")
warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import paddle  # noqa: E402

paddle.set_device("cpu")


def T(value, requires_grad=False, dtype="float64"):
    return paddle.to_tensor(np.array(value, dtype=dtype), dtype=dtype, stop_gradient=not requires_grad)


def attempt(label, fn):
    """Print what fn returns, or the exception it raises (type and first line)."""
    try:
        result = fn()
        if isinstance(result, paddle.Tensor):
            result = result.numpy()
        elif isinstance(result, (list, tuple)):
            result = [r.numpy() if isinstance(r, paddle.Tensor) else r for r in result]
        print(f"{label}: {result}")
    except Exception as e:  # noqa: BLE001
        print(f"{label}: raised {type(e).__name__}: {str(e).splitlines()[0][:200]}")
