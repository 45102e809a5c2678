"""Run a Case on an engine through its adapter, step by step, and judge what happens.

This is the only code that knows the step vocabulary. It never special-cases an
engine. A run ends at the first step that does not behave as the case says; the
Outcome names that step, what was expected and what happened.
"""

from __future__ import annotations

import contextlib
import dis
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.adapter import Adapter, CrashAvoided
from gradspec.language.case import NO_WARNING, Case, Step, argument_forms, as_list, written
from gradspec.language.expressions import Apply, Call, Expr, GradOf, Num, Ref, call_kwargs, python_index
from gradspec.language.step_kinds import grad_mode_blocks
from gradspec.running.custom import FunctionProgram
from gradspec.running.judge import FLAGS, Judgment, Observed, Read, expect_steps, judge_expect, snapshot
from gradspec.running.saved_hooks import SavedHookLog
from gradspec.running.threads import Threads

# failed: the engine did not behave as the case says; error: the adapter or gradspec itself broke,
# so nothing was learnt about the engine (a conformance report must not blame the engine for it).
PASSED, FAILED, ERROR, NOT_APPLICABLE = "passed", "failed", "error", "not_applicable"
Expected = tuple[frozenset[str], str]  # the floating dtypes a value may have (none: not judged), and the rule
MESSAGE_LIMIT = 2000  # characters of an engine's message kept in outcomes and reports
REPORT_LIMIT = 20000  # characters of one outcome's whole text
GRAD_MODE_BLOCKS = grad_mode_blocks()  # no_grad, enable_grad, set_grad_enabled, inference_mode


@dataclass(frozen=True)
class Outcome:
    status: str  # passed, failed or not_applicable
    message: str = ""
    step: str | None = None  # which step failed, e.g. "step 5 (backward, line 21)"
    details: tuple[str, ...] = field(default_factory=tuple)
    line: int | None = None  # the failing step's line in the case file, and the tensor its check was about:
    tensor: str | None = None  # reports mark that tensor in the case's graph (graph.node_at)

    def report(self) -> str:
        """What went wrong, cut to REPORT_LIMIT characters: an engine's message can be megabytes."""
        lines = [f"{self.step}: {self.message}" if self.step else self.message]
        lines += [f"  {line}" for line in self.details]
        text = "\n".join(lines)
        if len(text) > REPORT_LIMIT:
            text = f"{text[:REPORT_LIMIT]}\n... ({len(text) - REPORT_LIMIT} more characters cut)"
        return text


class HookRaised(Exception):
    """Raised by a hook whose case says `returns: raise`; must reach the caller unchanged (HOOK-9).

    Unchanged means the very object the hook raised: an engine that wraps it in an error of
    its own, even one that keeps it as the cause, has not propagated it.
    """


class _StepFailed(Exception):
    def __init__(self, message: str, details: tuple[str, ...] = ()):
        super().__init__(message)
        self.message, self.details = message, details
        self.engine_error: Exception | None = None  # set where the failure is an error the engine raised
        self.line: int | None = None  # where it failed, set by the innermost step that saw it (locate)
        self.tensor: str | None = None
        self.located = False

    def locate(self, step: Step) -> None:
        """The failing step's line and the tensor it is about, once: the innermost step knows best."""
        if not self.located:
            self.located, self.line = True, step.line
            self.tensor = self.tensor or _subject(step)


class _StepErrored(_StepFailed):
    """An unclassified exception raised by the adapter's or gradspec's own code, not by the engine."""


def missing_capabilities(case: Case, adapter: Adapter) -> list[str]:
    """What the case needs that the engine lacks: capabilities, then ops (as `op:NAME (why)`, from lacking_ops)."""
    lacking = adapter.lacking_ops()
    return (sorted(case.capabilities - effective_capabilities(type(adapter)))
            + [f"op:{op} ({lacking[op]})" for op in sorted(case.ops & set(lacking))])


def effective_capabilities(adapter_cls: type[Adapter]) -> set[str]:
    """What an adapter declares, and what that provides (capabilities.yaml's provided_by: grad or backward
    gives derivatives)."""
    declared = set(adapter_cls.capabilities)
    return declared | {name for name, entry in contracts.capabilities().items()
                       if set(entry.get("provided_by", ())) & declared}


def run_case(case: Case, adapter: Adapter, tracebacks: bool = False, judgments: list[Judgment] | None = None) -> Outcome:
    """Run every step of `case` on `adapter`; not applicable if the engine lacks a capability.

    With `tracebacks`, an engine exception that fails a step comes with its whole traceback. With `judgments`, each
    judged `expect` step is appended there with what it observed (the isolation worker sends them back to be judged
    again outside the engine's process).
    """
    missing = missing_capabilities(case, adapter)
    if missing:
        return Outcome(NOT_APPLICABLE, f"{adapter.name} lacks {', '.join(missing)}")
    run = _Run(case, adapter, tracebacks)
    run.judgments = judgments
    return run.run()


