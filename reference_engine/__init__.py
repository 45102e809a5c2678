"""gradspec's reference engine: reverse-mode autodiff on numpy, written from spec/semantics.md.

A second, independent implementation of the rule book. It has a PyTorch-like surface
(Tensor, backward, grad, hooks, grad modes, in-place updates) and knows nothing of the
gradspec harness.
"""

from . import functional, linalg
from .engine import backward, grad
from .errors import (
                     AutogradError,
                     CustomGradCountError,
                     CustomGradShapeError,
                     FreedGraphError,
                     GradCountMismatchError,
                     GradShapeMismatchError,
                     HookShapeError,
                     InferenceTensorInplaceError,
                     InferenceTensorSavedError,
                     InplaceModifiedError,
                     IntegerRequiresGradError,
                     InvalidArgumentError,
                     LeafInplaceError,
                     MultiOutputViewInplaceError,
                     NoGradFnError,
                     NoGradViewInplaceError,
                     NonLeafGradAccessWarning,
                     NonLeafRequiresGradError,
                     NonScalarImplicitError,
                     NotRequiresGradError,
                     OnceDifferentiableError,
                     OverlappingInplaceError,
                     PackHookInplaceError,
                     PostAccumulateNonLeafError,
                     PostAccumulateReturnedError,
                     UnusedInputError,
)
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled
from .joining import cat, stack
from .saved_hooks import saved_tensors_hooks
from .tensor import Tensor, tensor

__all__ = [
    "Tensor", "tensor", "cat", "stack", "linalg", "backward", "grad", "functional",
    "Function", "FunctionCtx", "once_differentiable", "CustomGradCountError", "CustomGradShapeError",
    "OnceDifferentiableError", "OverlappingInplaceError", "PackHookInplaceError", "saved_tensors_hooks",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode", "is_inference_mode_enabled",
    "InferenceTensorSavedError", "InferenceTensorInplaceError",
    "AutogradError", "FreedGraphError", "GradCountMismatchError", "GradShapeMismatchError", "HookShapeError",
    "InplaceModifiedError", "IntegerRequiresGradError", "InvalidArgumentError", "LeafInplaceError",
    "MultiOutputViewInplaceError", "NoGradFnError", "NoGradViewInplaceError",
    "NonLeafRequiresGradError", "NonScalarImplicitError", "NotRequiresGradError", "PostAccumulateNonLeafError",
    "PostAccumulateReturnedError",
    "UnusedInputError", "NonLeafGradAccessWarning",
]
