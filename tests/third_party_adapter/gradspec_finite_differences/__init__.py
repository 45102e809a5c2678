"""A toy engine: NumPy forward, gradients by central differences, plugged into gradspec from outside.

It builds on gradspec's recording layer (gradspec.functional) like the JAX adapter does:
its `vjp` perturbs each primal element by ±h and contracts the output differences with
the cotangents. It has first derivatives only (a difference of differences is not
offered), so it declares `grad` and `detach`, nothing else.
"""

from __future__ import annotations

import numpy as np
from gradspec.functional import FunctionalAdapter, numpy_style_ops

STEP = 1e-6


class FiniteDifferenceAdapter(FunctionalAdapter):
    name = "finite-differences"
    devices = ("cpu",)
    dtypes = ("float64",)  # central differences in float32 are too coarse for gradspec's tolerances
    capabilities = frozenset({"grad", "detach"})
    ops = numpy_style_ops(np, relu=lambda a: np.maximum(a, 0.0), sigmoid=lambda a: 1.0 / (1.0 + np.exp(-a)))

    @classmethod
    def version(cls) -> str:
        return "0.1.0"

    def array(self, value, dtype):
        return np.asarray(value, dtype=dtype)

    def numpy(self, array):
        return np.asarray(array)

    def stop_gradient(self, array):
        return np.array(array, copy=True)  # values carry no derivative information here

    def vjp(self, function, primals, cotangents, materialize):
        results = []
        for index, primal in enumerate(primals):
            gradient = np.zeros_like(primal)
            for element in np.ndindex(primal.shape):
                def shifted(step, index=index, element=element):
                    points = [np.array(p, copy=True) for p in primals]
                    points[index][element] += step
                    return function(*points)
                plus, minus = shifted(STEP), shifted(-STEP)
                gradient[element] = sum(np.sum(c * (p - m)) for c, p, m in zip(cotangents, plus, minus, strict=True))
            results.append(gradient / (2 * STEP))
        return results
