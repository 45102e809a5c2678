"""The TensorFlow adapter: `tf.GradientTape` through gradspec's recording layer, on CPU.

Each `grad` of a case is one non-persistent tape that watches a zero perturbation of
each input while the recorded program is replayed, then `tape.gradient(targets,
sources, output_gradients=..., unconnected_gradients=...)`: `grad_outputs` are
`output_gradients`; an unused input gets None, or zeros with `materialize_grads`
(`UnconnectedGradients.ZERO`). With `create_graph` the tape's work is replayed inside
the tape of a later `grad`: nested tapes, TensorFlow's way to higher order. `detach` is
`tf.stop_gradient`.

What does not map: a tape's persistence is fixed when it opens, before the forward
pass, while `retain_graph` is chosen at gradient time, so graph lifetime is absent (a
non-persistent tape used twice is the freed-graph situation, but no case can say in
advance which tape it wants); `stop_recording` pauses one tape, not the whole process
as `no_grad` does, so grad modes are absent; there is no `.grad`, no hooks and no
in-place operation on tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradspec.adapter import OPERATOR_OPS
from gradspec.functional import FunctionalAdapter, axis_reduction

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - exercised only where TensorFlow is absent
    tf = None


def _ops() -> dict:
    return {
        **OPERATOR_OPS, "matmul": _matmul,
        "sum": axis_reduction(tf.reduce_sum), "mean": axis_reduction(tf.reduce_mean),
        "max": axis_reduction(tf.reduce_max), "min": axis_reduction(tf.reduce_min),
        "argmax": _index_of(tf.argmax), "argmin": _index_of(tf.argmin),
        "transpose": lambda a: tf.transpose(a), "reshape": lambda a, shape: tf.reshape(a, tuple(shape)),
        "exp": tf.exp, "log": tf.math.log, "sin": tf.sin, "cos": tf.cos, "tanh": tf.tanh, "sqrt": tf.sqrt,
        "abs": tf.abs, "relu": tf.nn.relu, "sigmoid": tf.sigmoid, "clone": tf.identity,
        "expm1": tf.math.expm1, "log1p": tf.math.log1p, "tan": tf.math.tan, "asin": tf.math.asin,
        "acos": tf.math.acos, "atan": tf.math.atan, "sinh": tf.math.sinh, "cosh": tf.math.cosh,
        "asinh": tf.math.asinh, "acosh": tf.math.acosh, "atanh": tf.math.atanh, "erf": tf.math.erf,
        "erfc": tf.math.erfc, "rsqrt": tf.math.rsqrt, "reciprocal": tf.math.reciprocal, "square": tf.math.square,
        "sign": tf.math.sign, "floor": tf.math.floor, "ceil": tf.math.ceil, "round": tf.math.round,
        "softplus": tf.math.softplus, "silu": tf.nn.silu,
        "gelu": lambda a, approximate="none": tf.nn.gelu(a, approximate=approximate == "tanh"),
        "leaky_relu": lambda a, negative_slope=0.01: tf.nn.leaky_relu(a, alpha=negative_slope),
        "maximum": tf.maximum, "minimum": tf.minimum, "atan2": tf.math.atan2, "fmod": tf.truncatemod,
        "remainder": tf.math.floormod, "where": lambda condition, a, b: tf.where(tf.cast(condition, tf.bool), a, b),
        "amax": axis_reduction(tf.reduce_max), "amin": axis_reduction(tf.reduce_min),
        "logsumexp": lambda a, dim, keepdim=False: tf.reduce_logsumexp(a, axis=dim, keepdims=keepdim),
        "softmax": lambda a, dim: tf.nn.softmax(a, axis=dim), "log_softmax": lambda a, dim: tf.nn.log_softmax(a, axis=dim),
        "cumsum": lambda a, dim: tf.math.cumsum(a, axis=dim),
        "cumprod": lambda a, dim: tf.math.cumprod(a, axis=dim), "prod": axis_reduction(tf.reduce_prod),
        "norm": lambda a, p=2, dim=None, keepdim=False: tf.norm(a, ord={2: "euclidean", "inf": np.inf}.get(p, p),
                                                              axis=dim, keepdims=keepdim),
        "masked_fill": lambda a, mask, value: tf.where(tf.cast(mask, tf.bool), tf.cast(value, a.dtype), a),
        "take": lambda a, index: tf.gather(tf.reshape(a, [-1]), index),
        "outer": lambda a, b: tf.tensordot(a, b, axes=0), "dot": lambda a, b: tf.tensordot(a, b, axes=1),
        "trace": tf.linalg.trace,
        "diag": lambda a, diagonal=0: (tf.linalg.diag if len(a.shape) == 1 else tf.linalg.diag_part)(a, k=diagonal),
        "triu": lambda a, diagonal=0: tf.experimental.numpy.triu(a, diagonal),
        "tril": lambda a, diagonal=0: tf.experimental.numpy.tril(a, diagonal),
        "cat": lambda *arrays, dim=0: tf.concat(arrays, axis=dim),
        "stack": lambda *arrays, dim=0: tf.stack(arrays, axis=dim),
        "inv": tf.linalg.inv, "det": tf.linalg.det, "solve": _solve,
        "gt": tf.greater, "lt": tf.less, "ge": tf.greater_equal, "le": tf.less_equal, "eq": tf.equal,
        "ne": tf.not_equal,
        "clamp": lambda a, min=None, max=None: tf.clip_by_value(
            a, -float("inf") if min is None else min, float("inf") if max is None else max),
    }


def _index_of(function):
    """argmax or argmin as int64, over the flattened operand without dim, with keepdim along one."""
    def index(a, dim=None, keepdim=False):
        if dim is None:
            return function(tf.reshape(a, [-1]), output_type=tf.int64)
        found = function(a, axis=dim, output_type=tf.int64)
        return tf.expand_dims(found, dim) if keepdim else found
    return index


def _solve(a, b):
    """tf.linalg.solve takes a matrix right-hand side; the vocabulary's vector b is its one column."""
    if len(b.shape) == len(a.shape) - 1:
        return tf.linalg.solve(a, b[..., None])[..., 0]
    return tf.linalg.solve(a, b)