class AdapterFault(RuntimeError):
    """What a fuzzer's step raised came from the adapter's or gradspec's own code, not the engine: nothing observed of
    the engine, so no disagreement to stage as the engine's (the property errors, naming the adapter)."""


class Session:
    """Run steps one at a time on an engine and look at it between them (the fuzzer compares two engines so).

    `run` returns the error kind a step raised (spec/errors.yaml, "hook_error", or "unclassified"), "crash_avoided"
    where the adapter refused a call its engine crashes on (adapter.CrashAvoided), or None; it raises
    AdapterFault where the adapter's or gradspec's own code raised (no verdict on the engine, as in run_case).
    """

    def __init__(self, case: Case, adapter: Adapter):
        self.adapter = adapter
        self.last_error: BaseException | None = None  # what the last step that raised raised, for messages
        self.last_hook_modes: dict[str, list[bool | None]] = {}  # per hook, the grad mode of each call hook_calls saw
        self.last_hook_order: list[str] = []  # the labels of the calls hook_calls saw, in order
        self._run = _Run(case, adapter)
        self._run.make_tensors()

    def run(self, step: Step) -> str | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self._run.dispatch(step, "")
            except _StepFailed as failure:
                if failure.engine_error is None:
                    raise RuntimeError(failure.message) from None
                return self._observed(failure.engine_error)  # a step inside a block raised: the block raised it
            except Exception as exc:  # noqa: BLE001 - an engine error is an observation here
                return self._observed(exc)
        return None

    def _observed(self, exc: BaseException) -> str:
        self.last_error = exc
        if isinstance(exc, CrashAvoided):
            return "crash_avoided"  # the adapter kept the engine from a known crash: nothing observed beyond
        if self._run.raised_by_hook(exc):
            return "hook_error"
        kind = self.adapter.classify(exc)
        if kind is None and _raised_by_harness(exc, self.adapter):  # as a case's step would be an error, not a failure
            raise AdapterFault(no_verdict(exc, False)[0]) from exc
        return kind or "unclassified"

    def value(self, name: str) -> np.ndarray | None:
        tensor = self._run.env.get(name)
        return None if tensor is None else self.adapter.to_numpy(tensor)

    def grad(self, name: str) -> np.ndarray | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grad = self.adapter.read_grad(self._run.env[name])
        return None if grad is None else self.adapter.to_numpy(grad)

    def hook_calls(self) -> dict[str, list[np.ndarray | None]]:
        """Per hook label, the gradients it received since the last call (the order across hooks is free; the
        labels in the order of their calls are kept in last_hook_order)."""
        log = self._run.take_hook_log()
        self.last_hook_modes = _by_label([(label, mode) for label, _, mode in log])
        self.last_hook_order = [label for label, _, _ in log]
        return _by_label([(label, grad) for label, grad, _ in log])

    def names(self) -> list[str]:
        """Every name bound so far: tensors, results, gradients (None where an engine gave none)."""
        return list(self._run.env)

    def introspect(self, name: str) -> tuple | None:
        """requires_grad, is_leaf and whether a grad_fn is there, of the tensor bound to `name` (None if unbound), or
        ("raises", error kind) where reading them raises (a stale output of unbind: VIEW-7)."""
        tensor = self._run.env.get(name)
        if tensor is None:
            return None
        adapter = self.adapter
        try:
            return adapter.requires_grad(tensor), adapter.is_leaf(tensor), adapter.has_grad_fn(tensor)
        except Exception as exc:  # noqa: BLE001 - an engine's refusal is an observation here
            return "raises", adapter.classify(exc) or "unclassified"


