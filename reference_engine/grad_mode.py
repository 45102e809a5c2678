"""Grad mode: whether operations are recorded. A context manager and decorator, like PyTorch's.

The mode belongs to a thread (PASS-10): a thread starts with grad mode on, and no_grad in one
thread never stops another from recording. The saved-tensor hooks in force (saved_hooks.py)
are per thread for the same reason, so they live here too.
"""

from __future__ import annotations

import functools
import threading


class _ThreadState(threading.local):
    """What each thread sees: the class attributes until the thread sets its own."""

    enabled = True
    saved_hooks: tuple = ()  # the (pack, unpack) pairs of the enclosing saved_tensors_hooks blocks, innermost last


_state = _ThreadState()


def is_grad_enabled() -> bool:
    return _state.enabled


class _Mode:
    """A mode that takes effect on entering, not on construction (for no_grad and enable_grad)."""

    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.previous, _state.enabled = _state.enabled, self.mode
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self.previous
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with _Mode(self.mode):
                return function(*args, **kwargs)

        return wrapper


class set_grad_enabled(_Mode):
    """Record operations (True) or not (False) inside a `with` block or a decorated function.

    Like PyTorch, constructing it sets the mode at once (so it also works as a plain call);
    leaving the block restores the mode that held before it.
    """

    def __init__(self, mode: bool):
        super().__init__(bool(mode))
        super().__enter__()

    def __enter__(self):
        return self  # the mode took effect on construction

    def __call__(self, function):
        self.__exit__()  # decorating must not leave the mode changed
        return super().__call__(function)


class no_grad(_Mode):
    """Do not record operations in this block (MODE-1)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_Mode):
    """Record operations in this block, even inside no_grad (MODE-2)."""

    def __init__(self):
        super().__init__(True)
