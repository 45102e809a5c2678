"""A toy engine: NumPy forward, gradients by complex-step differences, plugged into gradspec from outside.

It builds on gradspec's recording layer (gradspec.functional) like the JAX adapter does:
its `vjp` perturbs each primal element by i*h and contracts the imaginary parts of the
outputs with the cotangents. Unlike a central difference (relative error ~1e-10, which
gradspec's float64 tolerance rejects), the complex step subtracts nothing, so its first
derivatives of analytic ops are exact to rounding. It has first derivatives only, so it
declares `grad` and `detach`, nothing else.
"""

from __future__ import annotations

import numpy as np
from gradspec.functional import FunctionalAdapter, numpy_style_ops

STEP = 1e-30


class FiniteDifferenceAdapter(FunctionalAdapter):
    name = "finite-differences"
    devices = ("cpu",)
    dtypes = ("float64",)  # central differences in float32 are too coarse for gradspec's tolerances
    capabilities = frozenset({"grad", "detach"})
    errors = [(ValueError, r"cotangents for", "grad_count_mismatch")]
    ops = {**numpy_style_ops(np, relu=lambda a: np.where(np.real(a) > 0, a, 0.0),
                             sigmoid=lambda a: 1.0 / (1.0 + np.exp(-a))),
           "abs": lambda a: np.where(np.real(a) < 0, -a, a),  # |x| continued analytically on each side
           "max": lambda a: a.flat[np.argmax(np.real(a))]}

    @classmethod
    def version(cls) -> str:
        return "0.1.0"

    def array(self, value, dtype):
        return np.asarray(value, dtype=dtype)

    def numpy(self, array):
        return np.asarray(array)

    def stop_gradient(self, array):
        return np.array(np.real(array), copy=True)  # drops the perturbation: no derivative flows

    def vjp(self, function, primals, cotangents, materialize):
        results = []
        for index, primal in enumerate(primals):
            gradient = np.zeros_like(primal)
            for element in np.ndindex(primal.shape):
                points = [np.array(p, dtype=complex) for p in primals]
                points[index][element] += STEP * 1j
                outputs = function(*points)
                if len(cotangents) != len(outputs):
                    raise ValueError(f"{len(cotangents)} cotangents for {len(outputs)} outputs")
                gradient[element] = sum(np.sum(c * np.imag(o)) for c, o in zip(cotangents, outputs, strict=True))
            results.append(gradient / STEP)
        return results
