"""The HIPS autograd adapter: `autograd.make_vjp` through gradspec's recording layer, on CPU.

HIPS autograd traces NumPy code and differentiates functions; cases run through
`gradspec.functional` as for JAX. `detach` is unboxing the value (autograd's
`stop_gradient` is not public; `getval` is what it uses). Unused inputs get zeros, with
autograd's own "Output seems independent of input" warning; there is no `.grad`, no
hooks, no grad modes, no graph to free and no in-place operation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradspec.functional import FunctionalAdapter
from gradspec.numpy_style import numpy_style

try:
    import autograd
    import autograd.numpy as anp
    from autograd.builtins import list as traced_list
    from autograd.builtins import tuple as traced_tuple
    from autograd.extend import defvjp_argnums, primitive
    from autograd.scipy import special
    from autograd.tracer import getval
    _MISSING = None
except ImportError as exc:  # pragma: no cover - exercised only where autograd (or scipy, for its erf) is absent
    autograd = None
    _MISSING = exc.name


def _norm(a, p=2, dim=None, keepdim=False):
    """autograd's linalg.norm is a matrix norm on 2-d operands without an axis: the vector norm reads them flat."""
    order = {"inf": np.inf}.get(p, p)
    if dim is not None:
        return anp.linalg.norm(a, order, axis=dim, keepdims=keepdim)
    flat = anp.linalg.norm(anp.reshape(a, (-1,)), order)
    return anp.reshape(flat, (1,) * anp.ndim(a)) if keepdim else flat


class AutogradAdapter(FunctionalAdapter):
    name = "autograd"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    # primitive + defvjp_argnums: one output, one VJP per argument (so another count is not expressible)
    capabilities = frozenset({"grad", "create_graph", "detach", "materialize_grads", "custom_function"})
    fuzz_tolerates = {"custom_grad_shape_unchecked": "custom/wrong-gradient-shape-raises.yaml",
                      "op:cumprod": "derivatives/cumprod.yaml", "op:norm": "derivatives/norm.yaml",
                      "op:prod": "derivatives/prod.yaml", "op:diag": "derivatives/diag.yaml",
                      "op:where": "derivatives/where-broadcast.yaml"}
    lacks_ops = {**dict.fromkeys(("softplus", "silu", "gelu", "leaky_relu", "elu", "rsqrt", "softmax", "log_softmax"),
                                 "autograd has no neural-network functions"), "lerp": "autograd.numpy has no lerp",
                 **dict.fromkeys(("copysign", "fmod"), "autograd.numpy has the function but no derivative "
                                                       "(NotImplementedError: VJP not defined)")}

    def __init__(self, device: str, dtype: str):
        super().__init__(device, dtype)
        # autograd.numpy under NumPy's names, erf and logsumexp from autograd.scipy.special; arrays are immutable
        self.ops = numpy_style(anp, special=special, clone=lambda a: a, norm=_norm)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if autograd is not None:
            return None
        if _MISSING == "scipy":  # autograd.scipy needs scipy, which autograd itself does not require
            return "HIPS autograd's scipy functions (erf) need scipy, which is not installed (pip install scipy)"
        return "HIPS autograd is not installed (pip install gradspec[autograd])"

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import version
        return version("autograd") if autograd is not None else "not installed"

    def array(self, value: np.ndarray, dtype: str) -> Any:
        return np.asarray(value, dtype=dtype)

    def numpy(self, array: Any) -> np.ndarray:
        return np.asarray(getval(array))

    def stop_gradient(self, array: Any) -> Any:
        return getval(array)

    def vjp(self, function, primals, cotangents, materialize):
        pullback, _ = autograd.make_vjp(lambda xs: traced_list(function(*xs)))(traced_tuple(primals))
        return list(pullback(list(cotangents)))

    def custom_vjp(self, program):
        """A primitive with defvjp_argnums: one VJP maker for every argument at once, so the case's backward runs
        once per pass; the forward runs again in the VJP maker for the values it saves."""
        function = primitive(lambda *inputs: program.forward(*inputs)[0][0])

        def vjp_maker(argnums, answer, inputs, kwargs):
            saved = program.forward(*inputs)[1]
            return lambda gradient: tuple(program.backward(saved, (gradient,))[i] for i in argnums)
        defvjp_argnums(function, vjp_maker)
        return function