def _matmul(a, b):
    """NumPy's matmul for the 1-d operands cases may use: tf.linalg.matmul takes matrices only."""
    if len(a.shape) == 1 and len(b.shape) == 1:
        return tf.tensordot(a, b, 1)
    if len(a.shape) == 1:
        return tf.linalg.matvec(b, a, transpose_a=True)
    if len(b.shape) == 1:
        return tf.linalg.matvec(a, b)
    return tf.linalg.matmul(a, b)


ERRORS = [
    (ValueError, r"custom_gradient function expected to return \d+ gradients", "custom_grad_count"),
    (ValueError, r"(?i)incompatible shapes|must have the same shape|shapes must be equal", "grad_shape_mismatch"),
]


class CountMismatchRefused(RuntimeError):
    """TensorFlow does not check the number of output_gradients; a mismatch crashed the process (SIGSEGV)."""


class TensorFlowAdapter(FunctionalAdapter):
    name = "tensorflow"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    capabilities = frozenset({"grad", "create_graph", "detach", "allow_unused", "materialize_grads", "custom_function",
                              "custom_multiple_outputs"})
    # tf.math has none of these; tf.nn.elu has no alpha
    fuzz_tolerates = {"unused_input_gives_none": "grad_api/unused-input.yaml",
                      "custom_grad_shape_unchecked": "custom/wrong-gradient-shape-raises.yaml",
                      "op:leaky_relu": "derivatives/leaky-relu.yaml", "op:gelu": "derivatives/gelu.yaml"}
    lacks_ops = {**dict.fromkeys(("log2", "log10", "trunc", "hypot", "copysign", "lerp"),
                                 "no such function in tf or tf.math"), "elu": "tf.nn.elu has no alpha",
                 **dict.fromkeys(("var", "std"), "reduce_variance and reduce_std have no correction"),
                 "fmod": "tf.truncatemod has no registered gradient (LookupError: no entry for TruncateMod)"}
    errors = ERRORS

    def __init__(self, device: str, dtype: str):
        super().__init__(device, dtype)
        self.ops = _ops()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if tf is not None else "TensorFlow is not installed (pip install gradspec[tensorflow])"

    @classmethod
    def version(cls) -> str:
        return tf.__version__ if tf is not None else "not installed"

    def array(self, value: np.ndarray, dtype: str) -> Any:
        return tf.constant(np.asarray(value, dtype=dtype))

    def numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def stop_gradient(self, array: Any) -> Any:
        return tf.stop_gradient(array)

    def vjp(self, function, primals, cotangents, materialize):
        with tf.GradientTape() as tape:
            tape.watch(primals)
            targets = function(*primals)
        if len(cotangents) != len(targets):
            # Not an emulated check: the call is refused because TensorFlow would crash the process.
            raise CountMismatchRefused(f"{len(cotangents)} output_gradients for {len(targets)} targets: TensorFlow "
                                       "does not check this and crashed the process, so the adapter does not call it")
        unconnected = tf.UnconnectedGradients.ZERO if materialize else tf.UnconnectedGradients.NONE
        return tape.gradient(targets, primals, output_gradients=cotangents, unconnected_gradients=unconnected)

    def custom_vjp(self, program):
        """tf.custom_gradient: the gradient function closes over the forward's saved values."""
        single = len(program.definition.outputs) == 1

        @tf.custom_gradient
        def function(*inputs):
            outputs, saved = program.forward(*inputs)

            def gradient(*upstream):
                returned = program.backward(saved, upstream)
                return returned[0] if len(returned) == 1 else list(returned)
            return (outputs[0] if single else list(outputs)), gradient
        return function
