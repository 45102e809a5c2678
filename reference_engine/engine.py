"""Reverse-mode execution: `backward` and `grad` over the recorded graph, in time linear in its size.

One pass finds the nodes reachable from the outputs; when only some inputs are wanted,
a second pass keeps the nodes that lead to them (so nodes off those paths never run, and
their hooks never fire, HOOK-11). Each node waits until every node that feeds it has run
(a count of dependencies, no recursion), so a tensor's hooks always run before those of
the tensors it came from (HOOK-6), and a leaf reached along many paths gets one summed
gradient (ACC-2, HOOK-5).

Without create_graph, gradients flow as plain numpy arrays and nothing is recorded. With
it, they flow as Tensors under grad mode, so the derivative rules record themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import grad_mode, ops
from .errors import (
    GradCountMismatchError,
    GradShapeMismatchError,
    HookShapeError,
    InvalidArgumentError,
    NoGradFnError,
    NonScalarImplicitError,
    NotRequiresGradError,
    PostAccumulateReturnedError,
    UnusedInputError,
)
from .function import CustomNode
from .graph import AccumulateGrad, Node
from .tensor import Tensor


def backward(output: Tensor | Sequence[Tensor], gradient: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Sequence[Tensor] | None = None, *,
             grad_tensors: Sequence[Tensor | None] | None = None) -> None:
    """output.backward(), or autograd.backward(outputs, grad_tensors): accumulate into the .grad of leaves (or only
    of `inputs`, GRAD-9), from one output or several in one pass."""
    several = isinstance(output, (list, tuple))
    outputs = list(output) if several else [output]
    given = grad_tensors if grad_tensors is not None else gradient
    if not several:
        gradients = [given]
    else:
        gradients = [None] * len(outputs) if given is None else _as_list(given)  # a bare tensor is one gradient
    if len(gradients) != len(outputs):
        raise GradCountMismatchError(f"got {len(outputs)} tensors and {len(gradients)} gradients")
    for index, root in enumerate(outputs):
        if not root.requires_grad:
            raise NoGradFnError(f"element {index} of tensors does not require grad and does not have a grad_fn")
    root_grads = [_root_gradient(o, g, i) for i, (o, g) in enumerate(zip(outputs, gradients, strict=True))]
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not inputs:
            raise InvalidArgumentError("`inputs` argument to `backward()` cannot be empty.")
        for tensor in inputs:
            if not tensor.requires_grad:
                raise NotRequiresGradError("can't retain_grad on Tensor that has requires_grad=False")
        for tensor in inputs:
            tensor.retain_grad()  # a listed non-leaf retains its gradient for good (GRAD-10); no-op on leaves
    _Pass(outputs, root_grads, retain_graph, create_graph, inputs, accumulate=True).run()


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Tensor | Sequence[Tensor | None] | None = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool | None = None,
         materialize_grads: bool = False) -> tuple[Tensor | None, ...]:
    """autograd.grad: the gradients of `outputs` with respect to `inputs`; writes no .grad (GRAD-1)."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    if materialize_grads and allow_unused is False:
        raise InvalidArgumentError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                                   "but got: allow_unused=False.")
    allow_unused = bool(allow_unused) or materialize_grads
    grad_outputs = [None] * len(outputs) if grad_outputs is None else _as_list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise GradCountMismatchError(f"grad requires one output gradient per output: got {len(outputs)} tensors "
                                     f"and {len(grad_outputs)} gradients")
    for index, output in enumerate(outputs):
        if not output.requires_grad:
            raise NoGradFnError(f"element {index} of tensors does not require grad and does not have a grad_fn")
    root_grads = [_root_gradient(o, g, i) for i, (o, g) in enumerate(zip(outputs, grad_outputs, strict=True))]
    for tensor in inputs:
        if not tensor.requires_grad:
            raise NotRequiresGradError("One of the differentiated Tensors does not require grad")
    one_pass = _Pass(outputs, root_grads, retain_graph, create_graph, inputs, accumulate=False)
    captured = one_pass.run()
    results = []
    for index, tensor in enumerate(inputs):
        result = captured.get(tensor._edge())
        if result is None and not allow_unused:
            raise UnusedInputError(f"The differentiated Tensor at index {index} appears to not have been used in "
                                   "the graph. Set allow_unused=True if this is the desired behavior.")
        if result is None and materialize_grads:  # GRAD-4; requires grad only with create_graph (HIGHER-3, GRAD-12)
            result = Tensor(np.zeros_like(tensor.data), requires_grad=create_graph)
        results.append(one_pass.handed_back(result) if result is not None else None)
    return tuple(results)


