"""The torch.func adapter: PyTorch's functional transforms through gradspec's recording layer.

`torch.func.vjp` differentiates functions of plain tensors, the way JAX does, so cases
run through `gradspec.functional`: `grad` is `torch.func.vjp` of the recorded program,
higher order is `vjp` inside `vjp`, `detach` is `Tensor.detach`. Unused inputs get
zeros; there is no `.grad`, no hooks, no grad modes, no graph to free and no in-place
operation in this mode of use. Devices: CPU and CUDA, as for the torch adapter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradspec.adapters.torch_adapter import ERRORS as TORCH_ERRORS
from gradspec.adapters.torch_adapter import TorchAdapter, torch
from gradspec.adapters.torch_like import FUNCTIONAL_OPS, OPS, namespace_ops
from gradspec.functional import FunctionalAdapter

# torch.func checks a VJP's cotangents with messages of its own, besides autograd's.
ERRORS = [
    (RuntimeError, r"Expected pytree structure of cotangents to be the same", "grad_count_mismatch"),
    *TORCH_ERRORS,
]


class TorchFuncAdapter(FunctionalAdapter):
    name = "torch-func"
    devices = ("cpu", "cuda")
    dtypes = ("float64", "float32")
    capabilities = frozenset({"grad", "create_graph", "detach", "materialize_grads", "view_ops", "index_ops",
                              "integer_tensors"})
    errors = ERRORS
    # the torch adapter's table: plain tensor methods and torch.nn.functional, which torch.func transforms
    ops = {**OPS, **{name: (lambda *args, _name=name, **kwargs: getattr(torch.nn.functional, _name)(*args, **kwargs))
                     for name in FUNCTIONAL_OPS}, **(namespace_ops(torch) if torch is not None else {})}

    unavailable_reason = TorchAdapter.unavailable_reason
    device_unavailable_reason = TorchAdapter.device_unavailable_reason
    version = TorchAdapter.version

    def array(self, value: np.ndarray, dtype: str) -> Any:
        return torch.tensor(value, dtype=getattr(torch, dtype), device=self.device)

    def numpy(self, array: Any) -> np.ndarray:
        return array.detach().cpu().numpy(force=True)

    def stop_gradient(self, array: Any) -> Any:
        return array.detach()

    def vjp(self, function, primals, cotangents, materialize):
        _, pullback = torch.func.vjp(lambda *xs: list(function(*xs)), *primals)
        return list(pullback(list(cotangents)))
