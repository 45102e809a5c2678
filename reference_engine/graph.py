"""Graph nodes: what an operation leaves behind for backward, apart from the tensors users hold.

A Node knows where gradients go next (one edge per input: the producing node, a leaf's
AccumulateGrad, or None), the shape and dtype each input's gradient must have, and the
values it saved. Tensor hooks and retain_grad of a non-leaf live on the node that
produced it; a leaf's live on its AccumulateGrad, with post-accumulate-grad hooks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from . import grad_mode
from .errors import FreedGraphError, InplaceModifiedError, MultiOutputViewInplaceError
from .saved_hooks import PackedValues, pack_all, unpack_all

_handle_ids = itertools.count()
NOTHING_SAVED = (None, None, None)
FREED = tuple([None, None, None])  # what a released node saved; built at run time so it is not NOTHING_SAVED
_NO_VERSIONS = (0, 0, 0)


class RemovableHandle:
    """Returned by every hook registration; remove() may be called any number of times (HOOK-4)."""

    __slots__ = ("_hooks", "_id")

    def __init__(self, hooks: dict):
        self._hooks, self._id = hooks, next(_handle_ids)

    @classmethod
    def attach(cls, node: Any, attribute: str, hook: Callable) -> RemovableHandle:
        """Append `hook` to node.<attribute> (a dict made on first use; most nodes have no hooks)."""
        hooks = getattr(node, attribute)
        if hooks is None:
            hooks = {}
            setattr(node, attribute, hooks)
        handle = cls(hooks)
        hooks[handle._id] = hook
        return handle

    def remove(self) -> None:
        self._hooks.pop(self._id, None)


class Node:
    """One recorded operation, with the shape and dtype its output's gradient must have."""

    __slots__ = ("name", "rules", "next_nodes", "shape", "dtype", "saved", "saved_versions", "attrs",
                 "tensor_hooks", "retained", "hooks_before", "hooks_after", "__weakref__")

    def __init__(self, name: str, rules: tuple, next_nodes: tuple, out: Any, saved: tuple, attrs: dict):
        self.name = name
        self.rules = rules  # one derivative rule per input, None for inputs that need no gradient
        self.next_nodes = next_nodes  # per input: Node, AccumulateGrad or None
        data = out.data
        shape = data.shape
        first = next_nodes[0]
        if first is not None and first.shape == shape:
            shape = first.shape  # one tuple for a run of same-shaped results: fewer objects for the collector
        self.shape, self.dtype = shape, data.dtype
        # (a, b, out): the Tensors the active rules read, None elsewhere; FREED once released
        if saved is NOTHING_SAVED:
            self.saved, self.saved_versions = saved, _NO_VERSIONS
        else:
            self.saved_versions = _versions(saved)
            # inside saved_tensors_hooks, what pack returned (SAVED-1)
            self.saved = pack_all(saved) if grad_mode._state.saved_hooks else saved
        self.attrs = attrs
        self.tensor_hooks: dict[int, Callable] | None = None  # hooks on the tensor this node produced
        self.retained = None  # the tensor whose .grad this node fills (retain_grad), if any
        self.hooks_before: dict[int, Callable] | None = None  # the node's own hooks, before and after it runs
        self.hooks_after: dict[int, Callable] | None = None

    def register_prehook(self, hook: Callable) -> RemovableHandle:
        """hook(grad_outputs) before the node runs; a returned tuple replaces the gradient it receives."""
        return RemovableHandle.attach(self, "hooks_before", hook)

    def register_hook(self, hook: Callable) -> RemovableHandle:
        """hook(grad_inputs, grad_outputs) after the node ran; a returned tuple replaces what it passes on."""
        return RemovableHandle.attach(self, "hooks_after", hook)

    def take_saved(self, as_tensors: bool, release: bool) -> tuple:
        """The saved values (a, b, out) for the rules, as Tensors or arrays, after checking they still
        exist and were not modified in place (LIFE-1, INPLACE-1), or unpacked (SAVED-2).

        With `release` they are freed; edges stay, and a node that saved nothing can run again (LIFE-5).
        """
        saved = self.saved
        if saved is NOTHING_SAVED:
            return NOTHING_SAVED
        if saved is FREED:
            raise FreedGraphError(
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                f"have already been freed); {self!r} needs values that were freed. Specify retain_graph=True "
                "when calling backward() or grad() the first time.")
        if type(saved) is PackedValues:
            saved = unpack_all(saved)  # every use unpacks (SAVED-2); the hooks keep the values, unversioned
        elif _versions(saved) != self.saved_versions:
            raise self._modified_error()
        if release:
            self.saved = FREED
        if as_tensors:
            return saved
        a, b, out = saved
        return (a.data if a is not None else None, b.data if b is not None else None,
                out.data if out is not None else None)

    def _modified_error(self) -> InplaceModifiedError | MultiOutputViewInplaceError:
        changed = [(position, now, then) for position, (now, then)
                   in enumerate(zip(_versions(self.saved), self.saved_versions, strict=True)) if now != then]
        position, now, then = changed[0]
        view = getattr(self.saved[position], "_view", None)
        if view is not None and view.multi_output and view.base.requires_grad:  # as PyTorch words it (VIEW-9)
            return MultiOutputViewInplaceError(
                f"value {position} saved by {self!r} is one of several views whose base was modified in place.")
        return InplaceModifiedError(
            "one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"value {position} saved by {self!r} is at version {now}; expected version {then} instead.")

    def __repr__(self) -> str:
        return f"<{self.name.capitalize()}Backward>"


def _versions_of(tensors: tuple) -> tuple:
    """The version of each of any number of tensors (a custom function's saved values)."""
    return tuple(t._version.value if t is not None and t._version is not None else 0 for t in tensors)


def _versions(saved: tuple) -> tuple:
    """The version of each saved tensor (0 for one never updated in place, which has no counter yet).

    All zeros, by far the common case, is one shared tuple: nodes live long, and each object
    they keep is more work for Python's garbage collector.
    """
    a, b, out = saved
    versions = (a._version.value if a is not None and a._version is not None else 0,
                b._version.value if b is not None and b._version is not None else 0,
                out._version.value if out is not None and out._version is not None else 0)
    return _NO_VERSIONS if versions == _NO_VERSIONS else versions


class AccumulateGrad:
    """The node where a leaf's gradient arrives: its tensor hooks run, then .grad is updated, then post hooks."""

    __slots__ = ("tensor", "shape", "dtype", "tensor_hooks", "post_hooks", "__weakref__")
    name = "AccumulateGrad"
    next_nodes: tuple = ()

    def __init__(self, tensor: Any):
        self.tensor = tensor
        self.shape, self.dtype = tensor.data.shape, tensor.data.dtype
        self.tensor_hooks: dict[int, Callable] | None = None
        self.post_hooks: dict[int, Callable] | None = None

    @property
    def retained(self):
        return None

    def __repr__(self) -> str:
        return "<AccumulateGrad>"
