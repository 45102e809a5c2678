"""The tinygrad adapter: `Tensor.backward`, `.grad` and `Tensor.gradient`, in float64 and float32.

tinygrad is lazy: a tensor is a node of an op graph that is compiled when values are
read, and gradients are more graph, so they can be differentiated again (create_graph
always holds). What maps: `backward(gradient)` accumulating into `.grad`, `grad` as
`output.gradient(*inputs, gradient=...)` for one output, `detach`.

What does not: tinygrad has no `requires_grad` (backward fills `.grad` of every
floating tensor the output depends on, non-leaves included, and `gradient` takes any
tensor), no `grad_fn` or leaf flag, no hooks, no grad modes, no in-place arithmetic on
recorded tensors, and never frees a graph; `retain_graph` is accepted and has nothing
to keep. Several outputs in one `grad` call are not a tinygrad call and are refused.
Assignment into a subscript (`x[1:3] = v`) maps, gradients included (`setitem`); views do
not alias their base (an `assign` through a view of a computed tensor leaves the base as
it was), so `views` is not declared.

tinygrad picks its device from the `DEV` environment variable. Its CPU device compiles
kernels with clang, and even its Python interpreter device (DEV=PYTHON) computes
constants there, so without clang (and DEV unset) the engine counts as unavailable.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
from gradspec.absent import Absent, Unsupported
from gradspec.adapter import OPERATOR_OPS, Adapter
from gradspec.adapters.torch_like import call_method

try:
    import tinygrad
    from tinygrad import Tensor, dtypes
except ImportError:  # pragma: no cover - exercised only where tinygrad is absent
    tinygrad = None

ERRORS = [
    (AssertionError, r"backward must be called on a scalar tensor", "nonscalar_implicit"),
]


def _transpose(a):
    """A new tensor for any rank, as the vocabulary's transpose (a view) is: not the operand itself below 2-d."""
    return a.reshape(a.shape) if a.ndim < 2 else a.transpose(0, 1)


def _reduce(method: str):
    return lambda a, dim=None, keepdim=False: getattr(a, method)(axis=dim, keepdim=keepdim)


OPS = {
    **OPERATOR_OPS,
    "sum": _reduce("sum"), "mean": _reduce("mean"), "max": _reduce("max"), "min": _reduce("min"),
    "prod": _reduce("prod"), "transpose": _transpose,
    "argmax": _reduce("argmax"), "argmin": _reduce("argmin"),
    "reshape": lambda a, shape: a.reshape(tuple(shape)),
    **{name: call_method(name)
       for name in ("exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "sqrt", "clone", "detach",
                    "log2", "log10", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
                    "erf", "rsqrt", "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc", "softplus",
                    "silu")},
    "gelu": lambda a, approximate="none": a.gelu(approximate=approximate),
    "leaky_relu": lambda a, negative_slope=0.01: a.leaky_relu(negative_slope),
    "elu": lambda a, alpha=1.0: a.elu(alpha),
    "clamp": lambda a, min=None, max=None: a.clamp(min, max),
    "maximum": lambda a, b: a.maximum(b), "minimum": lambda a, b: a.minimum(b), "fmod": lambda a, b: a.fmod(b),
    "copysign": lambda a, b: a.copysign(b), "lerp": lambda a, b, weight: a.lerp(b, weight),
    "where": lambda condition, a, b: (condition != 0).where(a, b),
    "amax": _reduce("max"), "amin": _reduce("min"),
    "logsumexp": lambda a, dim, keepdim=False: a.logsumexp(axis=dim, keepdim=keepdim),
    "softmax": lambda a, dim: a.softmax(axis=dim), "log_softmax": lambda a, dim: a.log_softmax(axis=dim),
    "cumsum": lambda a, dim: a.cumsum(axis=dim), "cumprod": lambda a, dim: a.cumprod(axis=dim),
    "masked_fill": lambda a, mask, value: a.masked_fill(mask != 0, value),
    "dot": lambda a, b: a.dot(b),
    "gt": lambda a, b: a > b, "lt": lambda a, b: a < b, "ge": lambda a, b: a >= b, "le": lambda a, b: a <= b,
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "triu": lambda a, diagonal=0: a.triu(diagonal), "tril": lambda a, diagonal=0: a.tril(diagonal),
    "cat": lambda first, *rest, dim=0: first.cat(*rest, dim=dim),
    "stack": lambda first, *rest, dim=0: first.stack(*rest, dim=dim),
    "var": lambda a, dim=None, correction=1, keepdim=False: a.var(axis=dim, keepdim=keepdim, correction=correction),
    "std": lambda a, dim=None, correction=1, keepdim=False: a.std(axis=dim, keepdim=keepdim, correction=correction),
}


def _made(value: np.ndarray, dtype: Any) -> Any:
    """A tensor of the value. A 0-d one is made from a one-element buffer: `Tensor(np.array(0.3))` is a device-less
    constant that backward never fills .grad of (and two made from one number are one shared constant), while the
    same value reshaped from a buffer of one element is an ordinary tensor."""
    if value.ndim == 0:
        return Tensor(value.reshape(1), dtype=dtype).reshape(())
    return Tensor(value, dtype=dtype)


class TinygradAdapter(Absent, Adapter):
    name = "tinygrad"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    capabilities = frozenset({"backward", "grad", "create_graph", "detach", "setitem"})
    fuzz_tolerates = {"unreached_leaf_gets_zeros": "accumulation/leaf-only-in-a-condition-gets-no-gradient.yaml",
                      "one_output_per_grad": "vjp/several-outputs-sum.yaml",
                      **{f"op:{op}": f"derivatives/{op}.yaml" for op in ("asin", "acos", "atan", "gelu", "erf")}}
    lacks_ops = frozenset({"expm1", "log1p", "erfc", "atan2", "hypot", "remainder",
                           "norm", "take", "outer", "trace", "diag", "inv", "det", "solve"})
    errors = ERRORS

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if tinygrad is None:
            return "tinygrad is not installed (pip install gradspec[tinygrad])"
        if "DEV" not in os.environ and shutil.which("clang") is None:
            return "tinygrad's CPU device compiles with clang, which is not installed (apt-get install clang)"
        return None

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import version
        return version("tinygrad") if tinygrad is not None else "not installed"

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Any:
        return _made(np.asarray(value, dtype=dtype), getattr(dtypes, dtype))

    def like(self, value: np.ndarray, reference: Any) -> Any:
        return _made(np.asarray(value, dtype=self.dtype_name(reference)), reference.dtype)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor.numpy(), copy=True)

    def dtype_name(self, tensor: Any) -> str:
        return np.dtype(tensor.dtype.fmt).name if tensor.dtype.fmt else str(tensor.dtype)

    def op_table(self) -> dict:
        return OPS

    def apply(self, op: str, args, kwargs) -> Any:
        return OPS[op](*args, **kwargs)

    def setitem(self, target, index, value) -> None:
        target[index] = value

    def backward(self, output, gradient, retain_graph, create_graph, inputs) -> None:
        if inputs is not None:
            raise Unsupported("tinygrad's backward has no inputs argument")
        output.backward(gradient)

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
        if len(outputs) != 1:
            raise Unsupported(f"tinygrad's Tensor.gradient differentiates one output, not {len(outputs)}")
        if grad_outputs is not None and len(grad_outputs) != 1:
            raise Unsupported(f"tinygrad's Tensor.gradient takes one output gradient, not {len(grad_outputs)}")
        gradient = None if grad_outputs is None else grad_outputs[0]
        return outputs[0].gradient(*inputs, gradient=gradient)

    def read_grad(self, tensor) -> Any:
        return tensor.grad