class _Run:
    def __init__(self, case: Case, adapter: Adapter, tracebacks: bool = False):
        self.case, self.adapter, self.tracebacks = case, adapter, tracebacks
        self.env: dict[str, Any] = {}
        self.handles: dict[str, Any] = {}
        self.hook_log: list[tuple[str, np.ndarray | None, bool | None]] = []  # label, gradient, grad mode inside
        self.hook_errors: list[HookRaised] = []  # every exception a hook raised, to recognise it unchanged
        self.backward_log: list[dict] = []  # every call of a case function's backward (custom.py)
        self.functions: dict[str, Callable] = {}  # the engine's function for each case function, made on first use
        self.saved_hooks = SavedHookLog(adapter)  # the calls of saved-tensor hooks (saved_tensor_hooks blocks)
        # The dtype asked for judges every value (SHAPE-1, SHAPE-6), never the one the engine gave: per name, the
        # floating dtypes its value may have and the rule saying so; per hook label, those of its gradients.
        floating = {decl.dtype or adapter.dtype for decl in case.tensors} - {"int64"}
        self.case_dtypes: Expected = (frozenset(floating or {adapter.dtype}), "SHAPE-6")  # where nothing more is known
        self.dtypes: dict[str, Expected] = {}
        self.hook_dtypes: dict[str, Expected] = {}
        self.local = threading.local()  # per thread of a `threads` step: the step running, the block's Threads
        self.judgments: list[Judgment] | None = None  # where judged expect steps go (run_case's `judgments`)
        self.expect_index = {id(step): index for index, (step, _) in enumerate(expect_steps(case.steps))}

    @property
    def current(self) -> str:
        """The step this thread is running, for the outcome if it fails."""
        return getattr(self.local, "current", "")

    @current.setter
    def current(self, value: str) -> None:
        self.local.current = value

    def raised_by_hook(self, exc: BaseException) -> bool:
        return any(exc is raised for raised in self.hook_errors)

    def run(self) -> Outcome:
        try:
            self.make_tensors()
            self.run_steps(self.case.steps, prefix="")
        except _StepErrored as error:
            return Outcome(ERROR, error.message, self.current, error.details, error.line, error.tensor)
        except _StepFailed as failure:
            return Outcome(FAILED, failure.message, self.current, failure.details, failure.line, failure.tensor)
        return Outcome(PASSED)

    def make_tensors(self) -> None:
        self.current = "creating tensors"
        for decl in self.case.tensors:
            try:
                dtype = decl.dtype or self.adapter.dtype
                self.dtypes[decl.name] = (frozenset({dtype} - {"int64"}), "SHAPE-6")
                self.env[decl.name] = self.adapter.tensor(decl.value, decl.requires_grad, dtype)
            except Exception as exc:  # noqa: BLE001 - an engine's error is a finding; an adapter's is no verdict
                if self.adapter.classify(exc) is None and _raised_by_harness(exc, self.adapter):
                    message, details = no_verdict(exc, self.tracebacks)
                    failure = _StepErrored(f"creating tensor {decl.name!r}: {message}", details)
                else:
                    failure = _StepFailed(f"creating tensor {decl.name!r} raised {_exception(exc)}")
                failure.tensor, failure.located = decl.name, True
                raise failure from None

    def run_steps(self, steps: tuple[Step, ...], prefix: str) -> None:
        for number, step in enumerate(steps, start=1):
            label = f"{prefix}{number}"
            self.current = f"step {label} ({step.describe()})"
            try:
                self.run_step(step, label)
            except _StepFailed as failure:
                failure.locate(step)
                raise

    def run_step(self, step: Step, label: str) -> None:
        # Python's warning filters are global: only the thread that started a `threads` block captures them
        # (the loader keeps `warns` out of thread bodies).
        in_thread = getattr(self.local, "threads", None) is not None
        with contextlib.nullcontext([]) if in_thread else warnings.catch_warnings(record=True) as caught:
            if not in_thread:
                warnings.simplefilter("always")
            try:
                self.dispatch(step, label)
            except _StepFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - engine errors are judged against `raises`
                self.judge_error(step, exc)
            else:
                if step.raises:
                    raise _StepFailed(f"expected error {step.raises.kind!r}, but the step completed")
            self.current = f"step {label} ({step.describe()})"
        seen = [self.adapter.classify_warning(w.message) for w in caught]
        if step.warns == (NO_WARNING,):
            if any(kind is not None for kind in seen):
                shown = [f"{type(w.message).__name__}: {w.message}" for w in caught]
                raise _StepFailed("expected no warning", tuple(f"got {s}" for s in shown))
            return
        for kind in step.warns:
            if kind not in seen:
                shown = [f"{type(w.message).__name__}: {w.message}" for w in caught] or ["no warning"]
                raise _StepFailed(f"expected warning {kind!r}", tuple(f"got {s}" for s in shown))

    def judge_error(self, step: Step, exc: Exception) -> None:
        if isinstance(exc, MemoryError):  # the machine's limit, reached by the case's size as much as the engine
            raise _StepErrored(f"ran out of memory ({_exception(exc)}): no verdict on the engine; a case this large "
                               "is the case's problem (see the size limits)", _trace(exc) if self.tracebacks else ())
        kind = "hook_error" if self.raised_by_hook(exc) else self.adapter.classify(exc)
        if kind is None and _raised_by_harness(exc, self.adapter):
            raise _StepErrored(*no_verdict(exc, self.tracebacks))
        trace = _trace(exc) if self.tracebacks else ()
        if step.raises is None:
            failure = _StepFailed(f"raised {_exception(exc)} (error kind {kind or 'unclassified'})", trace)
            failure.engine_error = exc  # what the engine raised: inside a block, the fuzzer's observation (Session)
            raise failure
        if kind != step.raises.kind:
            raise _StepFailed(f"expected error {step.raises.kind!r}, got {kind or 'an unclassified error'}: "
                              f"{_exception(exc)}", trace)
        if step.raises.match and not re.search(step.raises.match, str(exc)):
            raise _StepFailed(f"error {kind!r} raised, but its message does not match {step.raises.match!r}: {exc}")

    def dispatch(self, step: Step, label: str) -> None:
        handler: Callable[[Step], None] | None = getattr(self, f"do_{step.kind}", None)
        if step.kind == "repeat":
            for _ in range(step.args["repeat"]):
                for inner in step.body:  # the body's steps, without a label or warning capture each time
                    self.dispatch(inner, label)
            return
        if step.kind in GRAD_MODE_BLOCKS:
            try:
                self.run_in_mode(step, label)
            except _StepFailed as failure:
                if step.raises is not None and failure.engine_error is not None:
                    raise failure.engine_error from None  # the block expects it: judged as the block's own error
                raise
            return
        if step.kind == "saved_tensor_hooks":
            with self.saved_hooks.block(step.args):
                self.run_steps(step.body, prefix=f"{label}.")
            return
        if step.kind == "threads":
            self.run_threads(step, label)
            return
        if step.kind == "barrier":
            self.local.threads.wait()
            return
        assert handler is not None, f"no handler for step kind {step.kind!r}"
        handler(step)

    def run_in_mode(self, step: Step, label: str) -> None:
        """The block's steps in its grad mode, written as the case says: a with block, a decorated function, or a
        decorated generator function resumed once per step (the mode must hold at every resume)."""
        form = step.args.get("form") or "context"
        if form == "context":
            with self.grad_mode_block(step):
                self.run_steps(step.body, prefix=f"{label}.")
            return
        if form == "decorator":
            self.grad_mode_block(step)(lambda: self.run_steps(step.body, prefix=f"{label}."))()
            return

        def generator():  # a generator function, as the decorator sees it: one step per resume
            for number, inner in enumerate(step.body, start=1):
                self.current = f"step {label}.{number} ({inner.describe()})"
                try:
                    self.run_step(inner, f"{label}.{number}")
                except _StepFailed as failure:
                    failure.locate(inner)
                    raise
                yield
        for _ in self.grad_mode_block(step)(generator)():
            pass

    def grad_mode_block(self, step: Step):
        """The engine's own API of the block's name (MODE-3 is only tested if set_grad_enabled is called)."""
        if step.kind == "no_grad":
            return self.adapter.no_grad()
        if step.kind == "enable_grad":
            return self.adapter.enable_grad()
        if step.kind == "inference_mode":
            return self.adapter.inference_mode()
        return self.adapter.set_grad_enabled(bool(step.args["set_grad_enabled"]))

    def run_threads(self, step: Step, label: str) -> None:
        """Each body in a thread of its own (PASS-9, PASS-10); the first thread's failure is the step's."""
        threads = Threads(len(step.body))

        def run_body(index: int) -> None:
            try:  # step labels inside a thread: '4.t2.1' for the first step of step 4's second thread
                self.run_steps(step.body[index].body, prefix=f"{label}.t{index + 1}.")
            except (_StepFailed, _StepErrored) as failure:
                failure.step = self.current  # this thread's step, for the outcome
                raise

        try:
            threads.run(run_body, self.local)
        except (_StepFailed, _StepErrored) as failure:
            self.current = failure.step
            raise

    # -- values ------------------------------------------------------------------

    def tensor(self, name: str) -> Any:
        value = self.env[name]
        if value is None:
            raise _StepFailed(f"{name!r} is None (a gradient the engine did not produce) and cannot be used here")
        return value

    def evaluate(self, expr: Expr) -> Any:
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, Ref):
            return self.tensor(expr.name)
        if isinstance(expr, GradOf):
            return self.adapter.read_grad(self.tensor(expr.name))
        if isinstance(expr, Apply):
            return self.function(expr.function)(*(self.evaluate(a) for a in expr.args))
        assert isinstance(expr, Call)
        args = [self.evaluate(a) for a in expr.args]
        if any(arg is None for arg in args):
            raise _StepFailed(f"an operand of {expr.op!r} is None (a .grad the engine did not produce)")
        return self.adapter.apply(expr.op, args, call_kwargs(expr))

    def expected_dtypes(self, expr: Expr) -> Expected | None:
        """The floating dtypes the value of `expr` may have, and the rule saying so; None for a number.

        A gradient has its tensor's dtype (SHAPE-1); a result has its operands' floating dtype (SHAPE-6), either
        of two where operands of two dtypes meet, none (not judged) for an integer or boolean result: an op
        without a derivative (comparisons, argmax) or one of integer operands only. Index and condition operands
        do not count; a number takes the dtype of the tensors it meets.
        """
        if isinstance(expr, Num):
            return None
        if isinstance(expr, Ref):
            return self.dtypes.get(expr.name, self.case_dtypes)
        if isinstance(expr, GradOf):
            return self.gradient_dtypes(expr.name)
        operands = list(expr.args)
        if isinstance(expr, Call):
            entry = contracts.ops().get(expr.op, {})
            if entry.get("differentiable", True) is False:
                return frozenset(), "SHAPE-6"
            skipped = {entry.get("index_operand"), entry.get("condition_operand")}
            operands = [arg for index, arg in enumerate(expr.args) if index not in skipped]
        known = [found[0] for found in map(self.expected_dtypes, operands) if found is not None]
        return (frozenset().union(*known), "SHAPE-6") if known else None

    def expect_dtypes(self, names: list[str], expected: Expected | None) -> None:
        """Record what each name's value may be (a number alone: the case's dtypes)."""
        for name in names:
            self.dtypes[name] = self.case_dtypes if expected is None else expected

    def function(self, name: str) -> Callable:
        """The engine's custom function for case function `name`, made once per run."""
        if name not in self.functions:
            adapter = self.adapter
            program = FunctionProgram(self.case.functions[name], adapter.apply, adapter.apply_inplace,
                                      adapter.to_numpy, adapter.grad_enabled, self.backward_log)
            self.functions[name] = adapter.custom_function(program)
        return self.functions[name]

    def literal_or_name(self, value: Any, reference: Any) -> Any:
        """A gradient given as a tensor name or as a literal array (made like `reference`)."""
        if isinstance(value, str):
            return self.tensor(value)
        return self.adapter.like(np.asarray(value, dtype=np.float64), reference)

    # -- steps -------------------------------------------------------------------

    def do_compute(self, step: Step) -> None:
        statement = step.statement
        value = self.evaluate(statement.expr)
        self.expect_dtypes(list(statement.targets or [statement.target]), self.expected_dtypes(statement.expr))
        if not statement.targets:
            self.env[statement.target] = value
            return
        values = list(value)
        if len(values) != len(statement.targets):
            raise _StepFailed(f"{statement.expr.op} gave {len(values)} output(s), the case unpacks "
                              f"{len(statement.targets)}: {', '.join(statement.targets)}")
        self.env.update(zip(statement.targets, values, strict=True))

    def do_setitem(self, step: Step) -> None:
        statement = step.statement
        value = self.evaluate(statement.expr)
        self.adapter.setitem(self.tensor(statement.target), python_index(statement.index), value)

    def do_detach_(self, step: Step) -> None:
        self.adapter.detach_(self.tensor(step.args["detach_"]))

    def do_inplace(self, step: Step) -> None:
        statement = step.statement
        operand = self.evaluate(statement.expr)
        self.env[statement.target] = self.adapter.apply_inplace(statement.inplace_op, self.tensor(statement.target), operand)

    def do_backward(self, step: Step) -> None:
        named, gradient, inputs = step.args["backward"], step.args.get("gradient"), step.args.get("inputs")
        forms = argument_forms("backward", step.args)  # each argument as the case writes it (argument_forms)
        if forms["backward"] != "tensor":  # autograd.backward(outputs, gradients): one gradient per output
            output = [self.tensor(n) for n in as_list(named)]
            gradients = step.args.get("gradients") if isinstance(named, tuple) else \
                None if gradient is None else [gradient]
            gradient = None if gradients is None else written(
                [None if g is None else self.literal_or_name(g, o) for g, o in zip(gradients, output, strict=True)],
                forms["gradient"])
            output = written(output, forms["backward"])
        else:
            output = self.tensor(named)
            gradient = None if gradient is None else self.literal_or_name(gradient, output)
        self.adapter.backward(
            output,
            gradient,
            step.args.get("retain_graph"),
            step.args.get("create_graph"),
            None if inputs is None else written([self.tensor(n) for n in as_list(inputs)], forms["inputs"]),
        )

    def do_grad(self, step: Step) -> None:
        call = step.args["grad"]
        outputs = [self.tensor(n) for n in as_list(call["outputs"])]
        inputs = [self.tensor(n) for n in as_list(call["inputs"])]
        grad_outputs = call.get("grad_outputs")
        forms = argument_forms("grad", call)  # each argument as the case writes it (argument_forms)
        if grad_outputs is not None:
            grad_outputs = written([self.literal_or_name(g, outputs[min(i, len(outputs) - 1)])
                                    for i, g in enumerate(grad_outputs)], forms["grad_outputs"])
        results = self.adapter.grad(written(outputs, forms["outputs"]), written(inputs, forms["inputs"]), grad_outputs,
                                    call.get("retain_graph"), call.get("create_graph"), call.get("allow_unused"),
                                    call.get("materialize_grads"))
        results = list(results)
        if len(results) != len(inputs):
            raise _StepFailed(f"grad returned {len(results)} result(s) for {len(inputs)} input(s)")
        if "as" in call:
            for name, result, of in zip(as_list(call["as"]), results, as_list(call["inputs"]), strict=True):
                self.env[name] = result
                self.dtypes[name] = self.gradient_dtypes(of)

    def do_derivative(self, step: Step) -> None:
        """Derivative values by the engine's grad, or else by backward into the leaves' .grad (derivative_by_backward)."""
        call = step.args["derivative"]
        output, inputs = self.tensor(call["of"]), [self.tensor(n) for n in as_list(call["wrt"])]
        gradient = call.get("gradient")
        gradient = None if gradient is None else self.literal_or_name(gradient, output)
        if "grad" in self.adapter.capabilities:
            results = list(self.adapter.grad([output], inputs, None if gradient is None else [gradient],
                                             None, None, None, None))
        else:
            results = self.derivative_by_backward(output, gradient, inputs)
        for name, result, of in zip(as_list(call["as"]), results, as_list(call["wrt"]), strict=True):
            self.env[name] = result
            self.dtypes[name] = self.gradient_dtypes(of)

    def derivative_by_backward(self, output: Any, gradient: Any, inputs: list) -> list:
        """Each input's .grad from one backward, with .grad cleared before and, with grad_assignment, restored after.

        Cleared, because an engine may replace .grad instead of adding to it (mygrad): "after less before" would
        then show its right derivative as wrong, and a derivative step judges derivatives, not accumulation (ACC).
        Restored, so that later steps see the .grad they would see without this step; an engine that can clear
        .grad but not assign it (an adapter's own clear_grad) keeps the derivative there, as its backward would.
        An engine that can do neither gets .grad after less before, as an accumulation.
        """
        adapter = self.adapter
        # only the inputs' .grad, where backward can be told so: other leaves' .grad stay as later steps expect
        only = inputs if "backward_inputs" in adapter.capabilities else None
        clears = "grad_assignment" in adapter.capabilities or type(adapter).clear_grad is not Adapter.clear_grad
        if not clears:
            before = [self.read_grad_array(t) for t in inputs]
            adapter.backward(output, gradient, None, None, only)
            results = []
            for tensor, earlier in zip(inputs, before, strict=True):
                after = adapter.read_grad(tensor)  # the change made like the .grad, in the dtype the engine gave it
                results.append(None if after is None else adapter.like(
                    adapter.to_numpy(after) - (0 if earlier is None else earlier), after))
            return results
        restores = "grad_assignment" in adapter.capabilities
        saved = [adapter.read_grad(t) for t in inputs] if restores else []
        try:
            for tensor in inputs:
                adapter.clear_grad(tensor)
            adapter.backward(output, gradient, None, None, only)
            grads = [adapter.read_grad(t) for t in inputs]
            # copies in the engine's own dtype (SHAPE-1 is judged on them), apart from the buffer restoring may reuse
            return [None if g is None else adapter.like(adapter.to_numpy(g), g) for g in grads]
        finally:
            if restores:
                for tensor, grad in zip(inputs, saved, strict=True):
                    adapter.set_grad(tensor, grad)

    def read_grad_array(self, tensor: Any) -> np.ndarray | None:
        grad = self.adapter.read_grad(tensor)
        return None if grad is None else self.adapter.to_numpy(grad)

    def do_retain_grad(self, step: Step) -> None:
        self.adapter.retain_grad(self.tensor(step.args["retain_grad"]))

    def gradient_dtypes(self, name: str) -> Expected:
        """What a gradient of tensor `name` may be: its dtype (SHAPE-1)."""
        return self.dtypes.get(name, self.case_dtypes)[0], "SHAPE-1"

    def log_hook(self, label: str, gradient: Any) -> None:
        """One hook call: its label, the gradient it saw (None for a post-accumulate hook on an empty .grad) and
        the grad mode inside it."""
        self.hook_log.append((label, None if gradient is None else self.adapter.to_numpy(gradient),
                              self.adapter.grad_enabled()))

    def do_register_hook(self, step: Step) -> None:
        label, returns = step.args["as"], step.args.get("returns")

        def hook(gradient):
            self.log_hook(label, gradient)
            if returns == "raise":
                self.hook_errors.append(HookRaised(f"hook {label!r} raised as the case asks"))
                raise self.hook_errors[-1]
            if returns is None:
                return None
            if "backward" in returns:  # a pass started inside this one (re-entrant, PASS-8)
                self.adapter.backward(self.tensor(returns["backward"]), None, None, None, None)
                return None
            if "scale" in returns:
                return self.adapter.apply("mul", [gradient, float(returns["scale"])], {})
            return self.adapter.like(np.asarray(returns["value"], dtype=np.float64), gradient)

        self.handles[label] = self.adapter.register_hook(self.tensor(step.args["register_hook"]), hook)
        self.hook_dtypes[label] = self.gradient_dtypes(step.args["register_hook"])

    def do_register_post_accumulate_grad_hook(self, step: Step) -> None:
        label, modifies, returns = step.args["as"], step.args.get("modifies"), step.args.get("returns")

        def hook(tensor):
            grad = self.adapter.read_grad(tensor)
            self.log_hook(label, grad)
            if modifies == "clear":
                self.adapter.set_grad(tensor, None)
            elif modifies is not None:
                self.adapter.apply_inplace("mul", grad, float(modifies["scale"]))
            if returns is not None:  # PASS-12: an engine must refuse this
                return self.adapter.apply("mul", [grad, float(returns["scale"])], {})
            return None

        tensor = self.tensor(step.args["register_post_accumulate_grad_hook"])
        self.handles[label] = self.adapter.register_post_accumulate_grad_hook(tensor, hook)
        self.hook_dtypes[label] = self.gradient_dtypes(step.args["register_post_accumulate_grad_hook"])

    def do_register_node_prehook(self, step: Step) -> None:
        label, scale = step.args["as"], (step.args.get("returns") or {}).get("scale")

        def hook(grad_outputs):
            self.log_hook(label, grad_outputs[0])
            if scale is None:
                return None
            return (self.adapter.apply("mul", [grad_outputs[0], float(scale)], {}), *grad_outputs[1:])

        self.handles[label] = self.adapter.register_node_prehook(self.tensor(step.args["register_node_prehook"]), hook)
        self.hook_dtypes[label] = self.gradient_dtypes(step.args["register_node_prehook"])

    def do_register_node_hook(self, step: Step) -> None:
        label = step.args["as"]

        def hook(grad_inputs, grad_outputs):
            self.log_hook(label, grad_outputs[0])

        self.handles[label] = self.adapter.register_node_hook(self.tensor(step.args["register_node_hook"]), hook)
        self.hook_dtypes[label] = self.gradient_dtypes(step.args["register_node_hook"])

    def do_remove_hook(self, step: Step) -> None:
        self.adapter.remove_hook(self.handles[step.args["remove_hook"]])

    def do_set_grad(self, step: Step) -> None:
        for name, value in step.args["set_grad"].items():
            tensor = self.tensor(name)
            new = None if value is None else self.adapter.like(np.asarray(value, dtype=np.float64), tensor)
            self.adapter.set_grad(tensor, new)

    def do_zero_grad(self, step: Step) -> None:
        """Zero each .grad in place where there is one, as optimizer.zero_grad(set_to_none=False) does: a None .grad
        has nothing to zero (and `None.zero_()` would be Python's AttributeError, not the engine's behaviour)."""
        for name in as_list(step.args["zero_grad"]):
            tensor = self.tensor(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a non-leaf's unset .grad warns on reading (RETAIN-6)
                present = self.adapter.read_grad(tensor) is not None
            if present:
                self.adapter.zero_grad(tensor)

    def do_requires_grad_(self, step: Step) -> None:
        for name, flag in step.args["requires_grad_"].items():
            self.adapter.set_requires_grad(self.tensor(name), flag)

    def do_expect(self, step: Step) -> None:
        """Read what the step looks at (observe), then judge it (judge.py); the judgment is kept where the caller
        asked (run_case's `judgments`), so that another process can judge the same observations again."""
        expect = step.args["expect"]
        observed = self.observe(expect)
        problems, tensor = judge_expect(expect, observed, self.case.tolerance)
        if self.judgments is not None:  # a copy: an engine may change the arrays it gave after this step
            self.judgments.append(Judgment(self.expect_index[id(step)], self.current, snapshot(observed),
                                           tuple(problems), tensor))
        if problems:
            failure = _StepFailed(problems[0] if len(problems) == 1 else f"{len(problems)} expectations failed",
                                  tuple(problems) if len(problems) > 1 else ())
            failure.tensor = tensor
            raise failure

    def observe(self, expect: Mapping[str, Any]) -> Observed:
        """Everything an `expect` step looks at, read from the engine in the order the step writes its checks."""
        values = {name: self.read(self.env[name], self.dtypes.get(name, self.case_dtypes))
                  for name in expect.get("value", {})}
        grads = {name: self.read(self.adapter.read_grad(self.tensor(name)), self.gradient_dtypes(name))
                 for name in expect.get("grad", {})}
        grad_dtypes = {}
        for name in expect.get("grad_dtype", {}):
            grad = self.adapter.read_grad(self.tensor(name))
            grad_dtypes[name] = None if grad is None else self.adapter.dtype_name(grad)
        readers = {"requires_grad": self.adapter.requires_grad, "is_leaf": self.adapter.is_leaf,
                   "has_grad_fn": self.adapter.has_grad_fn, "is_inference": self.adapter.is_inference}
        flags = {flag: {name: bool(readers[flag](self.tensor(name))) for name in expect.get(flag, {})}
                 for flag in FLAGS}
        hooks = self.take_hook_log() if "hook_calls" in expect or "hook_grads" in expect else None
        backward = None
        if "backward_calls" in expect:
            # Emptied in place: the engine's custom functions (made once per run) keep appending to this very list,
            # so a second check sees the calls since the first (a fresh list would hide them).
            backward = list(self.backward_log)
            self.backward_log.clear()
        saved = None
        if "saved_hook_calls" in expect:
            saved, self.saved_hooks.calls = self.saved_hooks.calls, []
        return Observed(values, grads, grad_dtypes, flags, hooks, dict(self.hook_dtypes), backward, saved,
                        self.case_dtypes, self.adapter.dtype, tuple(type(self.adapter).dtypes))

    def read(self, value: Any, expected: Expected) -> Read:
        """A value as a user reads it (to_numpy), with the dtypes it came in."""
        try:
            got = None if value is None else self.adapter.to_numpy(value)
        except _ADAPTER_BUGS:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's own reading of its result failed (SHAPE-5)
            return Read(None, (), expected, _exception(exc))
        given = () if value is None else (self.adapter.dtype_name(value), str(got.dtype))
        return Read(got, given, expected)

    def take_hook_log(self) -> list[tuple[str, np.ndarray | None, bool | None]]:
        """Every hook call since the last time the log was taken, in order; the log starts afresh."""
        log, self.hook_log = self.hook_log, []
        return log


# Steps whose own argument names the tensor (or tensors, first one counts) they act on.
_ON_TENSOR = ("backward", "retain_grad", "register_hook", "register_post_accumulate_grad_hook", "register_node_prehook",
              "register_node_hook", "set_grad", "zero_grad", "requires_grad_", "detach_")


def _subject(step: Step) -> str | None:
    """The tensor a step is about: the result it computes (a derivative's or grad's `as` included), or the tensor it
    acts on (backward's output, a hook's tensor); None for a block, an `expect` (do_expect names its own) or a step
    about something else (a hook label)."""
    if step.statement is not None:
        return step.statement.target
    value = step.args.get(step.kind)
    if step.kind in ("grad", "derivative") and isinstance(value, Mapping):
        names = as_list(value.get("as") or value.get("outputs" if step.kind == "grad" else "of"))
    elif step.kind in _ON_TENSOR:
        names = list(value) if isinstance(value, Mapping) else as_list(value)
    else:
        return None
    return names[0] if names and isinstance(names[0], str) else None


def _by_label(log: list[tuple[str, Any]]) -> dict[str, list]:
    """The hook log per label, each in call order."""
    calls: dict[str, list] = {}
    for label, grad in log:
        calls.setdefault(label, []).append(grad)
    return calls


def no_verdict(exc: BaseException, whole_traceback: bool) -> tuple[str, tuple[str, ...]]:
    """Message and traceback of an exception from the adapter's or gradspec's own code: no verdict on the engine."""
    lines = _trace(exc)
    return (f"the adapter or gradspec raised {_exception(exc)} (not the engine: no verdict)",
            lines if whole_traceback else lines[-12:])


def _trace(exc: BaseException) -> tuple[str, ...]:
    return tuple(line.rstrip("\n") for line in traceback.format_exception(exc))


_GRADSPEC = str(Path(__file__).resolve().parent.parent)  # the gradspec package, adapters included


# Raised while reading a result, these are the adapter's own mistakes; anything else is the engine's reading
# of its result failing, which the case judges (SHAPE-5).
_ADAPTER_BUGS = (AttributeError, TypeError, NameError, ImportError, KeyError, IndexError, AssertionError)


# Python's own complaints about a program: raised at an adapter's line, the adapter's mistake (a name it misspelt, an
# argument the engine's function does not take), whoever's compiled code raised them.
_PROGRAM_MISTAKES = (AttributeError, TypeError, NameError, ImportError, KeyError, AssertionError, NotImplementedError)


def _raised_by_harness(exc: BaseException, adapter: Adapter) -> bool:
    """Whether the innermost frame of `exc` is gradspec's code or the adapter's (any class it inherits from).

    An exception from inside the engine's Python code is the engine's behaviour and is judged; so is one that a
    compiled function raised at an adapter's line while the adapter applied an op (apply, apply_inplace, setitem: an
    index out of range, a RuntimeError): the engine refusing an op on the case's operands, as the same refusal from
    an engine written in Python is (the reference engine's numpy raising inside it). The adapter's own `raise`,
    Python's complaints about a program (_PROGRAM_MISTAKES), and anything else raised at its lines or gradspec's
    (an adapter writing into a read-only value) say nothing about conformance.
    """
    frame = exc.__traceback__
    if frame is None:
        return False
    entries = []
    while frame is not None:
        entries.append(frame)
        frame = frame.tb_next
    frame = entries[-1]
    modules = {sys.modules.get(cls.__module__) for cls in type(adapter).__mro__}
    files = {str(Path(module.__file__).resolve()) for module in modules
             if module is not None and getattr(module, "__file__", None)}

    def file_of(entry) -> str:
        return str(Path(entry.tb_frame.f_code.co_filename).resolve())

    if file_of(frame) in files:
        applying = any(entry.tb_frame.f_code.co_name in _OP_METHODS and file_of(entry) in files for entry in entries)
        return not applying or isinstance(exc, _PROGRAM_MISTAKES) or _raise_statement(frame)
    return file_of(frame).startswith(_GRADSPEC)


_OP_METHODS = frozenset({"apply", "apply_inplace", "setitem"})  # the adapter's methods that apply the case's ops


def _raise_statement(frame) -> bool:
    """Whether a traceback entry stopped at a `raise` (or an assert) of its own code, not inside a call it made."""
    return any(instruction.offset == frame.tb_lasti and instruction.opname in ("RAISE_VARARGS", "RERAISE")
               for instruction in dis.get_instructions(frame.tb_frame.f_code))




def _exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > MESSAGE_LIMIT:
        first = f"{first[:MESSAGE_LIMIT]}... ({len(first) - MESSAGE_LIMIT} more characters cut)"
    return f"{type(exc).__name__}: {first}"
