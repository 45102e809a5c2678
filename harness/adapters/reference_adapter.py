"""The adapter for gradspec's own reference engine (reference_engine/), on CPU in float64 and float32."""

from __future__ import annotations

from typing import Any

import numpy as np
from gradspec import contracts
from gradspec import reference_engine as engine
from gradspec.adapters.torch_like import TorchLikeAdapter

# The engine raises one exception class per situation, so types alone classify them.
ERRORS = [
    (engine.FreedGraphError, "", "freed_graph"),
    (engine.NoGradFnError, "", "no_grad_fn"),
    (engine.NotRequiresGradError, "", "not_requires_grad"),
    (engine.NonScalarImplicitError, "", "nonscalar_implicit"),
    (engine.UnusedInputError, "", "unused_input"),
    (engine.GradShapeMismatchError, "", "grad_shape_mismatch"),
    (engine.GradCountMismatchError, "", "grad_count_mismatch"),
    (engine.InvalidArgumentError, "", "invalid_argument"),
    (engine.InplaceModifiedError, "", "inplace_modified"),
    (engine.LeafInplaceError, "", "leaf_inplace"),
    (engine.NonLeafRequiresGradError, "", "nonleaf_requires_grad"),
    (engine.IntegerRequiresGradError, "", "integer_requires_grad"),
    (engine.HookShapeError, "", "hook_shape"),
    (engine.PostAccumulateNonLeafError, "", "post_accumulate_nonleaf"),
    (engine.MultiOutputViewInplaceError, "", "multi_output_view_inplace"),
    (engine.NoGradViewInplaceError, "", "no_grad_view_inplace"),
    (engine.InferenceTensorSavedError, "", "inference_tensor_saved"),
    (engine.InferenceTensorInplaceError, "", "inference_tensor_inplace"),
    (engine.CustomGradCountError, "", "custom_grad_count"),
    (engine.CustomGradShapeError, "", "custom_grad_shape"),
    (engine.OnceDifferentiableError, "", "once_differentiable"),
    (engine.PackHookInplaceError, "", "pack_hook_inplace"),
    (engine.OverlappingInplaceError, "", "overlapping_inplace"),
    (engine.PostAccumulateReturnedError, "", "post_accumulate_returned"),
]
WARNINGS = [(engine.NonLeafGradAccessWarning, "", "nonleaf_grad_access")]


class ReferenceAdapter(TorchLikeAdapter):
    name = "reference"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    # It implements the whole rule book and follows PyTorch's kink conventions, but not every PyTorch choice: its
    # detach_() moves the version counter (MODE-8) and its views under no_grad do not require grad (VIEW-9).
    capabilities = frozenset(contracts.capabilities()) - {"torch_detach_inplace", "torch_no_grad_views",
                                                          "torch_leaf_requires_grad_at_pass"}
    errors, warnings = ERRORS, WARNINGS

    @classmethod
    def version(cls) -> str:
        from gradspec import __version__
        return __version__

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Any:
        return engine.tensor(value, requires_grad=requires_grad, dtype=dtype)

    def like(self, value: np.ndarray, reference: Any) -> Any:
        return engine.tensor(value, dtype=reference.dtype)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor.data, copy=True)

    def dtype_name(self, tensor: Any) -> str:
        return tensor.dtype.name

    def apply(self, op, args, kwargs):
        if op == "data":
            return args[0].data_alias()  # the engine's .data is its numpy array; data_alias is PyTorch's .data
        return super().apply(op, args, kwargs)

    def grad_function(self):
        return engine.grad

    def grad_modes(self):
        return engine

    def functional(self):
        return engine.functional

    def backward_function(self):
        return engine.backward

    def saved_tensors_hooks_class(self):
        return engine.saved_tensors_hooks

    def autograd_function(self):
        return engine.Function, engine.once_differentiable
