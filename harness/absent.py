"""PyTorch concepts an engine may have no counterpart for, each raising `Unsupported` until an adapter maps it.

An adapter inherits from `Absent` before `Adapter` and overrides what its engine has.
The capabilities it declares keep cases from reaching the rest: a case needing one is
not applicable. Reaching one anyway (an adapter declaring more than it maps) is an
unclassified error that names the missing concept, never a silent emulation.
"""

from __future__ import annotations


class Unsupported(NotImplementedError):
    """A PyTorch concept this engine has no counterpart for."""


class Absent:
    name: str

    def _absent(self, what: str):
        raise Unsupported(f"the {self.name} engine has no {what}")

    def apply_inplace(self, op, target, operand):
        self._absent("in-place operations")

    def backward(self, output, gradient, retain_graph, create_graph, inputs):
        self._absent("backward() accumulating into .grad")

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
        self._absent("functional grad (gradients returned without .grad)")

    def read_grad(self, tensor):
        self._absent(".grad")

    def set_grad(self, tensor, value):
        self._absent(".grad")

    def zero_grad(self, tensor):
        self._absent(".grad")

    def retain_grad(self, tensor):
        self._absent("retain_grad")

    def set_requires_grad(self, tensor, flag):
        self._absent("requires_grad flags")

    def requires_grad(self, tensor):
        self._absent("requires_grad flags")

    def is_leaf(self, tensor):
        self._absent("leaf flag")

    def has_grad_fn(self, tensor):
        self._absent("grad_fn")

    def register_hook(self, tensor, hook):
        self._absent("tensor hooks")

    def register_post_accumulate_grad_hook(self, tensor, hook):
        self._absent("post-accumulate-grad hooks")

    def remove_hook(self, handle):
        self._absent("hook handles")

    def no_grad(self):
        self._absent("grad mode")

    def enable_grad(self):
        self._absent("grad mode")

    def set_grad_enabled(self, mode):
        self._absent("grad mode")
