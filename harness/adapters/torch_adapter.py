"""The PyTorch adapter, on CPU and CUDA, in float64 and float32.

torch is imported lazily: without it the adapter reports itself unavailable and its
cases are skipped with that reason, never an import error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import contracts
from ..adapter import Adapter

try:
    import torch
except ImportError:  # pragma: no cover - exercised only where torch is absent
    torch = None

_DTYPES = {"float64": "float64", "float32": "float32", "int64": "int64"}

# Exceptions by type and message pattern; the messages are PyTorch's (2.1 to 2.13).
_ERRORS = [
    (RuntimeError, r"backward through the graph a second time", "freed_graph"),
    (RuntimeError, r"does not require grad and does not have a grad_fn", "no_grad_fn"),
    (RuntimeError, r"differentiated Tensors does not require grad", "not_requires_grad"),
    (RuntimeError, r"can't retain_grad on Tensor that has requires_grad=False", "not_requires_grad"),
    (RuntimeError, r"cannot register a hook on a tensor that doesn't require gradient", "not_requires_grad"),
    (RuntimeError, r"grad can be implicitly created only for scalar outputs", "nonscalar_implicit"),
    (RuntimeError, r"appears to not have been used in the graph", "unused_input"),
    (RuntimeError, r"Mismatch in shape: grad_output", "grad_shape_mismatch"),
    (RuntimeError, r"got \d+ tensors and \d+ gradients", "grad_count_mismatch"),
    (ValueError, r"Expected allow_unused to be True", "invalid_argument"),
    (RuntimeError, r"modified by an inplace operation", "inplace_modified"),
    (RuntimeError, r"leaf Variable that requires grad is being used in an in-place operation", "leaf_inplace"),
    (RuntimeError, r"only change requires_grad flags of leaf variables", "nonleaf_requires_grad"),
    (RuntimeError, r"(?i)only Tensors of floating point", "integer_requires_grad"),
    (RuntimeError, r"has changed the size of value", "hook_shape"),
    (RuntimeError, r"post accumulate grad hooks cannot be registered on non-leaf tensors", "post_accumulate_nonleaf"),
]
_WARNINGS = [
    (UserWarning, r"\.grad attribute of a Tensor that is not a leaf Tensor is being accessed", "nonleaf_grad_access"),
    (UserWarning, r"create_graph=True will create a reference cycle", "create_graph_cycle"),
]

_UNARY = {"neg": "neg", "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tanh": "tanh",
          "sigmoid": "sigmoid", "relu": "relu", "abs": "abs", "sqrt": "sqrt", "clone": "clone", "detach": "detach"}


def _reduce(method: str):
    def reduce(a, dim=None, keepdim=False):
        return getattr(a, method)() if dim is None else getattr(a, method)(dim, keepdim=keepdim)
    return reduce


_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "matmul": lambda a, b: a @ b,
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "max": lambda a: a.max(),
    "transpose": lambda a: a.t(),
    "reshape": lambda a, shape: a.reshape(tuple(shape)),
    **{name: (lambda method: lambda a: getattr(a, method)())(method) for name, method in _UNARY.items()},
}
_INPLACE = {"add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_"}


class TorchAdapter(Adapter):
    name = "torch"
    devices = ("cpu", "cuda")
    dtypes = ("float64", "float32")
    capabilities = frozenset(contracts.capabilities())  # PyTorch is the model: it has them all

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if torch is None:
            return "torch is not installed (pip install torch==2.13.0, or gradspec[torch])"
        return None

    @classmethod
    def device_unavailable_reason(cls, device: str) -> str | None:
        if device == "cuda" and not torch.cuda.is_available():
            return "no CUDA device here (torch.cuda.is_available() is False)"
        return None

    @classmethod
    def version(cls) -> str:
        return torch.__version__ if torch is not None else "not installed"

    # -- tensors and operations --------------------------------------------------

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Any:
        return torch.tensor(value.tolist(), dtype=getattr(torch, _DTYPES[dtype]), device=self.device,
                            requires_grad=requires_grad)

    def like(self, value: np.ndarray, reference: Any) -> Any:
        return torch.as_tensor(value, dtype=reference.dtype, device=reference.device)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        # A copy: a view would change under later in-place accumulation into .grad.
        return tensor.detach().cpu().numpy().copy()

    def dtype_name(self, tensor: Any) -> str:
        return str(tensor.dtype).removeprefix("torch.")

    def apply(self, op: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        return _OPS[op](*args, **kwargs)

    def apply_inplace(self, op: str, target: Any, operand: Any) -> Any:
        return getattr(target, _INPLACE[op])(operand)

    # -- autograd ----------------------------------------------------------------

    def backward(self, output, gradient, retain_graph, create_graph, inputs) -> None:
        kwargs = _given(gradient=gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)
        output.backward(**kwargs)

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
        kwargs = _given(grad_outputs=grad_outputs, retain_graph=retain_graph, create_graph=create_graph,
                        allow_unused=allow_unused, materialize_grads=materialize_grads)
        return torch.autograd.grad(list(outputs), list(inputs), **kwargs)

    def read_grad(self, tensor):
        return tensor.grad

    def set_grad(self, tensor, value) -> None:
        tensor.grad = value

    def zero_grad(self, tensor) -> None:
        tensor.grad.zero_()

    def retain_grad(self, tensor) -> None:
        tensor.retain_grad()

    def set_requires_grad(self, tensor, flag: bool) -> None:
        tensor.requires_grad_(flag)

    def requires_grad(self, tensor) -> bool:
        return tensor.requires_grad

    def is_leaf(self, tensor) -> bool:
        return tensor.is_leaf

    def has_grad_fn(self, tensor) -> bool:
        return tensor.grad_fn is not None

    def register_hook(self, tensor, hook):
        return tensor.register_hook(hook)

    def register_post_accumulate_grad_hook(self, tensor, hook):
        return tensor.register_post_accumulate_grad_hook(hook)

    def remove_hook(self, handle) -> None:
        handle.remove()

    def grad_mode(self, enabled: bool):
        return torch.set_grad_enabled(enabled)

    # -- errors ------------------------------------------------------------------

    def classify(self, error: BaseException) -> str | None:
        return _match(_ERRORS, error)

    def classify_warning(self, warning: Warning) -> str | None:
        return _match(_WARNINGS, warning)


def _given(**kwargs: Any) -> dict[str, Any]:
    """Only the arguments the case gave, so that torch's own defaults are what is tested."""
    return {key: value for key, value in kwargs.items() if value is not None}


def _match(table, error) -> str | None:
    for kind_of_error, pattern, kind in table:
        if isinstance(error, kind_of_error) and re.search(pattern, str(error)):
            return kind
    return None
