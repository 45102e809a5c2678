"""The PyTorch adapter, on CPU and CUDA, in float64 and float32, for every torch from 1.13 on.

torch is imported lazily: without it the adapter reports itself unavailable and its
cases are skipped with that reason, never an import error. What a release lacks
(materialize_grads and post-accumulate-grad hooks arrived in 2.1) is read from the
installed torch and left out of the capabilities, so those cases are not applicable
there instead of failing; spec/versions.yaml records which release brought what.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.adapters.torch_like import TorchLikeAdapter

try:
    import torch
except ImportError:  # pragma: no cover - exercised only where torch is absent
    torch = None

# Exceptions by type and message pattern; the messages are PyTorch's (2.1 to 2.13).
ERRORS = [
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
    (RuntimeError, r"[`']inputs[`'] argument to [`']?backward\(\)[`']? cannot be empty", "invalid_argument"),  # 2.0 quotes it so
    (RuntimeError, r"modified by an inplace operation", "inplace_modified"),
    (RuntimeError, r"leaf Variable that requires grad (is being|has been) used in an in-place operation", "leaf_inplace"),
    # detach_() on a tensor a node saved as an input (MODE-8)
    (RuntimeError, r"saved tensor that has been detached in-place", "inplace_modified"),
    (RuntimeError, r"output of a function that returns multiple views", "multi_output_view_inplace"),
    (RuntimeError, r"view was created in no_grad mode and is being modified inplace", "no_grad_view_inplace"),
    # inference_mode (MODE-10 to MODE-13)
    (RuntimeError, r"view was created in inference mode and is being modified inplace", "no_grad_view_inplace"),
    (RuntimeError, r"Inference tensors cannot be saved for backward", "inference_tensor_saved"),
    (RuntimeError, r"Inplace update to inference tensor outside InferenceMode", "inference_tensor_inplace"),
    (RuntimeError, r"only change requires_grad flags of leaf variables", "nonleaf_requires_grad"),
    (RuntimeError, r"(?i)only Tensors of floating point", "integer_requires_grad"),
    (RuntimeError, r"has changed the size of value", "hook_shape"),
    (RuntimeError, r"post accumulate grad hooks cannot be registered on non-leaf tensors", "post_accumulate_nonleaf"),
    (RuntimeError, r"returned an incorrect number of gradients", "custom_grad_count"),
    (RuntimeError, r"returned an invalid gradient at index \d+ - got", "custom_grad_shape"),
    (RuntimeError, r"trying to differentiate twice a function that was marked with @once_differentiable",
     "once_differentiable"),
    (RuntimeError, r"saved tensor pack hook is modifying its input in place", "pack_hook_inplace"),
    (RuntimeError, r"more than one element of the written-to tensor refers to a single memory location",
     "overlapping_inplace"),
    (RuntimeError, r"post accumulate grad hooks should return None", "post_accumulate_returned"),
]
WARNINGS = [
    (UserWarning, r"\.grad attribute of a Tensor that is not a leaf Tensor is being accessed", "nonleaf_grad_access"),
    (UserWarning, r"create_graph=True will create a reference cycle", "create_graph_cycle"),
]


def installed_capabilities() -> frozenset[str]:
    """PyTorch is the model, so it has every capability, less the APIs the installed release lacks and the
    choices that are other engines' (SAVED-6: PyTorch does not check the version of a packed value, on purpose)."""
    everything = frozenset(contracts.capabilities()) - {"saved_hooks_version_check"}
    if torch is None:
        return everything
    lacking = set()
    if "materialize_grads" not in inspect.signature(torch.autograd.grad).parameters:
        lacking.add("materialize_grads")
    if not hasattr(torch.Tensor, "register_post_accumulate_grad_hook"):
        lacking.add("post_accumulate_grad_hooks")
    return everything - lacking


class TorchAdapter(TorchLikeAdapter):
    name = "torch"
    devices = ("cpu", "cuda")
    dtypes = ("float64", "float32")
    capabilities = installed_capabilities()
    errors, warnings = ERRORS, WARNINGS

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
        return str(torch.__version__) if torch is not None else "not installed"  # TorchVersion is not a plain str

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Any:
        # A fresh numpy copy handed to torch: the leaf owns its memory, and this is twice as quick as
        # torch.tensor's generic path, which the fuzzer pays for every leaf of every graph.
        copy = np.array(value, dtype=dtype, order="C")
        return torch.from_numpy(copy).to(self.device).requires_grad_(requires_grad)

    def like(self, value: np.ndarray, reference: Any) -> Any:
        return torch.as_tensor(value, dtype=reference.dtype, device=reference.device)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        # As a user reads a result: detach, to the CPU, numpy; a copy, since a view would change under later
        # in-place accumulation into .grad. Nothing is repaired on the way: where torch's own reading fails (an
        # efficient zero tensor that escaped a double backward cannot be read as numpy, SHAPE-5), that failure
        # is torch's result.
        return tensor.detach().cpu().numpy().copy()

    def dtype_name(self, tensor: Any) -> str:
        return str(tensor.dtype).removeprefix("torch.")

    def grad_function(self):
        return torch.autograd.grad

    def grad_modes(self):
        return torch

    def functional(self):
        return torch.nn.functional

    def autograd_function(self):
        from torch.autograd.function import once_differentiable
        return torch.autograd.Function, once_differentiable
