"""Faults planted in the reference engine, one per MUST rule (and a few kink conventions): the proof that the
corpus catches each violation.

A rule counts as covered only if an engine that breaks it fails one of the rule's cases
(a case no faulty engine could fail is a defect). Each fault here is a small, deliberate
violation of one rule, planted into gradspec's reference engine (or, where the engine
cannot express it, into the thin adapter around it) by replacing one function for the
duration of a `with planted(fault):` block. `catching_cases` runs the cases citing the
rule on the faulty engine and names those that fail; tests/test_faults.py requires one
for every MUST rule, and `gradspec faults` prints the same check for anyone to rerun.

Faults are written against the reference engine's internals on purpose: they are its
mutation tests. Each replaces a function with a wrapper around the original, so that
they stay small and keep working when the engine's hot paths change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradspec.reference_engine.engine as E
import gradspec.reference_engine.grad_mode as M
import gradspec.reference_engine.graph as G
import gradspec.reference_engine.ops as O
import gradspec.reference_engine.views as V
import numpy as np
from gradspec import contracts, reference_engine
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.language.case import Case
from gradspec.running.interpreter import ERROR, FAILED, NOT_APPLICABLE, run_case

T = sys.modules["gradspec.reference_engine.tensor"]  # the package's `tensor` attribute is the factory function
F = sys.modules["gradspec.reference_engine.function"]
S = sys.modules["gradspec.reference_engine.saved_hooks"]


@dataclass(frozen=True)
class Fault:
    rule: str
    description: str  # what the faulty engine does, in the rule book's words
    plant: Callable[[Patch], None]
    runs: int = 1  # a race's fault shows only in some runs: a case catches it when any of this many runs fails


class Patch:
    """Replace attributes for a while; `undo` puts every original back, in reverse order."""

    def __init__(self):
        self._undo: list[Callable[[], None]] = []

    def __call__(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        """Set owner.name to make(original)."""
        own = isinstance(owner, type) and name in owner.__dict__
        original = owner.__dict__[name] if own else getattr(owner, name)
        setattr(owner, name, make(original))
        if isinstance(owner, type) and not own:
            self._undo.append(lambda: delattr(owner, name))
        else:
            self._undo.append(lambda: setattr(owner, name, original))

    def op(self, name: str, **changes: Any) -> None:
        """Replace fields of one entry of the reference engine's op table."""
        self(O, "OPS", lambda table: {**table, name: dataclasses.replace(table[name], plans=[], **changes)})

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def planted(fault: Fault) -> Iterator[None]:
    patch = Patch()
    state = (M._state.enabled, M._state.inference, M._state.saved_hooks)
    try:
        fault.plant(patch)
        yield
    finally:
        patch.undo()
        # A faulty grad mode may leave this thread's mode wrong: the healthy engine starts from what held before.
        M._state.enabled, M._state.inference, M._state.saved_hooks = state


def catching_cases(fault: Fault, cases: Iterable[Case], dtype: str = "float64") -> list[str]:
    """The ids of the cases citing the fault's rule that pass on the reference engine and fail with the fault."""
    return _caught(fault, _passing([case for case in cases if fault.rule in case.rules], dtype), dtype)


def _passing(cases: Iterable[Case], dtype: str) -> list[Case]:
    """The cases the healthy reference engine passes: only their failures can be blamed on a fault."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [case for case in cases if _fails(case, dtype) is False]


def _caught(fault: Fault, passing: list[Case], dtype: str) -> list[str]:
    with warnings.catch_warnings(), planted(fault):
        warnings.simplefilter("ignore")
        return [case.id for case in passing if fault.rule in case.rules
                and any(_fails(case, dtype) for _ in range(fault.runs))]


def _fails(case: Case, dtype: str) -> bool | None:
    """Whether the case fails on the reference engine; None where it is not applicable."""
    status = run_case(case, ReferenceAdapter("cpu", dtype)).status
    return None if status == NOT_APPLICABLE else status in (FAILED, ERROR)


def rule_coverage(cases: Iterable[Case]) -> dict[str, dict]:
    """Per rule: the cases citing it and, for a MUST rule or a convention with a planted fault, those that catch it.

    A MUST rule is covered when `caught_by` is not empty: a violation of it would not pass.
    """
    cases = list(cases)
    passing = _passing(cases, "float64")  # once for every rule, not once per rule
    coverage = {}
    for rule, entry in contracts.rules().items():
        cited_by = sorted(case.id for case in cases if rule in case.rules)
        fault = FAULTS.get(rule)
        caught_by = sorted(_caught(fault, passing, "float64")) if fault and cited_by else []
        coverage[rule] = {"level": entry.level, "cited_by": cited_by,
                          "caught_by": caught_by if entry.level == "MUST" or fault else None}
    return coverage


def coverage_data(cases: Iterable[Case]) -> dict:
    """Per case: a digest of its file and the rules whose planted fault it catches, for reports to read.

    A run's report must not execute cases (a hanging or crashing one would lose every report), so it reads what
    `gradspec faults --write-coverage` computed here, and trusts it only for case files whose text is unchanged.
    """
    cases = list(cases)
    catches: dict[str, set[str]] = {case.id: set() for case in cases}
    for rule, entry in rule_coverage(cases).items():
        for case_id in entry["caught_by"] or ():
            catches[case_id].add(rule)
    return {"faulted_rules": sorted(FAULTS),
            "cases": {case.id: {"sha256": file_digest(Path(case.path)), "catches": sorted(catches[case.id])}
                      for case in sorted(cases, key=lambda c: c.id)}}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- small helpers for the faults below ------------------------------------------------------


def _wrap_grad(patch: Patch, change: Callable[..., Any]) -> None:
    """Replace the engine's `grad` (as the adapter reaches it) by change(original, *args, **kwargs)."""
    def make(original):
        return lambda *args, **kwargs: change(original, *args, **kwargs)
    patch(reference_engine, "grad", make)


def _wrap_backward(patch: Patch, change: Callable[..., Any]) -> None:
    """Replace the engine's `backward` (as Tensor.backward reaches it) by change(original, ...)."""
    def make(original):
        return lambda *args, **kwargs: change(original, *args, **kwargs)
    patch(E, "backward", make)


def _zeros_like(tensor: Any) -> Any:
    return T.Tensor(np.zeros_like(tensor.data))


def _grad_args(args: tuple, kwargs: dict) -> dict:
    """engine.grad's arguments by name, whichever way they were passed."""
    names = ("outputs", "inputs", "grad_outputs", "retain_graph", "create_graph", "allow_unused", "materialize_grads")
    return {**dict(zip(names, args, strict=False)), **kwargs}


# -- LIFE -------------------------------------------------------------------------------------


def _never_free(patch):
    patch(G.Node, "take_saved", lambda take: lambda self, as_tensors, release: take(self, as_tensors, False))


def _retain_defaults_false(patch):
    def make(init):
        def __init__(self, roots, root_grads, retain_graph, create_graph, targets, accumulate):
            init(self, roots, root_grads, bool(retain_graph), create_graph, targets, accumulate)
        return __init__
    patch(E._Pass, "__init__", make)


def _repeat_doubles_saved(patch):
    seen: weakref.WeakSet = weakref.WeakSet()

    def make(take):
        def take_saved(self, as_tensors, release):
            saved = take(self, as_tensors, release)
            if self in seen and saved is not G.NOTHING_SAVED:
                return tuple(None if value is None else value * 2 for value in saved)
            seen.add(self)
            return saved
        return take_saved
    patch(G.Node, "take_saved", make)


def _free_per_output(patch):
    """Saved values are freed only for passes from the same output; another output's pass still finds them."""
    freed_by: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    current: list = [None]

    def make_run(run):
        def wrapped(self):
            current[0] = tuple(id(node) for node in self.roots)
            return run(self)
        return wrapped

    def make_take(take):
        def take_saved(self, as_tensors, release):
            if freed_by.get(self) == current[0]:
                raise reference_engine.FreedGraphError("freed by an earlier pass from this output")
            if release:
                freed_by[self] = current[0]
            return take(self, as_tensors, False)
        return take_saved
    patch(E._Pass, "run", make_run)
    patch(G.Node, "take_saved", make_take)


# -- ACC ---------------------------------------------------------------------------------------


def _replace_grad(patch):
    def make(accumulate):
        def wrapped(tensor, gradient, create_graph):
            tensor.grad = None
            return accumulate(tensor, gradient, create_graph)
        return wrapped
    patch(E, "_accumulate", make)


def _cap_dependencies(patch):
    """A node runs when its first gradient arrives; what arrives later along other paths is dropped."""
    def make(count):
        return lambda self, *args: {node: min(n, 1) for node, n in count(self, *args).items()}
    patch(E._Pass, "count_all", make)
    patch(E._Pass, "count", make)


