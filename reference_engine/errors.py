"""The engine's exceptions, one class per situation the rule book names, so callers can tell them apart by type."""


class AutogradError(RuntimeError):
    """Base of every error the reference engine raises on purpose."""


class FreedGraphError(AutogradError):
    """LIFE-1: a backward pass needed values an earlier pass freed."""


class NoGradFnError(AutogradError):
    """HIGHER-3, GRAD-7: an output to differentiate has no graph."""


class NotRequiresGradError(AutogradError):
    """GRAD-6, GRAD-11, RETAIN-4, HOOK-7: the tensor does not require grad."""


class NonScalarImplicitError(AutogradError):
    """VJP-1: an implicit output gradient for an output with more than one element."""


class UnusedInputError(AutogradError):
    """GRAD-3: an input the outputs do not depend on."""


class GradShapeMismatchError(AutogradError):
    """VJP-3: an output gradient of another shape than its output."""


class GradCountMismatchError(AutogradError):
    """VJP-4: as many output gradients as outputs are needed."""


class InvalidArgumentError(AutogradError, ValueError):
    """GRAD-5: arguments that contradict each other."""


class InplaceModifiedError(AutogradError):
    """INPLACE-1: a saved value was modified in place after it was saved."""


class LeafInplaceError(AutogradError):
    """INPLACE-3: an in-place update of a leaf that requires grad, with grad mode on."""


class NonLeafRequiresGradError(AutogradError):
    """LEAF-4: requires_grad switched off on a non-leaf."""


class IntegerRequiresGradError(AutogradError):
    """LEAF-3: only floating-point tensors can require grad."""


class HookShapeError(AutogradError):
    """HOOK-8: a hook returned a gradient of another shape."""


class PostAccumulateNonLeafError(AutogradError):
    """HOOK-12: post-accumulate-grad hooks belong to leaves."""


class PostAccumulateReturnedError(AutogradError):
    """PASS-12: a post-accumulate-grad hook returned a value; it may only change .grad itself."""


class NonLeafGradAccessWarning(UserWarning):
    """RETAIN-1: the .grad of a non-leaf that does not retain its gradient was read."""


class MultiOutputViewInplaceError(AutogradError):
    """VIEW-7: an in-place update of one output of a function that returns several views (unbind, split, chunk)."""


class NoGradViewInplaceError(AutogradError):
    """VIEW-8: an in-place update, with grad mode on, of a view made under no_grad."""


class InferenceTensorSavedError(AutogradError):
    """MODE-10: a recorded operation would save an inference tensor for backward."""


class InferenceTensorInplaceError(AutogradError):
    """MODE-11: an in-place update of an inference tensor, or of a view of one, outside inference_mode."""


class CustomGradCountError(AutogradError):
    """CUSTOM-3: a custom function's backward returned another number of gradients than it has inputs."""


class CustomGradShapeError(AutogradError):
    """CUSTOM-4: a custom function's backward returned a gradient that does not sum to its input's shape."""


class OnceDifferentiableError(AutogradError):
    """CUSTOM-11: a pass reached a gradient made by a backward marked once-differentiable."""


class OverlappingInplaceError(AutogradError):
    """VIEW-13: an in-place operation through a view whose positions share elements (expand's result)."""


class PackHookInplaceError(AutogradError):
    """SAVED-5: a saved-tensor pack hook modified the tensor it was given in place."""
