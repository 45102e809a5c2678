"""Saved-tensor hooks (SAVED rules): a pack hook sees each value a recorded operation saves, an unpack hook gives it
back when a pass needs it. PyTorch's torch.autograd.graph.saved_tensors_hooks.

Inside a `saved_tensors_hooks(pack, unpack)` block (per thread, innermost only: SAVED-3, SAVED-4), what a node keeps
for a saved tensor is a `Packed`: pack's result and the unpack to call. The node unpacks on every use (SAVED-2).
The engine keeps each saved tensor's version counter (not its data) and checks it before unpacking, so an in-place
change after packing raises as INPLACE-1 says (PyTorch does not check here: versions.yaml records it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import grad_mode
from .errors import InplaceModifiedError, PackHookInplaceError


class saved_tensors_hooks:
    """Use pack(tensor) -> anything and unpack(anything) -> Tensor for values saved inside this block."""

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]):
        self.pair = (pack_hook, unpack_hook)

    def __enter__(self):
        grad_mode._state.saved_hooks = (*grad_mode._state.saved_hooks, self.pair)
        return self

    def __exit__(self, *exc_info):
        grad_mode._state.saved_hooks = grad_mode._state.saved_hooks[:-1]
        return False


class Packed:
    """What pack returned for one saved tensor, with the unpack that turns it back into one, the tensor's version
    counter and its version when saved, and the tensor itself where it requires grad (`source`: its history)."""

    __slots__ = ("packed", "unpack_hook", "counter", "version", "source")

    def __init__(self, packed: Any, unpack_hook: Callable[[Any], Any], counter: Any, version: int, source: Any = None):
        self.packed, self.unpack_hook, self.counter, self.version = packed, unpack_hook, counter, version
        self.source = source

    def unpack(self) -> Any:
        from .tensor import Tensor  # here, not at the top: tensor imports graph, which imports this module

        if self.counter.value != self.version:
            raise InplaceModifiedError("one of the variables needed for gradient computation has been modified by "
                                       f"an inplace operation after it was packed: it is at version "
                                       f"{self.counter.value}; expected version {self.version} instead.")
        value = self.unpack_hook(self.packed)
        if not isinstance(value, Tensor):
            raise TypeError(f"Output of saved tensor unpack_hook expected to be a Tensor but got result of type "
                            f"{type(value).__name__}")
        if self.source is not None and grad_mode.is_grad_enabled():
            # a pass with create_graph records its gradient: the unpacked value stands there for the saved one, with
            # unpack's values and the saved tensor's history (SAVED-7), as without hooks (HIGHER-2)
            return self.source + (value - self.source).detach()
        return value


class PackedValues(tuple):
    """A node's saved values after packing: a Packed (or None) in each place a tensor (or None) was."""


def pack_all(saved: tuple) -> PackedValues:
    """Each saved tensor through the innermost pack hook (SAVED-1), with grad mode off; None stays None.

    A pack hook that modifies its input in place raises (SAVED-5): the forward's own value would change.
    """
    pack_hook, unpack_hook = grad_mode._state.saved_hooks[-1]
    packed = []
    with grad_mode.no_grad():
        for tensor in saved:
            if tensor is None:
                packed.append(None)
                continue
            counter = tensor._shared_version()
            before = counter.value
            value = pack_hook(tensor)
            if counter.value != before:
                raise PackHookInplaceError("A saved tensor pack hook is modifying its input in place. Tensors "
                                           "provided as input to pack hook can not be modified by in-place "
                                           "operations.")
            packed.append(Packed(value, unpack_hook, counter, before, tensor if tensor.requires_grad else None))
    return PackedValues(packed)


def unpack_all(saved: tuple) -> tuple:
    """Each packed value through its unpack hook, now (SAVED-2)."""
    return tuple(None if value is None else value.unpack() for value in saved)