def _user_grad_replaced(patch):
    assigned: weakref.WeakSet = weakref.WeakSet()

    def make_set(set_grad):
        def wrapped(self, tensor, value):
            set_grad(self, tensor, value)
            assigned.add(tensor)
        return wrapped

    def make_accumulate(accumulate):
        def wrapped(tensor, gradient, create_graph):
            if tensor in assigned:
                assigned.discard(tensor)
                tensor.grad = None
            return accumulate(tensor, gradient, create_graph)
        return wrapped
    patch(ReferenceAdapter, "set_grad", make_set)
    patch(E, "_accumulate", make_accumulate)


def _zeroing_does_nothing(patch):
    patch(T.Tensor, "zero_", lambda zero: lambda self: self)


def _constants_get_gradients(patch):
    """Operands that do not require grad are given edges anyway, so backward fills their .grad."""
    def make(record):
        def wrapped(name, op, a, b, out, attrs):
            others = [t for t in (a, b) if t is not None and not t.requires_grad and t.data.dtype.kind == "f"]
            for t in others:
                t.requires_grad = True
            try:
                return record(name, op, a, b, out, attrs)
            finally:
                for t in others:
                    t.requires_grad = False
        return wrapped
    patch(O, "record", make)


# -- HIGHER ------------------------------------------------------------------------------------


