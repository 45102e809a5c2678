"""The JAX adapter: `jax.vjp` through gradspec's recording layer, on CPU, in float64 and float32.

JAX differentiates functions, so cases run through `gradspec.functional`: `grad` is
`jax.vjp` of the recorded program, higher order is `jax.vjp` inside a function that
`jax.vjp` differentiates, `detach` is `jax.lax.stop_gradient`. Unused inputs get zeros
(JAX cannot tell them apart), which is what `materialize_grads` asks for; there is no
`.grad`, no hooks, no grad modes, no graph to free and no in-place operation.

Importing this module turns on `jax_enable_x64` for the process, since float64 cases
need it; without it JAX silently computes in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradspec.functional import FunctionalAdapter
from gradspec.numpy_style import numpy_style

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - exercised only where JAX is absent
    jax = jnp = None
else:
    jax.config.update("jax_enable_x64", True)

# JAX's own checks of a VJP's cotangents.
ERRORS = [
    (ValueError, r"unexpected tree structure", "grad_count_mismatch"),
    (ValueError, r"unexpected JAX type \(e\.g\. shape/dtype\) for argument to VJP function", "grad_shape_mismatch"),
    (TypeError, r"Custom VJP bwd rule must produce .* a tuple of length equal to the number of arguments",
     "custom_grad_count"),
    (ValueError, r"Custom VJP bwd rule must produce an output with the same type .* shapes do not match",
     "custom_grad_shape"),
]


class JaxAdapter(FunctionalAdapter):
    name = "jax"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    # custom_vjp: several outputs, and higher order through a backward of jnp steps; nothing of ctx's options
    capabilities = frozenset({"grad", "create_graph", "detach", "materialize_grads", "view_ops", "index_ops",
                              "integer_tensors", "custom_function", "custom_multiple_outputs"})
    lacks_ops = {"lerp": "jax.numpy has no lerp"}
    errors = ERRORS

    def __init__(self, device: str, dtype: str):
        super().__init__(device, dtype)
        # jax.numpy under NumPy's names; JAX's own activations and functional scatters; arrays are immutable
        self.ops = numpy_style(jnp, relu=jax.nn.relu, sigmoid=jax.nn.sigmoid, clone=lambda a: a, **_scatters(), **_nn())

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if jax is not None else "JAX is not installed (pip install gradspec[jax])"

    @classmethod
    def version(cls) -> str:
        return jax.__version__ if jax is not None else "not installed"

    def array(self, value: np.ndarray, dtype: str) -> Any:
        return jnp.asarray(value, dtype=dtype)

    def numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def stop_gradient(self, array: Any) -> Any:
        return jax.lax.stop_gradient(array)

    def vjp(self, function, primals, cotangents, materialize):
        _, pullback = jax.vjp(lambda *xs: list(function(*xs)), *primals)
        return list(pullback(list(cotangents)))

    def custom_vjp(self, program):
        """jax.custom_vjp: the forward's saved values are the residuals; None in what backward returns is a zero."""
        single = len(program.definition.outputs) == 1

        def forward(*inputs):
            outputs, saved = program.forward(*inputs)
            return (outputs[0] if single else tuple(outputs)), saved

        function = jax.custom_vjp(lambda *inputs: forward(*inputs)[0])
        function.defvjp(forward, lambda saved, cotangents: tuple(
            program.backward(saved, (cotangents,) if single else tuple(cotangents))))
        return function


def _scatters() -> dict:
    """scatter, scatter_add and index_add through JAX's functional updates (x.at[...].set / .add)."""
    def positions(index, dim):  # a full coordinate per element of index, index itself along dim
        coordinates = list(jnp.indices(index.shape))
        coordinates[dim % index.ndim] = index
        return tuple(coordinates)

    return {
        "scatter": lambda a, index, src, dim=0: a.at[positions(index, dim)].set(src),
        "scatter_add": lambda a, index, src, dim=0: a.at[positions(index, dim)].add(src),
        "index_add": lambda a, index, src, dim=0: a.at[(slice(None),) * (dim % a.ndim) + (index,)].add(src),
    }


def _nn() -> dict:
    """The activations and special functions JAX keeps in jax.nn, jax.lax and jax.scipy.special."""
    return {
        "softplus": jax.nn.softplus, "silu": jax.nn.silu,
        "gelu": lambda a, approximate="none": jax.nn.gelu(a, approximate=approximate == "tanh"),
        "leaky_relu": lambda a, negative_slope=0.01: jax.nn.leaky_relu(a, negative_slope),
        "elu": lambda a, alpha=1.0: jax.nn.elu(a, alpha), "rsqrt": jax.lax.rsqrt,
        "erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc,
        "logsumexp": lambda a, dim, keepdim=False: jax.nn.logsumexp(a, axis=dim, keepdims=keepdim),
        "softmax": lambda a, dim: jax.nn.softmax(a, axis=dim),
        "log_softmax": lambda a, dim: jax.nn.log_softmax(a, axis=dim),
    }
