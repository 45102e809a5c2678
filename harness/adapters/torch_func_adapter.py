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
                              "integer_tensors", "custom_function", "custom_multiple_outputs"})
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

    def custom_vjp(self, program):
        """An autograd.Function in the form torch.func transforms: forward without ctx and setup_context. Saved
        inputs are saved as inputs; other saved values are returned as extra outputs, marked non-differentiable,
        as torch.func asks of intermediates; the function the case calls returns only its own outputs."""
        definition = program.definition
        count = len(definition.outputs)
        kept = [i for i, name in enumerate(definition.save) if name not in definition.inputs]  # computed ones

        def forward(*inputs):
            outputs, saved = program.forward(*inputs)
            return (*outputs, *(saved[i] for i in kept))

        def setup_context(ctx, inputs, output):
            extra = iter(output[count:])
            by_input = dict(zip(definition.inputs, inputs, strict=True))
            ctx.save_for_backward(*(by_input[name] if name in by_input else next(extra) for name in definition.save))
            ctx.mark_non_differentiable(*output[count:])

        def backward(ctx, *grads):
            for _ in range(program.definition.reads_saved - 1):  # every read unpacks (SAVED-2)
                ctx.saved_tensors  # noqa: B018 - read for its effect
            returned = program.backward(ctx.saved_tensors, grads[:count])
            return returned[0] if len(returned) == 1 else returned

        function = type(program.name, (torch.autograd.Function,), {
            "forward": staticmethod(forward), "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward)})

        def call(*inputs):
            outputs = function.apply(*inputs)[:count]
            return outputs[0] if count == 1 else tuple(outputs)
        return call