def _create_graph_ignored(patch):
    def plain(kwargs: dict) -> dict:
        create = bool(kwargs.get("create_graph"))
        retain = kwargs.get("retain_graph")
        return {**kwargs, "create_graph": False, "retain_graph": create if retain is None else retain}
    _wrap_grad(patch, lambda grad, *args, **kwargs: grad(**plain(_grad_args(args, kwargs))))

    def backward(original, output, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        retain = bool(create_graph) if retain_graph is None else retain_graph
        return original(output, gradient, retain, False, inputs)
    _wrap_backward(patch, backward)


def _saved_values_detached(patch):
    def make(take):
        def take_saved(self, as_tensors, release):
            saved = take(self, as_tensors, release)
            if not as_tensors or saved is G.NOTHING_SAVED:
                return saved
            return tuple(None if value is None else T.Tensor(value.data) for value in saved)
        return take_saved
    patch(G.Node, "take_saved", make)


def _materialized_zeros_require_grad(patch):
    """What PyTorch 2.1 to 2.9 did: zeros for an unused input require grad even without create_graph."""
    def grad(original, *args, **kwargs):
        results = original(*args, **kwargs)
        if _grad_args(args, kwargs).get("materialize_grads"):
            for result in results:
                if result is not None and result.grad_fn is None and not result.data.any():
                    result.requires_grad = True
        return results
    _wrap_grad(patch, grad)


def _leaf_grad_detached(patch):
    def make(accumulate):
        return lambda tensor, gradient, create_graph: accumulate(tensor, O.data_of(gradient), False)
    patch(E, "_accumulate", make)


def _root_gradient_requires_grad(patch):
    def make(root):
        def wrapped(output, gradient, index):
            result = root(output, gradient, index)
            return T.Tensor(result.data, requires_grad=True) if result.grad_fn is None else result
        return wrapped
    patch(E, "_root_gradient", make)


def _no_graph_gives_zeros(patch):
    def grad(original, *args, **kwargs):
        try:
            return original(*args, **kwargs)
        except reference_engine.NoGradFnError:
            inputs = _grad_args(args, kwargs)["inputs"]
            return tuple(_zeros_like(t) for t in E._as_list(inputs))
    _wrap_grad(patch, grad)


def _straight_through_relu(patch):
    """relu' written as mask + (a - a held constant): the value is the mask exactly, but the recorded term a - a
    differentiates to 1 (the straight-through trick), where a constant gradient must differentiate to 0."""
    def rule(g, a, b, o, t):
        return g * (O.sign(o) + a - O.constant(O.data_of(a), a))
    patch.op("relu", rules=(rule,), uses=("a,out",))


# -- GRAD --------------------------------------------------------------------------------------


def _grad_writes_leaves(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        results = original(*args, **kwargs)
        inputs = call["inputs"]
        for tensor, result in zip(E._as_list(inputs), results, strict=True):
            if tensor.is_leaf and result is not None:
                E._accumulate(tensor, O.data_of(result), False)
        return results
    _wrap_grad(patch, grad)


def _results_reversed(patch):
    _wrap_grad(patch, lambda grad, *args, **kwargs: tuple(reversed(grad(*args, **kwargs))))


def _unused_gives_none(patch):
    def grad(original, *args, **kwargs):
        try:
            return original(*args, **kwargs)
        except reference_engine.UnusedInputError:
            return original(**{**_grad_args(args, kwargs), "allow_unused": True})
    _wrap_grad(patch, grad)


def _materialize_ignored(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        if call.get("materialize_grads"):
            call = {**call, "materialize_grads": False, "allow_unused": True}
        return original(**call)
    _wrap_grad(patch, grad)


def _contradiction_accepted(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        if call.get("materialize_grads") and call.get("allow_unused") is False:
            call = {**call, "allow_unused": None}
        return original(**call)
    _wrap_grad(patch, grad)


def _any_input_differentiable(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        inputs = E._as_list(call["inputs"])
        usable = [t for t in inputs if t.requires_grad]
        found = dict(zip(map(id, usable), original(**{**call, "inputs": usable}), strict=True)) if usable else {}
        return tuple(found[id(t)] if id(t) in found else _zeros_like(t) for t in inputs)
    _wrap_grad(patch, grad)


def _any_output_differentiable(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        outputs = E._as_list(call["outputs"])
        flipped = [t for t in outputs if not t.requires_grad]
        for t in flipped:
            t.requires_grad = True
        try:
            return original(**call)
        finally:
            for t in flipped:
                t.requires_grad = False
    _wrap_grad(patch, grad)


def _repeats_get_zeros(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        inputs = E._as_list(call["inputs"])
        results, seen = list(original(**call)), set()
        for index, tensor in enumerate(inputs):
            if id(tensor) in seen:
                results[index] = _zeros_like(tensor)
            seen.add(id(tensor))
        return tuple(results)
    _wrap_grad(patch, grad)


def _backward_inputs_ignored(patch):
    _wrap_backward(patch, lambda backward, output, gradient=None, retain_graph=None, create_graph=False, inputs=None:
                   backward(output, gradient, retain_graph, create_graph, None))


def _listed_nonleaf_forgets(patch):
    """A listed non-leaf gets this pass's gradient but does not go on retaining (the old GRAD-10)."""
    def backward(original, output, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        fresh = [t for t in (inputs or []) if not t.is_leaf and not t.retains_grad]
        original(output, gradient, retain_graph, create_graph, inputs)
        for tensor in fresh:
            tensor.grad_fn.retained = None
    _wrap_backward(patch, backward)


def _unrequiring_inputs_dropped(patch):
    def backward(original, output, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        kept = None if inputs is None else [t for t in inputs if t.requires_grad] or None
        return original(output, gradient, retain_graph, create_graph, kept)
    _wrap_backward(patch, backward)


# -- VJP ---------------------------------------------------------------------------------------


def _root_gradient_fault(change):
    def plant(patch):
        patch(E, "_root_gradient", lambda root: lambda output, gradient, index: change(root, output, gradient, index))
    return plant


def _implicit_anything(root, output, gradient, index):
    return T.Tensor(np.ones_like(output.data)) if gradient is None else root(output, gradient, index)


def _explicit_ignored(root, output, gradient, index):
    return root(output, None if output.data.size == 1 else T.Tensor(np.ones_like(output.data)), index)


def _shape_unchecked(root, output, gradient, index):
    if gradient is not None and gradient.shape != output.shape:
        gradient = T.Tensor(np.resize(gradient.data, output.shape))
    return root(output, gradient, index)


def _implicit_only_0d(root, output, gradient, index):
    if gradient is None and output.data.ndim != 0:
        raise reference_engine.NonScalarImplicitError("implicit gradient only for 0-d outputs")
    return root(output, gradient, index)


def _count_unchecked(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        outputs = E._as_list(call["outputs"])
        given = call.get("grad_outputs")
        if given is not None and not isinstance(given, T.Tensor) and len(given) != len(outputs):
            call = {**call, "grad_outputs": (list(given) + [None] * len(outputs))[:len(outputs)]}
        return original(**call)
    _wrap_grad(patch, grad)


def _first_output_only(patch):
    def grad(original, *args, **kwargs):
        call = _grad_args(args, kwargs)
        if isinstance(call["outputs"], T.Tensor) or len(call["outputs"]) < 2:
            return original(**call)
        given = call.get("grad_outputs")
        return original(**{**call, "outputs": call["outputs"][:1],
                           "grad_outputs": None if given is None else list(given)[:1]})
    _wrap_grad(patch, grad)


# -- LEAF --------------------------------------------------------------------------------------


def _user_tensors_not_leaves(patch):
    def make(tensor):
        def wrapped(value, requires_grad=False, dtype=None):
            made = tensor(value, requires_grad=requires_grad, dtype=dtype)
            return made * 1 if requires_grad else made
        return wrapped
    patch(reference_engine, "tensor", make)


def _requires_grad_wrapper(change):
    def plant(patch):
        patch(T.Tensor, "requires_grad_", lambda original: lambda self, *args: change(original, self, *args))
    return plant


def _integers_may_require_grad(original, self, flag=True):
    if flag and self.data.dtype.kind not in "fc":
        self.requires_grad = True
        return self
    return original(self, flag)


def _nonleaf_switched_off(original, self, flag=True):
    if not flag and not self.is_leaf:
        self.requires_grad = False
        return self
    return original(self, flag)


def _default_false(original, self, flag=False):
    return original(self, flag)


def _leaves_shared_by_value(patch):
    shared: dict = {}

    def make(edge):
        def _edge(self):
            if self.requires_grad and self.grad_fn is None and self._accumulator is None:
                key = (self.data.tobytes(), self.data.shape, self.data.dtype.str)
                self._accumulator = shared.setdefault(key, G.AccumulateGrad(self))
            return edge(self)
        return _edge
    patch(T.Tensor, "_edge", make)


# -- RETAIN ------------------------------------------------------------------------------------


def _every_nonleaf_retains(patch):
    def make(record):
        def wrapped(name, op, a, b, out, attrs):
            record(name, op, a, b, out, attrs)
            out.grad_fn.retained = out
        return wrapped
    patch(O, "record", make)


def _retained_replaced(patch):
    def make(accumulate):
        def wrapped(tensor, gradient, create_graph):
            if tensor.grad_fn is not None:
                tensor.grad = None
            return accumulate(tensor, gradient, create_graph)
        return wrapped
    patch(E, "_accumulate", make)


def _retain_on_leaf_doubles(patch):
    def make(retain):
        def retain_grad(self):
            if self.is_leaf and self.requires_grad:
                self.register_hook(lambda g: E._accumulate(self, O.data_of(g), False))
                return None
            return retain(self)
        return retain_grad
    patch(T.Tensor, "retain_grad", make)


def _retain_unrequiring_ignored(patch):
    patch(T.Tensor, "retain_grad", lambda retain: lambda self: retain(self) if self.requires_grad else None)


def _no_access_warning(patch):
    patch(T.Tensor, "grad", lambda prop: property(lambda self: self._grad, prop.fset))


# -- HOOK --------------------------------------------------------------------------------------


def _hooks_fault(change):
    """Replace _Pass.run_tensor_hooks by change(original, pass, node, gradient)."""
    def plant(patch):
        patch(E._Pass, "run_tensor_hooks", lambda run: lambda self, node, gradient: change(run, self, node, gradient))
    return plant


def _with_hooks(node, hooks, call):
    """Run call() with node.tensor_hooks temporarily replaced (handles keep the original dict)."""
    original, node.tensor_hooks = node.tensor_hooks, hooks
    try:
        return call()
    finally:
        node.tensor_hooks = original


def _hooks_see_double(run, self, node, gradient):
    return run(self, node, gradient * 2)


def _hooks_reversed(run, self, node, gradient):
    reversed_hooks = dict(reversed(list(node.tensor_hooks.items())))
    return _with_hooks(node, reversed_hooks, lambda: run(self, node, gradient))


def _hooks_forgotten(run, self, node, gradient):
    result = run(self, node, gradient)
    node.tensor_hooks.clear()
    return result


def _hook_shape_unchecked(run, self, node, gradient):
    for hook in list(node.tensor_hooks.values()):
        result = hook(E._as_tensor(gradient))
        if result is not None:
            gradient = result if self.create_graph else result.data
    return gradient


def _hook_errors_wrapped(run, self, node, gradient):
    def guarded(hook):
        def call(grad):
            try:
                return hook(grad)
            except Exception as exc:
                raise RuntimeError(f"a hook raised: {exc}") from exc
        return call
    hooks = {key: guarded(hook) for key, hook in node.tensor_hooks.items()}
    return _with_hooks(node, hooks, lambda: run(self, node, gradient))


def _visit_fault(change):
    def plant(patch):
        patch(E._Pass, "visit", lambda visit: lambda self, node, gradient, needed: change(visit, self, node,
                                                                                          gradient, needed))
    return plant


def _leaf_ignores_hook_result(visit, self, node, gradient, needed):
    if type(node) is G.AccumulateGrad and node.tensor_hooks and self.targets is None:
        self.run_tensor_hooks(node, gradient)
        self.accumulate_leaf(node, gradient)
        return None
    return visit(self, node, gradient, needed)


def _retained_before_hooks(visit, self, node, gradient, needed):
    if type(node) is G.Node and node.retained is not None and node.tensor_hooks:
        E._accumulate(node.retained, gradient, self.create_graph)
        retained, node.retained = node.retained, None
        try:
            return visit(self, node, gradient, needed)
        finally:
            node.retained = retained
    return visit(self, node, gradient, needed)


def _no_hooks_under_grad(visit, self, node, gradient, needed):
    if not self.accumulate and node.tensor_hooks:
        return _with_hooks(node, None, lambda: visit(self, node, gradient, needed))
    return visit(self, node, gradient, needed)


def _hooks_deferred(patch):
    """Non-leaf hooks are only observed, at the end of the pass, in the reverse of the order they were reached."""
    def make_hooks(run):
        def wrapped(self, node, gradient):
            if type(node) is G.Node:
                self.deferred = [*getattr(self, "deferred", []), (node, gradient)]
                return gradient
            return run(self, node, gradient)
        return wrapped

    def make_run(run_pass):
        def wrapped(self):
            captured = run_pass(self)
            for node, gradient in reversed(getattr(self, "deferred", [])):
                for hook in list(node.tensor_hooks.values()):
                    hook(E._as_tensor(gradient))
            return captured
        return wrapped
    patch(E._Pass, "run_tensor_hooks", make_hooks)
    patch(E._Pass, "run", make_run)


def _hook_on_unrequiring_accepted(patch):
    patch(T.Tensor, "register_hook", lambda register: lambda self, hook: (
        register(self, hook) if self.requires_grad else G.RemovableHandle({})))


def _post_hooks_first(patch):
    def accumulate_leaf(self, node, gradient):
        for hook in list((node.post_hooks or {}).values()):
            hook(node.tensor)
        E._accumulate(node.tensor, gradient, self.create_graph)
    patch(E._Pass, "accumulate_leaf", lambda original: accumulate_leaf)


def _hooks_follow_inplace(patch):
    def make(inplace):
        def wrapped(self, name, other):
            before = self.grad_fn
            result = inplace(self, name, other)
            if before is not None and self.grad_fn is not before and before.tensor_hooks:
                self.grad_fn.tensor_hooks, before.tensor_hooks = before.tensor_hooks, None
            return result
        return wrapped
    patch(T.Tensor, "_inplace", make)


# -- MODE --------------------------------------------------------------------------------------


def _no_grad_records(patch):
    patch(M.no_grad, "__init__", lambda init: lambda self: M._Mode.__init__(self, True))


def _exit_enables(patch):
    def make(exit_):
        def __exit__(self, *exc_info):
            M._state.enabled, M._state.inference = True, self.previous[1]  # grad mode on, whatever held before
            return False
        return __exit__
    patch(M._Mode, "__exit__", make)


def _set_grad_enabled_ignored(patch):
    def make(init):
        def __init__(self, mode):
            init(self, True)
        return __init__
    patch(M.set_grad_enabled, "__init__", make)


def _backward_needs_grad_mode(patch):
    _wrap_backward(patch, lambda backward, *args, **kwargs: backward(*args, **kwargs) if M._state.enabled else None)


def _detach_keeps_graph(patch):
    patch(T.Tensor, "detach", lambda detach: lambda self: self)


def _detach_copies(patch):
    patch(T.Tensor, "detach", lambda detach: lambda self: T.result(self.data.copy()))


def _grad_modes_override_inference(patch):
    patch(M.enable_grad, "public", lambda public: False)  # an enable_grad inside inference_mode leaves it
    patch(M.set_grad_enabled, "public", lambda public: False)


def _inference_tensors_saved(patch):
    def make(record):
        def record_(name, op, a, b, out, attrs):
            flags = [(t, t._inference) for t in (a, b) if t is not None]
            for tensor, _ in flags:
                tensor._inference = False
            try:
                return record(name, op, a, b, out, attrs)
            finally:
                for tensor, flag in flags:
                    tensor._inference = flag
        return record_
    patch(O, "record", make)


def _inference_inplace_allowed(patch):
    patch(T.Tensor, "_check_not_inference", lambda check: lambda self: None)


def _inference_views_of_outside_tensors(patch):
    def make(make_view):
        def _make_view(out, a, name, attrs):
            make_view(out, a, name, attrs)
            out._inference = out._inference or M._state.inference
        return _make_view
    patch(O, "_make_view", make)


# -- INPLACE -----------------------------------------------------------------------------------


def _versions_ignored(patch):
    patch(G, "_versions", lambda versions: lambda saved: G._NO_VERSIONS)


def _inplace_fault(change):
    def plant(patch):
        patch(T.Tensor, "_inplace", lambda inplace: lambda self, name, other: change(inplace, self, name, other))
    return plant


def _unrecorded(inplace, self, name, other):
    with M._Mode(False):
        return inplace(self, name, other)


def _leaf_inplace_allowed(inplace, self, name, other):
    if M._state.enabled and self.is_leaf and self.requires_grad:
        self.requires_grad = False
        try:
            return inplace(self, name, other)
        finally:
            self.requires_grad = True
    return inplace(self, name, other)


def _operand_ignored(inplace, self, name, other):
    return _unrecorded(inplace, self, name, other) if not self.requires_grad else inplace(self, name, other)


# -- VIEW ---------------------------------------------------------------------------------------

VIEW_OPS = [name for name, op in O.OPS.items() if op.view]


def _views_copy(patch):
    for name in VIEW_OPS:
        forward = O.OPS[name].forward
        patch.op(name, forward=lambda a, _forward=forward, **attrs: np.array(_forward(a, **attrs)), view=False)


def _advanced_index_aliases(patch):
    def make(getitem):
        def wrapped(tensor, index):
            out = getitem(tensor, index)
            if out._view is None:  # a copy: give it the source's counter, as if it were a view
                out._version = tensor._shared_version()
            return out
        return wrapped
    patch(T, "_getitem", make)


def _base_history_kept(patch):
    patch(T, "copy_slices", lambda copy_slices: lambda base, steps, update: base._grad_fn or copy_slices(
        base, steps, update))


def _stale_views_kept(patch):
    patch(T.Tensor, "_sync_view", lambda sync: lambda self: None)


def _views_count_apart(patch):
    def make(make_view):
        def wrapped(out, a, name, attrs):
            make_view(out, a, name, attrs)
            out._version = T._Version()
            out._view.seen = 0
        return wrapped
    patch(O, "_make_view", make)


def _check_without(flag: str):
    """The in-place check, blind to one view flag (multi_output, no_grad), or to the base with "leaf_base"."""
    def plant(patch):
        def make(check):
            def wrapped(self, operand_requires_grad):
                info = self._view
                if info is None:
                    return check(self, operand_requires_grad)
                if flag == "leaf_base":
                    self._view = None  # checked as a tensor of its own, whatever its base is
                else:
                    before = getattr(info, flag)
                    setattr(info, flag, False)
                try:
                    return check(self, operand_requires_grad)
                finally:
                    self._view = info
                    if flag != "leaf_base":
                        setattr(info, flag, before)
            return wrapped
        patch(T.Tensor, "_check_inplace", make)
    return plant


def _setitem_keeps_old_gradient(patch):
    patch.op("_overwrite", rules=(lambda g, a, b, out, attrs: g, O.OPS["_overwrite"].rules[1]))


def _repeated_reads_not_summed(patch):
    def put(a, index, shape):
        out = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=np.asarray(a).dtype)
        out[index.ravel()] = np.broadcast_to(a, index.shape).ravel()  # the last write wins
        return out.reshape(shape)
    patch(O, "_put_add_forward", lambda original: put)

    def last_read(g, a, b, out, attrs):  # expand's and broadcast_to's gradient sums reads (not _put_add): the last
        shape = attrs["in_shape"]
        extra = len(O.shape_of(g)) - len(shape)
        return O.call("getitem", g, index=(-1,) * extra + tuple(slice(-1, None) if n == 1 else slice(None)
                                                                for n in shape))
    for name in ("expand", "broadcast_to"):
        patch.op(name, rules=(last_read,))


def _scatter_passes_overwritten(patch):
    patch.op("scatter", rules=(lambda g, a, b, out, attrs: g, O.OPS["scatter"].rules[1]))


def _detach_out_of_place(patch):
    """detach_ returns a detached tensor and leaves the one it was called on as it was (a caller that ignores the
    result, as in-place methods allow, keeps a recorded tensor)."""
    patch(T.Tensor, "detach_", lambda original: lambda self: self.detach())


def _expanded_views_copied_on_write(patch):
    """An in-place operation through a view whose positions share elements silently works on a private copy."""
    def check(self):
        if V.overlapping(self.data):
            self.data = np.array(self.data)
    patch(T.Tensor, "_check_not_overlapping", lambda original: check)


def _retain_stays_behind(patch):
    def rebase(self, node):
        self._grad_fn, self._requires_grad = node, True
    patch(T.Tensor, "_rebase", lambda original: rebase)


# -- SHAPE and DERIV ---------------------------------------------------------------------------


def _grad_results_flattened(patch):
    _wrap_grad(patch, lambda grad, *args, **kwargs: tuple(
        r if r is None or r.data.ndim < 2 else T.Tensor(r.data.reshape(-1)) for r in grad(*args, **kwargs)))


def _broadcast_not_reduced(patch):
    patch(E, "_conform", lambda conform: lambda gradient, node: (
        gradient if gradient.shape != node.shape else conform(gradient, node)))


def _dtype_not_restored(patch):
    patch(E, "_conform", lambda conform: lambda gradient, node: (
        O.sum_to(gradient, node.shape) if gradient.shape != node.shape else gradient))

    def make(accumulate):
        def wrapped(tensor, gradient, create_graph):
            if tensor._grad is None and not create_graph:
                tensor.grad = T.Tensor(np.array(O.data_of(gradient), copy=True))
                return None
            return accumulate(tensor, gradient, create_graph)
        return wrapped
    patch(E, "_accumulate", make)


def _sin_in_float32(patch):
    def rule(g, a, b, o, t):
        if isinstance(a, np.ndarray):
            return g * np.cos(a).astype(np.float32).astype(a.dtype)
        return g * O.cos(a)
    patch.op("sin", rules=(rule,))


def _rounded_to_float32(value):
    """value rounded to float32 and back to its own dtype: what a float32 computation inside a float64 pass keeps."""
    return O.cast(O.cast(value, np.float32), O.data_of(value).dtype)


def _sequence_forms_as(form: str) -> Callable[[Patch], None]:
    """engine.grad's "a tensor or a sequence of tensors", read wrongly for one form: a tuple taken for one tensor
    (`isinstance(value, list)`), or a bare tensor iterated over its first dimension (`list(value)`)."""
    def as_list(value: Any) -> list:
        if form == "tuple":
            return list(value) if isinstance(value, list) else [value]
        return [value] if value is None else list(value)

    def plant(patch: Patch) -> None:
        patch(E, "_as_list", lambda original: as_list)
    return plant


def _backward_in_float32(*names: str) -> Callable[[Patch], None]:
    """The backward of these ops computed in float32, even in a float64 pass: the incoming gradient rounded to
    float32 on the way in and the result on the way out (a float32 kernel, or a cast someone forgot). A linear
    op's backward only moves, adds and scales g, so the fault shows only where g is not a float32 number: the
    corpus must feed these ops such gradients (spec/tolerances.yaml)."""
    def in_float32(rule):
        return lambda g, a, b, o, t: _rounded_to_float32(rule(_rounded_to_float32(g), a, b, o, t))

    def plant(patch):
        for name in names:
            patch.op(name, rules=tuple(None if rule is None else in_float32(rule) for rule in O.OPS[name].rules))
    return plant


def _tanh_second_derivative_halved(patch):
    patch.op("tanh", rules=(lambda g, a, b, o, t: g * (1 - o * O.constant(O.data_of(o), o)),))



# -- the backward pass (PASS) ----------------------------------------------------------------------


def _hooks_without_grad_mode(run, self, node, gradient):
    with M._Mode(False):
        return run(self, node, gradient)


def _post_hooks_reversed(patch):
    def make(accumulate):
        def accumulate_leaf(self, node, gradient):
            hooks = node.post_hooks
            node.post_hooks = None if hooks is None else dict(reversed(list(hooks.items())))
            try:
                return accumulate(self, node, gradient)
            finally:
                node.post_hooks = hooks
        return accumulate_leaf
    patch(E._Pass, "accumulate_leaf", make)


def _empty_inputs_mean_all(original, output, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    return original(output, gradient, retain_graph, create_graph, None if inputs is not None and not list(inputs)
                    else inputs)


def _one_pass_per_output(original, output, gradient=None, retain_graph=None, create_graph=False, inputs=None, *,
                         grad_tensors=None):
    """Several outputs run as one pass each (retaining the graph between them), not as one pass."""
    if not isinstance(output, (list, tuple)):
        return original(output, gradient, retain_graph, create_graph, inputs)
    gradients = grad_tensors if grad_tensors is not None else [None] * len(output)
    for index, (root, given) in enumerate(zip(output, gradients, strict=True)):
        original(root, given, True if index < len(output) - 1 else retain_graph, create_graph, inputs)


def _node_prehooks_first(patch):
    """A node's pre-hooks run before the tensor's own hooks and its retained .grad."""
    def make(visit):
        def visit_prehooks_first(self, node, gradient, needed):
            if type(node) is G.Node and node.hooks_before:
                hooks, node.hooks_before = node.hooks_before, None
                try:
                    gradient = self.run_node_hooks(hooks, gradient, (E._as_tensor(gradient),))
                    return visit(self, node, gradient, needed)
                finally:
                    node.hooks_before = hooks
            return visit(self, node, gradient, needed)
        return visit_prehooks_first
    patch(E._Pass, "visit", make)


def _accumulation_races(patch):
    """.grad is read, then written back with the sum a moment later, with no lock: another thread's update in
    between is lost."""
    def make(accumulate):
        def racing(tensor, gradient, create_graph):
            before = None if tensor._grad is None else tensor._grad.data.copy()
            time.sleep(0.0002)  # the moment another thread's pass needs
            data = np.asarray(O.data_of(gradient), dtype=tensor.data.dtype)
            tensor.grad = T.Tensor(data.copy() if before is None else before + data)
        return racing
    patch(E, "_accumulate", make)


def _state_shared_by_threads(shared: tuple[str, ...]):
    """The engine's per-thread state with the attributes in `shared` made one for the whole process."""
    def plant(patch):
        values = {name: getattr(M._ThreadState, name) for name in shared}

        def shared_attribute(name):
            return property(lambda self: values[name], lambda self, value: values.__setitem__(name, value))

        state_class = type("SharedState", (M._ThreadState,), {name: shared_attribute(name) for name in shared})
        patch(M, "_state", lambda state: state_class())
    return plant


def _pack_all_fault(change: Callable[[Callable, tuple], Any]):
    """Replace pack_all where the graph and custom functions call it by change(original, saved)."""
    def plant(patch):
        for module in (G, F):
            patch(module, "pack_all", lambda pack_all: lambda saved: change(pack_all, saved))
    return plant


def _packed_in_reverse(pack_all, saved):
    return S.PackedValues(reversed(pack_all(tuple(reversed(saved)))))


def _outermost_hooks(pack_all, saved):
    hooks = M._state.saved_hooks
    M._state.saved_hooks = hooks[:1]
    try:
        return pack_all(saved)
    finally:
        M._state.saved_hooks = hooks


def _pack_unchecked(pack_all, saved):
    """Each value through pack without looking at its version before and after."""
    pack_hook, unpack_hook = M._state.saved_hooks[-1]
    packed = []
    with M.no_grad():
        for tensor in saved:
            if tensor is None:
                packed.append(None)
                continue
            value, counter = pack_hook(tensor), tensor._shared_version()
            packed.append(S.Packed(value, unpack_hook, counter, counter.value))
    return S.PackedValues(packed)


def _unpack_skipped(patch):
    """Nodes use what pack returned, without calling unpack."""
    for module in (G, F):
        patch(module, "unpack_all", lambda unpack_all: lambda saved: tuple(
            None if value is None else value.packed for value in saved))


def _unpacked_as_constants(patch):
    """Under create_graph, an unpacked value enters the gradient's graph as a constant, without the saved history."""
    import gradspec.reference_engine.saved_hooks as H
    patch(H.Packed, "unpack", lambda unpack: lambda self: _without_source(unpack, self))


def _without_source(unpack, packed):
    source, packed.source = packed.source, None
    try:
        return unpack(packed)
    finally:
        packed.source = source


def _post_hook_result_kept(patch):
    """A value a post-accumulate-grad hook returns becomes the leaf's .grad instead of raising."""
    def make(accumulate_leaf):
        def accumulate_leaf_keeping(self, node, gradient):
            E._accumulate(node.tensor, gradient, self.create_graph)
            for hook in list((node.post_hooks or {}).values()):
                returned = hook(node.tensor)
                if returned is not None:
                    node.tensor.grad = returned
        return accumulate_leaf_keeping
    patch(E._Pass, "accumulate_leaf", make)


def _inner_passes_skipped(patch):
    """A pass started while another runs does nothing."""
    running = []

    def make(run):
        def run_unless_nested(self):
            if running:
                return {}
            running.append(self)
            try:
                return run(self)
            finally:
                running.pop()
        return run_unless_nested
    patch(E._Pass, "run", make)


def _counted_recursively(patch):
    """The dependency count of a pass found by recursion, one Python frame per node along a chain."""
    def count_all(self):
        dependencies = dict.fromkeys(self.roots, 0)

        def visit(node):
            for child in node.next_nodes:
                if child is None:
                    continue
                first = child not in dependencies
                dependencies[child] = dependencies.get(child, 0) + 1
                if first:
                    visit(child)
        for root in self.roots:
            visit(root)
        return dependencies
    patch(E._Pass, "count_all", lambda original: count_all)


def _frees_every_reachable_node(patch):
    def make(run):
        def run_and_free(self):
            captured = run(self)
            if not self.retain_graph:
                for node in self.discover():
                    if type(node) is G.Node and node.saved is not G.NOTHING_SAVED:
                        node.saved = G.FREED
            return captured
        return run_and_free
    patch(E._Pass, "run", make)


# -- custom functions (CUSTOM) ---------------------------------------------------------------------


def _custom_run_fault(change):
    """Replace CustomNode.run by change(original, node, slots, create_graph, release, needed)."""
    def plant(patch):
        patch(F.CustomNode, "run", lambda run: lambda self, slots, create_graph, release, needed: change(
            run, self, slots, create_graph, release, needed))
    return plant


def _returned_changed(change):
    """A CustomNode.run fault that passes what the backward returns (a tuple) through change(returned, node)."""
    def fault(run, node, slots, create_graph, release, needed):
        backward = node.function.backward

        def changed(ctx, *grads):
            returned = backward(ctx, *grads)
            return change(returned if isinstance(returned, tuple) else (returned,), node)
        original, node.function = node.function, type(node.name, (node.function,), {"backward": staticmethod(changed)})
        try:
            return run(node, slots, create_graph, release, needed)
        finally:
            node.function = original
    return _custom_run_fault(fault)


def _none_as_zeros(returned, node):
    return tuple(T.Tensor(np.zeros(meta[0])) if value is None and meta is not None else value
                 for value, meta in zip(returned, node.inputs, strict=False))


def _padded_or_cut(returned, node):
    return (tuple(returned) + (None,) * len(node.inputs))[:len(node.inputs)]


def _resized(returned, node):
    return tuple(value if value is None or meta is None else T.Tensor(np.resize(value.data, meta[0]))
                 for value, meta in zip(returned, node.inputs, strict=False))


def _never_released(run, node, slots, create_graph, release, needed):
    return run(node, slots, create_graph, False, needed)


def _backward_without_grad_mode(run, node, slots, create_graph, release, needed):
    with M._Mode(False):
        return run(node, slots, create_graph, release, needed)


def _no_hooks_on_custom_outputs(run, self, node, gradient):
    if node.next_nodes and type(node.next_nodes[0]) is F.CustomNode:
        return gradient
    return run(self, node, gradient)

class _LazyZeros(T.Tensor):
    """A gradient known to be zero, kept without values: reading them raises (PyTorch's efficient zero tensors)."""
    __slots__ = ()

    @property
    def data(self):
        raise RuntimeError("Cannot convert a lazy zero tensor to an array")


def _lazy_zero_gradients(patch):
    """grad hands out a gradient whose values are all zero as a lazy zero tensor that cannot be read."""
    def lazy(result):
        if result is None or result.data.size == 0 or np.any(result.data) or result.grad_fn is not None:
            return result
        zeros = _LazyZeros.__new__(_LazyZeros)
        for slot in ("data", "_requires_grad", "_grad_fn", "_grad", "_version", "_accumulator", "_view"):
            descriptor = T.Tensor.__dict__[slot]
            descriptor.__set__(zeros, descriptor.__get__(result))
        return zeros

    _wrap_grad(patch, lambda grad, *args, **kwargs: tuple(lazy(r) for r in grad(*args, **kwargs)))


FAULTS: dict[str, Fault] = {fault.rule: fault for fault in [
    Fault("LIFE-1", "a pass frees nothing, so running a node again never raises", _never_free),
    Fault("LIFE-2", "retain_graph defaults to false even with create_graph", _retain_defaults_false),
    Fault("LIFE-3", "a node run a second time computes with its saved values doubled", _repeat_doubles_saved),
    Fault("LIFE-4", "a node freed by one output's pass stays usable by another output's", _free_per_output),
    Fault("ACC-1", "backward replaces .grad instead of adding to it", _replace_grad),
    Fault("ACC-2", "a node runs when its first gradient arrives; later paths are dropped", _cap_dependencies),
    Fault("ACC-3", "a .grad the user assigned is replaced by the next backward", _user_grad_replaced),
    Fault("ACC-4", "zeroing .grad in place does nothing", _zeroing_does_nothing),
    Fault("ACC-5", "operands that do not require grad get a .grad from backward", _constants_get_gradients),
    Fault("HIGHER-1", "create_graph is ignored: gradients are never recorded", _create_graph_ignored),
    Fault("HIGHER-2", "under create_graph, saved values enter the gradient graph as constants", _saved_values_detached),
    Fault("HIGHER-3", "materialized zeros require grad without create_graph (PyTorch 2.1 to 2.9)",
          _materialized_zeros_require_grad),
    Fault("HIGHER-4", "a leaf's .grad after a create_graph backward is stored without its graph", _leaf_grad_detached),
    Fault("HIGHER-5", "the implicit output gradient requires grad, so constant gradients do too",
          _root_gradient_requires_grad),
    Fault("HIGHER-7", "differentiating an output with no graph gives zeros", _no_graph_gives_zeros),
    Fault("HIGHER-8", "relu's derivative is recorded through a straight-through step, so differentiating it gives "
          "ones where it should give zeros", _straight_through_relu),
    Fault("GRAD-1", "grad also accumulates into its leaf inputs' .grad", _grad_writes_leaves),
    Fault("GRAD-2", "grad returns the gradients of several inputs in reverse order", _results_reversed),
    Fault("GRAD-3", "an unused input gets None without allow_unused", _unused_gives_none),
    Fault("GRAD-4", "materialize_grads gives None instead of zeros", _materialize_ignored),
    Fault("GRAD-5", "materialize_grads with allow_unused=False is accepted", _contradiction_accepted),
    Fault("GRAD-6", "an input that does not require grad gets zeros", _any_input_differentiable),
    Fault("GRAD-7", "an output that does not require grad is differentiated anyway", _any_output_differentiable),
    Fault("GRAD-8", "an input listed twice gets zeros at its second place", _repeats_get_zeros),
    Fault("GRAD-9", "backward ignores `inputs` and accumulates into every leaf", _backward_inputs_ignored),
    Fault("GRAD-10", "a non-leaf listed in backward's inputs does not go on retaining", _listed_nonleaf_forgets),
    Fault("GRAD-11", "backward drops listed tensors that do not require grad", _unrequiring_inputs_dropped),
    Fault("GRAD-13", "takes a tuple given to grad (outputs, inputs or output gradients) for one tensor, testing for a "
          "list where any sequence is meant", _sequence_forms_as("tuple")),
    Fault("VJP-1", "an implicit output gradient is ones of any shape", _root_gradient_fault(_implicit_anything)),
    Fault("VJP-2", "an explicit output gradient is taken as ones", _root_gradient_fault(_explicit_ignored)),
    Fault("VJP-3", "an output gradient of the wrong shape is resized to fit", _root_gradient_fault(_shape_unchecked)),
    Fault("VJP-4", "a wrong number of output gradients is padded or cut", _count_unchecked),
    Fault("VJP-5", "only the first of several outputs is differentiated", _first_output_only),
    Fault("VJP-6", "an implicit output gradient is refused unless the output is 0-d",
          _root_gradient_fault(_implicit_only_0d)),
    Fault("LEAF-1", "a tensor made with requires_grad is a non-leaf", _user_tensors_not_leaves),
    Fault("LEAF-2", "argmax is recorded, so its integer result requires grad",
          lambda patch: patch.op("argmax", differentiable=True)),
    Fault("LEAF-3", "an integer tensor may require grad", _requires_grad_wrapper(_integers_may_require_grad)),
    Fault("LEAF-4", "requires_grad_(False) on a non-leaf switches it off", _requires_grad_wrapper(_nonleaf_switched_off)),
    Fault("LEAF-5", "requires_grad_() with no argument means False", _requires_grad_wrapper(_default_false)),
    Fault("LEAF-6", "leaves with equal values share one gradient", _leaves_shared_by_value),
    Fault("RETAIN-1", "every non-leaf retains its gradient", _every_nonleaf_retains),
    Fault("RETAIN-2", "a retained .grad is replaced by each backward", _retained_replaced),
    Fault("RETAIN-3", "retain_grad on a leaf makes it accumulate twice", _retain_on_leaf_doubles),
    Fault("RETAIN-4", "retain_grad on a tensor that does not require grad is ignored", _retain_unrequiring_ignored),
    Fault("RETAIN-6", "reading a non-retained non-leaf's .grad does not warn", _no_access_warning),
    Fault("HOOK-1", "hooks receive twice the gradient", _hooks_fault(_hooks_see_double)),
    Fault("HOOK-2", "hooks on one tensor run in reverse registration order", _hooks_fault(_hooks_reversed)),
    Fault("HOOK-3", "a leaf accumulates the gradient from before its hooks", _visit_fault(_leaf_ignores_hook_result)),
    Fault("HOOK-4", "hooks are forgotten after one pass", _hooks_fault(_hooks_forgotten)),
    Fault("HOOK-5", "hooks run when the first path's gradient arrives, not the sum", _cap_dependencies),
    Fault("HOOK-6", "non-leaf hooks run after the rest of the pass, in reverse", _hooks_deferred),
    Fault("HOOK-7", "a hook on a tensor that does not require grad is accepted", _hook_on_unrequiring_accepted),
    Fault("HOOK-8", "a hook result of another shape is accepted", _hooks_fault(_hook_shape_unchecked)),
    Fault("HOOK-9", "a hook's exception reaches the caller wrapped in another", _hooks_fault(_hook_errors_wrapped)),
    Fault("HOOK-10", "a retained .grad holds the gradient from before the hooks", _visit_fault(_retained_before_hooks)),
    Fault("HOOK-11", "tensor hooks do not fire under grad", _visit_fault(_no_hooks_under_grad)),
    Fault("HOOK-12", "post-accumulate-grad hooks run before .grad is updated", _post_hooks_first),
    Fault("HOOK-13", "an in-place update moves earlier hooks to the new value", _hooks_follow_inplace),
    Fault("MODE-1", "no_grad records like grad mode", _no_grad_records),
    Fault("MODE-2", "leaving a grad-mode block enables grad instead of restoring", _exit_enables),
    Fault("MODE-3", "set_grad_enabled(False) does not disable recording", _set_grad_enabled_ignored),
    Fault("MODE-4", "backward under no_grad does nothing", _backward_needs_grad_mode),
    Fault("MODE-5", "detach returns the tensor itself, graph and all", _detach_keeps_graph),
    Fault("MODE-6", "detach copies the values and starts a version counter of its own", _detach_copies),
    Fault("INPLACE-1", "saved values are used whatever their version", _versions_ignored),
    Fault("INPLACE-2", "in-place updates are never recorded", _inplace_fault(_unrecorded)),
    Fault("INPLACE-3", "an in-place update of a leaf that requires grad is allowed in grad mode",
          _inplace_fault(_leaf_inplace_allowed)),
    Fault("VIEW-1", "view ops return copies", _views_copy),
    Fault("VIEW-2", "indexing with an integer list shares the source's version counter", _advanced_index_aliases),
    Fault("VIEW-3", "an in-place update of a view leaves the base's history as it was", _base_history_kept),
    Fault("VIEW-4", "a view keeps its history after its base is updated in place", _stale_views_kept),
    Fault("VIEW-5", "each view has a version counter of its own", _views_count_apart),
    Fault("VIEW-6", "views of a leaf that requires grad may be updated in place in grad mode",
          _check_without("leaf_base")),
    Fault("VIEW-7", "outputs of unbind, split and chunk may be updated in place", _check_without("multi_output")),
    Fault("VIEW-8", "views made under no_grad may be updated in place in grad mode", _check_without("no_grad")),
    Fault("VIEW-10", "assignment into a subscript leaves the old history the gradient of the assigned positions",
          _setitem_keeps_old_gradient),
    Fault("VIEW-11", "a position read or written several times keeps one contribution (the last)",
          _repeated_reads_not_summed),
    Fault("VIEW-12", "scatter passes the gradient to the positions it overwrote", _scatter_passes_overwritten),
    Fault("MODE-7", "detach_ works out of place, like detach: the tensor itself stays recorded", _detach_out_of_place),
    Fault("MODE-9", "enable_grad and set_grad_enabled(True) nested inside inference_mode record again",
          _grad_modes_override_inference),
    Fault("MODE-10", "a recorded operation saves an inference tensor for backward without complaint",
          _inference_tensors_saved),
    Fault("MODE-11", "inference tensors take in-place updates outside inference_mode", _inference_inplace_allowed),
    Fault("MODE-12", "a view made under inference_mode of a tensor made outside it is an inference tensor",
          _inference_views_of_outside_tensors),
    Fault("VIEW-13", "an in-place operation through an expanded view writes into a private copy of its values",
          _expanded_views_copied_on_write),
    Fault("RETAIN-7", "retain_grad stays with the value before an in-place update", _retain_stays_behind),
    Fault("INPLACE-4", "an in-place update with an operand that requires grad is not recorded",
          _inplace_fault(_operand_ignored)),
    Fault("SHAPE-1", "grad returns gradients of two or more dimensions flattened", _grad_results_flattened),
    Fault("SHAPE-2", "a broadcast operand's gradient is not summed back to its shape", _broadcast_not_reduced),
    Fault("SHAPE-3", "a leaf's gradient keeps the wider dtype of the operation", _dtype_not_restored),
    Fault("SHAPE-5", "hands out an all-zero gradient as a lazy zero tensor whose values cannot be read",
          _lazy_zero_gradients),
    Fault("SHAPE-4", "mean's gradient is not divided by the element count",
          lambda patch: patch.op("mean", rules=(O._sum_grad,))),
    Fault("SHAPE-6", "exp computes and gives back its result in float32, even in a float64 run",
          lambda patch: patch.op("exp", forward=lambda a: np.exp(a).astype(np.float32))),
    Fault("DERIV-1", "sin's derivative is computed in float32, even in a float64 backward", _sin_in_float32),
    Fault("DERIV-2", "tanh's derivative rule records only half its dependence on the output",
          _tanh_second_derivative_halved),
    Fault("PASS-1", "hooks run with grad mode off even under create_graph", _hooks_fault(_hooks_without_grad_mode)),
    Fault("PASS-2", "post-accumulate-grad hooks run in reverse registration order", _post_hooks_reversed),
    Fault("PASS-3", "backward with an empty inputs list accumulates into every leaf",
          lambda patch: _wrap_backward(patch, _empty_inputs_mean_all)),
    Fault("PASS-4", "a pass frees what every reachable node saved, run or not", _frees_every_reachable_node),
    Fault("PASS-5", "a pass counts its nodes by recursion, a Python frame per node", _counted_recursively),
    Fault("PASS-7", "a node's pre-hooks run before the tensor's hooks and retain_grad", _node_prehooks_first),
    Fault("PASS-8", "a pass started inside another does nothing", _inner_passes_skipped),
    Fault("PASS-12", "a value a post-accumulate-grad hook returns becomes .grad", _post_hook_result_kept),
    Fault("PASS-9", "passes in two threads add into one .grad without a lock, losing updates", _accumulation_races),
    Fault("PASS-10", "grad mode is one flag for the whole process", _state_shared_by_threads(("enabled",))),
    Fault("SAVED-1", "a custom function's saved values are packed in reverse order", _pack_all_fault(_packed_in_reverse)),
    Fault("SAVED-2", "nodes use what pack returned, without calling unpack", _unpack_skipped),
    Fault("SAVED-3", "the outermost block's hooks apply, not the innermost's", _pack_all_fault(_outermost_hooks)),
    Fault("SAVED-4", "saved-tensor hooks are shared by every thread", _state_shared_by_threads(("saved_hooks",))),
    Fault("SAVED-5", "a pack hook may modify its input in place unnoticed", _pack_all_fault(_pack_unchecked)),
    Fault("SAVED-7", "under create_graph, unpacked values enter the gradient's graph as constants",
          _unpacked_as_constants),
    Fault("PASS-6", "several outputs are differentiated in one pass each", lambda patch: patch(
        reference_engine, "backward", lambda original: lambda *args, **kwargs: _one_pass_per_output(
            original, *args, **kwargs))),
    Fault("CUSTOM-1", "a custom function's outputs require grad whenever grad mode is on",
          lambda patch: patch(F, "_records", lambda records: lambda args: M.is_grad_enabled())),
    Fault("CUSTOM-2", "a custom backward receives only the first path's gradient of an output",
          lambda patch: patch(F.Slots, "__add__", lambda add: lambda self, other: self)),
    Fault("CUSTOM-3", "a custom backward may return too many or too few gradients", _returned_changed(_padded_or_cut)),
    Fault("CUSTOM-4", "a custom backward's gradient of the wrong shape is resized to fit", _returned_changed(_resized)),
    Fault("CUSTOM-6", "a custom backward's None is taken as zeros", _returned_changed(_none_as_zeros)),
    Fault("CUSTOM-7", "outputs marked non-differentiable still require grad",
          lambda patch: patch(F.FunctionCtx, "mark_non_differentiable", lambda mark: lambda self, *tensors: None)),
    Fault("CUSTOM-8", "set_materialize_grads(False) is ignored",
          lambda patch: patch(F.FunctionCtx, "set_materialize_grads", lambda setter: lambda self, value: None)),
    Fault("CUSTOM-9", "a custom function's saved values are never freed", _custom_run_fault(_never_released)),
    Fault("CUSTOM-10", "a custom backward runs with grad mode off even under create_graph",
          _custom_run_fault(_backward_without_grad_mode)),
    Fault("CUSTOM-11", "once_differentiable changes nothing",
          lambda patch: patch(reference_engine, "once_differentiable", lambda decorator: lambda backward: backward)),
    Fault("CUSTOM-13", "mark_dirty is ignored: the modified input keeps its old history",
          lambda patch: patch(F.FunctionCtx, "mark_dirty", lambda mark: lambda self, *tensors: None)),
    Fault("CUSTOM-14", "hooks on a custom function's outputs never run", _hooks_fault(_no_hooks_on_custom_outputs)),
    # conventions (ENGINE-SPECIFIC), planted all the same so that their kink cases are shown to bite
    Fault("KINK-7", "max along a dim splits a tied maximum's gradient, as a full max does",
          lambda patch: patch.op("max", rules=(O._extreme_grad,))),
    Fault("KINK-8", "the 2-norm's gradient is x / norm even at the zero vector (0 / 0)",
          lambda patch: patch.op("norm", rules=(lambda g, a, b, out, attrs: O._kept(g, attrs) * a / O._kept(out, attrs),))),
]}


# Realistic faults: what real engines have shipped, beside the one convenient fault per rule above. Each breaks
# the rule it names the way a real implementation does (a lock-free accumulation, a missing transpose, a float32
# backward inside a float64 run, a flag that does nothing), and tests/test_faults.py requires a case citing that
# rule to catch it, exactly as for FAULTS. A rule may have several.
REALISTIC: list[Fault] = [
    # A linear op's backward computed in float32 inside a float64 pass, one family of linear ops at a time: each is
    # caught only because the corpus feeds these ops gradients float32 cannot hold (spec/tolerances.yaml).
    Fault("DERIV-1", "computes the backward of sum, mean and cumsum in float32, even in a float64 pass",
          _backward_in_float32("sum", "mean", "cumsum")),
    Fault("DERIV-1", "computes the backward of the view ops (reshape, transpose, permute, squeeze, select, ...) "
          "in float32, even in a float64 pass",
          _backward_in_float32("reshape", "view", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "expand",
                               "broadcast_to", "getitem", "select", "narrow", "diagonal")),
    Fault("DERIV-1", "computes the backward of flip, roll, repeat and tile in float32, even in a float64 pass",
          _backward_in_float32("flip", "roll", "repeat", "tile")),
    Fault("DERIV-1", "computes the backward of cat and stack in float32, even in a float64 pass",
          _backward_in_float32("_put_add")),  # cat and stack place each operand with _put_add (joining.py)
    Fault("DERIV-1", "computes the backward of the index ops (gather, index_select, take, scatter, indexing with "
          "integer lists) in float32, even in a float64 pass",
          _backward_in_float32("_index_copy", "gather", "index_select", "take", "scatter", "scatter_add",
                               "index_add")),
    Fault("DERIV-1", "computes the backward of matmul, outer and dot in float32, even in a float64 pass",
          _backward_in_float32("matmul", "outer", "dot")),
    Fault("DERIV-1", "computes the backward of trace, diag, triu and tril in float32, even in a float64 pass",
          _backward_in_float32("trace", "diag", "triu", "tril")),
    Fault("DERIV-1", "computes the backward of clone, where, masked_fill and lerp in float32, even in a float64 pass",
          _backward_in_float32("clone", "where", "masked_fill", "lerp")),
    # How an autograd argument is written (a bare tensor, a list, a tuple): engines that test `isinstance(x, list)`
    # or call `list(x)` get one form wrong, and a corpus that always passes lists never sees it.
    Fault("GRAD-13", "iterates a bare tensor given to grad (outputs, inputs or output gradients) over its first "
          "dimension as if it were a sequence of tensors", _sequence_forms_as("tensor")),
]


def _dirty_ignored_like_pytorch(patch):
    """mark_dirty ignored as PyTorch ignores an input returned without it: the output is a new tensor sharing the
    input's values, and the input keeps its old history."""
    def make(apply):
        def apply_without_dirty(cls, *args):
            before = {id(a): (a, a._grad_fn, a._requires_grad) for a in args if isinstance(a, T.Tensor)}
            outputs = apply.__func__(cls, *args)
            single = isinstance(outputs, T.Tensor)
            fresh = []
            for output in ((outputs,) if single else outputs):
                if id(output) in before:
                    tensor, grad_fn, requires_grad = before[id(output)]
                    alias = T.Tensor(output.data)
                    alias._grad_fn, alias._requires_grad = output._grad_fn, output._requires_grad
                    tensor._grad_fn, tensor._requires_grad = grad_fn, requires_grad
                    output = alias
                fresh.append(output)
            return fresh[0] if single else tuple(fresh)
        return classmethod(apply_without_dirty)
    patch(F.FunctionCtx, "mark_dirty", lambda mark: lambda self, *tensors: None)
    patch(F.Function, "apply", make)


def _forward_with_grad_mode(patch):
    """A custom function's forward runs in the caller's grad mode, so what it computes and saves is recorded."""
    patch(F, "_forward_mode", lambda mode: nullcontext)


def _one_traversal_per_input(patch):
    """grad of several inputs as one pass per input, retaining the graph until the last (a loop over inputs)."""
    def grad(original, outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, **kwargs):
        inputs = [inputs] if isinstance(inputs, T.Tensor) else list(inputs)
        if len(inputs) < 2:
            return original(outputs, inputs, grad_outputs, retain_graph, create_graph, **kwargs)
        results = []
        for index, tensor in enumerate(inputs):
            last = index == len(inputs) - 1
            results += original(outputs, [tensor], grad_outputs, retain_graph if last else True, create_graph, **kwargs)
        return tuple(results)
    _wrap_grad(patch, grad)


def _gradients_in_grad_mode(patch):
    """Without create_graph the rules still run in grad mode on tensors, so a gradient computed from an output
    gradient that requires grad is recorded too (an engine that forgets to switch recording off)."""
    def make(init):
        def init_recording(self, roots, root_grads, retain_graph, create_graph, targets, accumulate):
            init(self, roots, root_grads, retain_graph, create_graph or any(g.requires_grad for g in root_grads),
                 targets, accumulate)
            self.retain_graph = create_graph if retain_graph is None else bool(retain_graph)
        return init_recording
    patch(E._Pass, "__init__", make)


def _passed_gradient_detached(patch):
    """Under create_graph, an output gradient that reaches a result untouched is handed back detached."""
    def grad(original, *args, **kwargs):
        results = original(*args, **kwargs)
        given = _grad_args(args, kwargs)
        supplied = given.get("grad_outputs") or ()
        supplied = [supplied] if isinstance(supplied, T.Tensor) else list(supplied)
        if not given.get("create_graph"):
            return results
        return tuple(r.detach() if any(r is g for g in supplied) else r for r in results)
    _wrap_grad(patch, grad)


def _every_retained_nonleaf_filled(patch):
    """backward with inputs runs the whole graph and filters only the leaves, so retained non-leaves off the
    listed paths are filled too."""
    patch(E._Pass, "prune", lambda prune: lambda self, parents: set(parents))


REALISTIC += [
    Fault("CUSTOM-13", "ignores mark_dirty as PyTorch ignores an input returned without it: the output is a new "
          "tensor sharing the input's values, and the input keeps its old history", _dirty_ignored_like_pytorch),
    Fault("CUSTOM-1", "runs a custom function's forward in the caller's grad mode, recording what it computes",
          _forward_with_grad_mode),
    Fault("GRAD-2", "makes one traversal per input of grad, retaining the graph between them", _one_traversal_per_input),
    Fault("HIGHER-3", "keeps recording during a pass without create_graph when an output gradient requires grad",
          _gradients_in_grad_mode),
    Fault("HIGHER-5", "hands back an output gradient that passed untouched under create_graph detached from its graph",
          _passed_gradient_detached),
    Fault("GRAD-9", "fills every retained non-leaf under backward with inputs, on the listed paths or not",
          _every_retained_nonleaf_filled),
]


def _unpacked_once_per_pass(patch):
    """A custom backward's saved values are unpacked at its first read in a pass and cached for the others."""
    cache: dict[int, tuple] = {}

    def make_take(take):
        def take_cached(self):
            if id(self) not in cache:
                cache[id(self)] = take(self)
            return cache[id(self)]
        return take_cached

    def make_run(run):
        def run_then_forget(self, slots, create_graph, release, needed):
            try:
                return run(self, slots, create_graph, release, needed)
            finally:
                cache.pop(id(self), None)
        return run_then_forget
    patch(F.CustomNode, "take_saved_tensors", make_take)
    patch(F.CustomNode, "run", make_run)


REALISTIC.append(Fault("SAVED-2", "unpacks a custom function's saved values at the backward's first read and caches "
                       "them for its later reads in the pass", _unpacked_once_per_pass))





# -- a transpose missing or misplaced in a linear-algebra rule (issue 23) ---------------------------------------
# Invisible wherever the matrices are symmetric or 1x1, so the cases of solve, inv and det use matrices that are not.


def _solve_without_transpose(patch):
    """solve's rules with A^-1 where A^-T belongs: gb = solve(A, g) and gA = -gb out^T."""
    def grad_b(g, a, b, out, attrs):
        return O.solve(a, g)

    def grad_a(g, a, b, out, attrs):
        gb = O.solve(a, g)
        return -O.call("outer", gb, out) if len(O.shape_of(out)) == 1 else -(gb @ O.swap_last(out))
    patch.op("solve", rules=(grad_a, grad_b))


def _inv_untransposed(patch):
    """inv's gradient as -inv g inv, where -inv^T g inv^T belongs."""
    patch.op("inv", rules=(lambda g, a, b, out, attrs: -(out @ g @ out),))


def _inv_double_backward_transposed(patch):
    """inv's rule gives the right values, but what it records under create_graph differentiates its last factor,
    mT(out), as if it were out: the derivative of the derivative rule has a transposed term."""
    def rule(g, a, b, out, attrs):
        last = O.swap_last(out)
        if isinstance(out, T.Tensor):  # recorded: the value of mT(out), the graph of out itself
            last = out + O.constant(O.data_of(last) - out.data, out)
        return -(O.swap_last(out) @ g @ last)
    patch.op("inv", rules=(rule,))


REALISTIC += [
    Fault("DERIV-1", "computes solve's gradients with A^-1 where A^-T belongs (a missing transpose)",
          _solve_without_transpose),
    Fault("DERIV-1", "computes inv's gradient as -inv g inv, its transposes left out", _inv_untransposed),
    Fault("DERIV-2", "records inv's derivative rule with its last factor, mT(inv), differentiated as if it were "
          "not transposed, so inv's second derivative has a transposed term", _inv_double_backward_transposed),
]


# -- one spelling of an op with derivative code of its own (issue 23) -------------------------------------------
# Real engines keep separate backward code for spellings of one op (PyTorch's pow has three overloads, tensor **
# tensor, tensor ** number and number ** tensor, each with its own formula); a special value handled on one path
# may be missing on another, and only a case written in that spelling sees it.


def _pow_number_exponent_without_zero_case(patch):
    """tensor ** number as c * a^(c-1) everywhere: 0 * 0^-1 = nan at a zero base for the exponent 0."""
    def rule(g, a, b, out, attrs):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * attrs["exponent"] * a ** (attrs["exponent"] - 1)
    patch.op("_pow_number_exponent", rules=(rule,))


def _pow_number_base_without_zero_case(patch):
    """number ** tensor as out * log(base) everywhere: 0 * log(0) = nan at a zero base (and -inf at 0 ** 0)."""
    def rule(g, a, b, out, attrs):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * out * O.constant(np.log(O.data_of(a).dtype.type(attrs["base"])), g)
    patch.op("_pow_number_base", rules=(rule,))


REALISTIC += [
    Fault("DERIV-1", "differentiates pow with a number exponent as c * a^(c-1) with no case for c = 0, giving nan "
          "at a zero base (the tensor-exponent path has it)", _pow_number_exponent_without_zero_case),
    Fault("DERIV-1", "differentiates pow with a number base as out * log(base) with no case for a zero base, giving "
          "nan there (the tensor-base path has it)", _pow_number_base_without_zero_case),
]


# -- a lock-free accumulation into .grad (issue 23) -------------------------------------------------------------
# No delay is planted: the read of .grad, the addition and the write back are all there is, as in a naive engine.
# The PASS-9 cases catch it through interleavings alone (many threads and passes; the thread runner's short switch
# interval, harness/running/threads.py); bench/bench_thread_race.py measures how often.


def _accumulation_unlocked(patch):
    """`x.grad = x.grad + g` with no lock: .grad is read, the sum computed and written back, and another thread's
    update written in between is lost. (The engine's own in-place add would be no safer without its lock.)"""
    def make(accumulate):
        def unlocked(tensor, gradient, create_graph):
            if create_graph:  # adds out of place already, and takes no lock of its own
                return E._add_into_grad(tensor, gradient, create_graph)
            current = tensor._grad
            data = np.asarray(O.data_of(gradient), dtype=tensor.data.dtype)
            tensor.grad = T.Tensor(data.copy() if current is None else current.data + data)
        return unlocked
    patch(E, "_accumulate", make)


REALISTIC.append(Fault("PASS-9", "accumulates into .grad without a lock (read .grad, add, write back), so a pass in "
                       "another thread that writes in between loses its gradient", _accumulation_unlocked,
                       runs=5))  # each case catches it in about 85% of runs (bench/bench_thread_race.py)


def _generator_decorated_naively(patch):
    """A grad mode decorating a generator function wraps only the call that creates the generator, so none of its
    steps runs in the mode (as decorators did before they learnt about generators)."""
    def naive(mode, function):
        def wrapper(*args, **kwargs):
            with mode():
                return function(*args, **kwargs)
        return wrapper
    patch(M, "_generator_in", lambda original: naive)


REALISTIC.append(Fault("MODE-1", "applies a grad mode that decorates a generator function only while the generator is "
                       "created, so its steps run in the caller's mode", _generator_decorated_naively))


def all_faults() -> list[Fault]:
    """Every planted fault: the one per rule, then the realistic ones."""
    return [*FAULTS.values(), *REALISTIC]