class _Pass:
    """One backward pass: find the nodes, keep those that lead to wanted inputs, run each when its inputs are in."""

    def __init__(self, roots, root_grads, retain_graph, create_graph, targets, accumulate):
        self.roots = [t._edge() for t in roots]
        self.root_grads = root_grads
        self.create_graph = bool(create_graph)
        self.retain_graph = self.create_graph if retain_graph is None else bool(retain_graph)  # LIFE-2
        self.targets = None if targets is None else {t._edge(): t for t in targets}
        self.accumulate = accumulate
        self.captured: dict[Any, Any] = {}
        # Without create_graph gradients flow as arrays; a user's tensor (an output gradient, a hook's result) that
        # reaches a result untouched is handed back as itself, as PyTorch does (HIGHER-3, HIGHER-10).
        self.supplied: dict[int, Tensor] = {}
        if not self.create_graph:
            for gradient in root_grads:
                self.supply(gradient)

    def supply(self, tensor: Tensor) -> None:
        if tensor.requires_grad:
            self.supplied[id(tensor.data)] = tensor

    def handed_back(self, result: Any) -> Tensor:
        """What grad returns for a captured gradient: the user's own tensor if it arrived untouched (HIGHER-10)."""
        user = self.supplied.get(id(result))
        if user is not None and user.data is result:
            return user
        if isinstance(result, np.ndarray) and result.base is not None and any(
                np.shares_memory(result, user.data) for user in self.supplied.values()):
            return Tensor(result, requires_grad=True)  # a view of the user's tensor (a rule that only reshapes), no node
        return _as_tensor(result)

    def run(self) -> dict:
        if self.targets is None:
            needed, dependencies = None, self.count_all()
        else:
            needed = self.prune(self.discover())
            dependencies = self.count(needed)
        waiting: dict[Any, Any] = {}  # gradients gathered so far for nodes that still wait for some
        for node, gradient in zip(self.roots, self.root_grads, strict=True):
            value = gradient if self.create_graph else gradient.data
            waiting[node] = value if node not in waiting else waiting[node] + value
        ready = [(node, waiting.pop(node)) for node in dict.fromkeys(self.roots) if dependencies[node] == 0]
        create_graph, release = self.create_graph, not self.retain_graph
        with grad_mode._Mode(create_graph):  # hooks and rules see grad mode == create_graph
            while ready:
                node, gradient = ready.pop()
                rules = input_grads = None
                if gradient is None:
                    pass  # nothing arrived along any path: the nodes it feeds only stop waiting for it
                elif (needed is None and type(node) is Node and not node.tensor_hooks and node.retained is None
                      and node.hooks_before is None and node.hooks_after is None):
                    # The common case, kept lean: each rule runs below, when its input's turn comes.
                    rules, attrs = node.rules, node.attrs
                    a, b, out = node.take_saved(create_graph, release)
                else:
                    input_grads = self.visit(node, gradient, needed)
                for index, child in enumerate(node.next_nodes):
                    if child is None or (needed is not None and child not in needed):
                        continue
                    if rules is not None:  # (in a plain pass, an input has a rule exactly when it has a node)
                        incoming = rules[index](gradient, a, b, out, attrs)
                    else:
                        incoming = input_grads[index] if input_grads is not None else None
                    gathered = waiting.pop(child, None)
                    if incoming is not None:
                        # `is not` for dtypes is cheap and equal dtypes are nearly always one object;
                        # _conform compares them properly
                        if incoming.shape != child.shape or incoming.dtype is not child.dtype:
                            incoming = _conform(incoming, child)
                        gathered = incoming if gathered is None else gathered + incoming
                    left = dependencies[child] - 1
                    if left:
                        dependencies[child] = left
                        if gathered is not None:
                            waiting[child] = gathered
                    else:
                        ready.append((child, gathered))
        return self.captured

    def count_all(self) -> dict:
        """For every node reachable from the roots, how many reachable nodes feed it (iteratively)."""
        dependencies = dict.fromkeys(self.roots, 0)
        stack = list(dependencies)
        while stack:
            for child in stack.pop().next_nodes:
                if child is None:
                    continue
                if child in dependencies:
                    dependencies[child] += 1
                else:
                    dependencies[child] = 1
                    stack.append(child)
        return dependencies

    def discover(self) -> dict:
        """Every node reachable from the roots, with the nodes that feed each (iteratively)."""
        parents: dict[Any, list] = {node: [] for node in self.roots}
        stack = list(parents)
        while stack:
            node = stack.pop()
            for child in node.next_nodes:
                if child is None:
                    continue
                if child not in parents:
                    parents[child] = []
                    stack.append(child)
                parents[child].append(node)
        return parents

    def prune(self, parents: dict) -> set:
        """The nodes that lead to a wanted input."""
        needed = {node for node in self.targets if node in parents}
        stack = list(needed)
        while stack:
            for parent in parents[stack.pop()]:
                if parent not in needed:
                    needed.add(parent)
                    stack.append(parent)
        return needed

    def count(self, needed: set) -> dict:
        dependencies = dict.fromkeys(needed, 0)
        for node in self.roots:
            dependencies.setdefault(node, 0)
        for node in needed:
            for child in node.next_nodes:
                if child is not None and child in needed:
                    dependencies[child] += 1
        return dependencies

    def visit(self, node, gradient, needed: set | None) -> list | None:
        """Hooks, then retained, wanted or accumulated gradients, then the node's own rules."""
        if node.tensor_hooks:
            gradient = self.run_tensor_hooks(node, gradient)
        if node.retained is not None:
            _accumulate(node.retained, gradient, self.create_graph)
        if self.targets is not None and node in self.targets:
            return self.visit_wanted(node, gradient, needed)
        if type(node) is AccumulateGrad:
            if self.targets is None:  # plain backward: every leaf reached accumulates
                self.accumulate_leaf(node, gradient)
            return None
        return self.apply_rules(node, gradient, needed)

    def visit_wanted(self, node, gradient, needed: set) -> list | None:
        """A wanted input: grad captures its gradient, backward(inputs=...) accumulates it (GRAD-9).

        A listed non-leaf retains its gradient (GRAD-10), so `visit` has already accumulated it.
        """
        if not self.accumulate:
            self.captured[node] = gradient
        elif type(node) is AccumulateGrad:
            self.accumulate_leaf(node, gradient)
        if type(node) is AccumulateGrad or not any(child in needed for child in node.next_nodes if child is not None):
            return None  # nothing wanted lies beyond it (HOOK-11: a wanted leaf's node does not run)
        return self.apply_rules(node, gradient, needed)

    def accumulate_leaf(self, node, gradient) -> None:
        """Update .grad, then run the post-accumulate-grad hooks with the tensor (HOOK-12)."""
        _accumulate(node.tensor, gradient, self.create_graph)
        for hook in list((node.post_hooks or {}).values()):
            if hook(node.tensor) is not None:  # PASS-12
                raise PostAccumulateReturnedError("Tensor post accumulate grad hooks should return None.")

    def run_tensor_hooks(self, node, gradient):
        """Each hook sees the previous one's result; a returned tensor replaces the gradient (HOOK-2)."""
        for hook in list(node.tensor_hooks.values()):
            result = hook(_as_tensor(gradient))
            if result is None:
                continue
            if not isinstance(result, Tensor):
                raise TypeError(f"expected Variable, but hook returned '{type(result).__name__}'")
            if result.shape != np.shape(ops.data_of(gradient)):
                raise HookShapeError(f"hook '{getattr(hook, '__name__', 'hook')}' has changed the size of value")
            if not self.create_graph:
                self.supply(result)
            gradient = result if self.create_graph else result.data
        return gradient

    def apply_rules(self, node, gradient, needed: set | None) -> list:
        """The node's rules, only for inputs that lead to a wanted one; its saved values go unless retained."""
        if type(node) is CustomNode:  # a custom function's call: its backward, on every output's gradient
            results = node.run(gradient, self.create_graph, not self.retain_graph, needed)
            if not self.create_graph:
                for value in getattr(node, "returned", ()):
                    if isinstance(value, Tensor):
                        self.supply(value)
                node.returned = ()
            return results
        if node.hooks_before:  # after the tensor's hooks and retain_grad, before the node (PASS-7)
            gradient = self.run_node_hooks(node.hooks_before, gradient, (_as_tensor(gradient),))
        if self.create_graph:
            gradient = _as_tensor(gradient)
        a, b, out = node.take_saved(self.create_graph, not self.retain_graph)
        results = [rule(gradient, a, b, out, node.attrs) if rule is not None and (needed is None or child in needed)
                   else None for rule, child in zip(node.rules, node.next_nodes, strict=True)]
        if node.hooks_after:
            for hook in list(node.hooks_after.values()):
                replaced = hook(tuple(None if r is None else _as_tensor(r) for r in results), (_as_tensor(gradient),))
                if replaced is not None:
                    results = [r if self.create_graph or r is None else r.data for r in replaced]
        return results

    def run_node_hooks(self, hooks: dict, gradient, arguments: tuple):
        """A node's pre-hooks, each seeing the previous one's result; a returned tuple replaces the gradient."""
        for hook in list(hooks.values()):
            replaced = hook(arguments)
            if replaced is not None:
                gradient = replaced[0] if self.create_graph else replaced[0].data
                arguments = (_as_tensor(gradient),)
        return gradient


