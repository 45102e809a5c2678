"""Grad mode: whether operations are recorded. A context manager and decorator, like PyTorch's.

The mode belongs to a thread (PASS-10): a thread starts with grad mode on, and no_grad in one
thread never stops another from recording. The saved-tensor hooks in force (saved_hooks.py)
are per thread for the same reason, so they live here too.
"""

from __future__ import annotations

import functools
import inspect
import threading


class _ThreadState(threading.local):
    """What each thread sees: the class attributes until the thread sets its own."""

    enabled = True
    inference = False  # inside inference_mode: results are inference tensors, never recorded (MODE-9)
    saved_hooks: tuple = ()  # the (pack, unpack) pairs of the enclosing saved_tensors_hooks blocks, innermost last


_state = _ThreadState()


def is_grad_enabled() -> bool:
    return _state.enabled


def is_inference_mode_enabled() -> bool:
    return _state.inference


class _Mode:
    """A mode that takes effect on entering, not on construction (for no_grad and enable_grad).

    The engine's own switches (a view's history made again, a backward pass's create_graph) are plain _Modes: they
    leave inference_mode for their duration, so what they make is ordinary. The user's no_grad, enable_grad and
    set_grad_enabled are `public`: inside inference_mode they record nothing, whatever they ask (MODE-9).
    """

    public = False

    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.previous = (_state.enabled, _state.inference)
        if self.public:
            _state.enabled = self.mode and not _state.inference
        else:
            _state.enabled, _state.inference = self.mode, False
        return self

    def __exit__(self, *exc_info):
        _state.enabled, _state.inference = self.previous
        return False

    def _fresh(self) -> _Mode:
        """A new block of the same mode, entered on each call of a decorated function (and each resume of a generator)."""
        fresh = _Mode(self.mode)
        fresh.public = self.public
        return fresh

    def __call__(self, function):
        """As a decorator: the function runs in the mode; a generator function runs in it each time it is resumed, and
        the code that drives it runs in its own mode between resumes (as PyTorch's decorators do)."""
        if inspect.isgeneratorfunction(function):
            return _generator_in(self._fresh, function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return function(*args, **kwargs)

        return wrapper


def _generator_in(mode, function):
    """A generator function whose every resume (send, throw, close) runs inside a fresh `mode()` block."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        generator = function(*args, **kwargs)
        try:
            with mode():
                response = generator.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with mode():
                        generator.close()
                    raise
                except BaseException as exc:  # thrown in by the caller: the generator sees it in the mode
                    with mode():
                        response = generator.throw(exc)
                else:
                    with mode():
                        response = generator.send(request)
        except StopIteration as stop:
            return stop.value

    return wrapper


class set_grad_enabled(_Mode):
    """Record operations (True) or not (False) inside a `with` block or a decorated function.

    Like PyTorch, constructing it sets the mode at once (so it also works as a plain call);
    leaving the block restores the mode that held before it.
    """

    public = True

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

    public = True

    def __init__(self):
        super().__init__(False)


class enable_grad(_Mode):
    """Record operations in this block, even inside no_grad (MODE-2); inside inference_mode, nothing still (MODE-9)."""

    public = True

    def __init__(self):
        super().__init__(True)


class inference_mode(_Mode):
    """Record nothing, and make every result an inference tensor: never saved for backward, never modified in place
    outside the mode (MODE-9 to MODE-12). Grad modes nested inside it record nothing either."""

    def __init__(self):
        super().__init__(False)

    def __enter__(self):
        self.previous = (_state.enabled, _state.inference)
        _state.enabled, _state.inference = False, True
        return self

    def _fresh(self) -> _Mode:
        return inference_mode()