def _conform(gradient: Any, node) -> Any:
    """Give a gradient the shape and dtype of the tensor it arrives for (SHAPE-2, SHAPE-3)."""
    if gradient.shape != node.shape:  # an array, a numpy scalar or a Tensor
        gradient = ops.sum_to(gradient, node.shape)  # undo broadcasting
    if gradient.dtype != node.dtype:
        gradient = ops.cast(gradient, node.dtype)
    return gradient


_accumulating = threading.Lock()  # passes in other threads may add into the same .grad (PASS-9)


def _accumulate(tensor: Tensor, gradient: Any, create_graph: bool) -> None:
    """Add a gradient into tensor.grad (ACC-1, ACC-3), one thread at a time: reading .grad and writing the sum back
    must not interleave with another pass doing the same, or one of the two gradients is lost (PASS-9)."""
    with _accumulating:
        _add_into_grad(tensor, gradient, create_graph)


def _add_into_grad(tensor: Tensor, gradient: Any, create_graph: bool) -> None:
    """A .grad that is a constant always owns writable data (gradients can be read-only broadcast
    views), so a later backward can add into it in place; one with a graph is added to out of place.
    """
    current = tensor._grad
    if create_graph:
        incoming = _as_tensor(gradient)
        if not incoming.requires_grad:
            incoming = Tensor(np.array(incoming.data, dtype=tensor.data.dtype))
        tensor.grad = incoming if current is None else current + incoming
        return
    data = np.asarray(ops.data_of(gradient))
    if current is None:
        tensor.grad = Tensor(data.astype(tensor.data.dtype, copy=True))
    elif current.requires_grad or not current.data.flags.writeable:
        tensor.grad = Tensor(current.data + data)
    else:
        np.add(current.data, data, out=current.data, casting="same_kind")


def _root_gradient(output: Tensor, gradient: Tensor | None, index: int) -> Tensor:
    if gradient is not None and not isinstance(gradient, Tensor):  # a number or a nested list is no gradient (VJP)
        raise TypeError(f"gradients can be either Tensors or None, but got {type(gradient).__name__}")
    if gradient is None:
        if output.data.size != 1:
            raise NonScalarImplicitError("grad can be implicitly created only for scalar outputs")
        return Tensor(np.ones_like(output.data))
    if gradient.shape != output.shape:
        raise GradShapeMismatchError(f"Mismatch in shape: grad_output[{index}] has a shape of {list(gradient.shape)} "
                                     f"and output[{index}] has a shape of {list(output.shape)}.")
    return gradient


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def _as_list(value: Any) -> list:
    return [value] if isinstance(value, Tensor) or value is None else list(value)
