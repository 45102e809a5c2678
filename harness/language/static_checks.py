"""Static checks of a case before any engine runs it: the shapes its steps compute, and whether it checks anything.

The forward steps are evaluated on the declared values with the vocabulary's numpy
forwards (the reference engine's op table), so an op argument out of range (`sum(x, dim=3)`
on a 1-d tensor), operands that neither broadcast nor multiply, an in-place update that
would change a tensor's shape, and an expected value or gradient of the wrong shape are
errors of the case file at their line: not failures blamed on every engine. Steps that
expect an error are not held to this, since the error may be the point; but no step, and no
pass of a repeat, may ask for more than the limits allow (limits.py): each op's result is
bounded from the shapes before numpy computes it (sizes.py), and the steps, threads and
elements of the whole run are added up, each repeat's body counted once per pass.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.language.case import Case, Step, as_list, thawed
from gradspec.language.expressions import Apply, Call, Expr, GradOf, Num, Ref, python_index
from gradspec.language.forwards import numpy_forward
from gradspec.language.limits import limit
from gradspec.language.sizes import result_size
from gradspec.reference_engine import views

UNKNOWN = None  # a value the case cannot know before running (never the case for declared shapes)


class ShapeProblem(Exception):
    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line, self.message = line, message


class TooLarge(ShapeProblem):
    """A step that would make a tensor beyond the element limit: refused even where the step expects an error."""


class OverBudget(ShapeProblem):
    """The whole case runs more steps, starts more threads or computes more elements than the limits allow."""


BUDGET = {"steps": ("GRADSPEC_MAX_STEPS", "run {} steps"), "threads": ("GRADSPEC_MAX_THREADS", "start {} threads"),
          "elements": ("GRADSPEC_MAX_COMPUTED", "compute {} elements")}


class _Budget:
    """What the case asks of a run in all, each pass of a repeat counted: a repeat's body is walked once, then what
    that pass cost is added again for every further pass (a body whose shapes change between passes is refused,
    _repeat, so every pass costs the same)."""

    def __init__(self):
        self.spent = dict.fromkeys(BUDGET, 0)
        self.most = {key: limit(name) for key, (name, _) in BUDGET.items()}

    def mark(self) -> dict[str, int]:
        return dict(self.spent)

    def add(self, line: int | None, what: str = "", **amounts: int) -> None:
        for key, amount in amounts.items():
            self.spent[key] += amount
            if self.spent[key] > self.most[key]:
                name, doing = BUDGET[key]
                raise OverBudget(line, f"{what or 'the steps up to here'} would {doing.format(self.spent[key])} in "
                                       f"all, more than the limit of {self.most[key]} ({name})")

    def again(self, since: dict[str, int], passes: int, line: int | None, what: str) -> None:
        """Count what was spent since `since` `passes` more times (the further passes of a repeat)."""
        self.add(line, what, **{key: (self.spent[key] - since[key]) * passes for key in BUDGET})


class _Values(dict):
    """The values known so far, by name; the case's functions, whose forwards compute more of them; and the budget
    that every value computed is counted against."""

    def __init__(self, items, functions, budget: _Budget):
        super().__init__(items)
        self.functions, self.budget = functions, budget


def shape_problems(case: Case) -> list[ShapeProblem]:
    """Every step whose shapes cannot work, in order; an empty list for a consistent case.

    The walk stops at the first step beyond the run's budget: what follows would only repeat that problem.
    """
    values: dict[str, Any] = _Values({t.name: t.value for t in case.tensors}, case.functions, _Budget())
    problems: list[ShapeProblem] = []
    try:
        _walk(case.steps, values, problems)
    except OverBudget as problem:
        problems.append(problem)
    return problems


def advice(case: Case, implied: set[str]) -> list[str]:
    """What is odd but not wrong: capabilities that neither a step nor a cited rule needs, a case that checks nothing,
    and a cited rule that the steps cannot touch."""
    notes = rule_reach(case, implied)
    rules = contracts.rules()
    for_rules = {need for rule in case.rules if rule in rules for need in rules[rule].needs}
    for name, entry in contracts.capabilities().items():
        sources = set(entry.get("implied_by", ()))
        if (name in case.capabilities and sources and not sources & implied and name not in for_rules
                and not entry.get("provided_by")):
            notes.append(f"declares capability {name!r}, which no step needs: engines without it miss this case")
    if not any(_checks(step) for step in _all_steps(case.steps)):
        notes.append("checks nothing: no expect step, and no step expects an error or a warning")
    return notes


def _tokens(*capabilities: str) -> frozenset[str]:
    entries = contracts.capabilities()
    return frozenset(token for name in capabilities for token in entries[name].get("implied_by", ()))


PASSES = frozenset({"backward", "grad", "derivative"})
GRAD_MODES = frozenset({"no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "op:detach", "detach_"})


@cache
def _reach() -> dict[str, tuple[frozenset[str], str]]:
    """Per rule area (or single rule, which wins), the step tokens (the loader's `implied`) of which a case citing it
    needs one, and what is missing otherwise. Only where that is decidable from the steps: LEAF is left out (a rule
    about flags can be checked by any step), and rules about what happens without an option need only a pass."""
    views = frozenset(f"op:{name}" for name, entry in contracts.ops().items() if entry.get("view"))
    passes = (PASSES, "has no backward, grad or derivative step")
    reads_grad = (frozenset({"retain_grad", "backward.inputs", "expect.grad", "read_grad", "warns"}),
                  "neither calls retain_grad nor reads a .grad")
    return {
        "ACC": (frozenset({"backward"}), "has no backward step, so nothing accumulates into .grad"),
        "HOOK": (frozenset({"register_hook", "register_post_accumulate_grad_hook"}), "registers no hook"),
        "RETAIN": (frozenset({"retain_grad", "backward.inputs"}), "neither calls retain_grad nor lists a backward's "
                                                                  "inputs"),
        "MODE": (GRAD_MODES, "has no grad-mode block and no detach"),
        "INPLACE": (frozenset({"inplace", "setitem", "detach_", "custom_dirty", "op:data"}),
                    "has no in-place operation"),
        "VIEW": (views | _tokens("view_ops", "index_ops", "setitem"), "uses no view, indexing or scatter op"),
        "SAVED": (frozenset({"saved_tensor_hooks"}), "has no saved_tensor_hooks block"),
        "CUSTOM": (frozenset({"custom_function"}), "defines no function under `functions:`"),
        "HIGHER": (_tokens("create_graph"), "never sets create_graph"),
        "LIFE": (_tokens("graph_lifetime", "create_graph"), "neither retains nor frees a graph (no retain_graph, "
                                                            "create_graph or expected freed_graph)"),
        "GRAD": (frozenset({"grad", "backward.inputs", "backward.forms"}), "has no grad step and no backward with "
                                                                           "inputs"),
        **{area: passes for area in ("VJP", "SHAPE", "PASS", "KINK", "DERIV")},
        # Rules about what happens without the area's option, or about reading a .grad that nothing retained.
        **{rule: passes for rule in ("HIGHER-3", "HIGHER-7", "HIGHER-10")},
        **{rule: reads_grad for rule in ("RETAIN-1", "RETAIN-6")},
        "PASS-10": (GRAD_MODES, "has no grad-mode block"),  # grad mode per thread: no pass needed
    }


def rule_reach(case: Case, implied: set[str]) -> list[str]:
    """A cited rule whose area the steps cannot touch (ACC without backward, HOOK without a hook, ...), or whose
    capabilities (the brackets of its level in spec/semantics.md) no step uses: a valid id citing the wrong rule."""
    rules, reach, notes = contracts.rules(), _reach(), []
    for rule in case.rules:
        area = rule.rsplit("-", 1)[0]
        needed, missing = reach.get(rule) or reach.get(area) or (None, "")
        if needed is not None and not needed & implied:
            notes.append(f"cites {rule}, but the case {missing}: its steps cannot check that rule")
        for capability in rules[rule].needs if rule in rules else ():
            tokens = _tokens(capability)
            if capability != "requires_grad" and tokens and not tokens & implied:  # requires_grad: any flag check
                notes.append(f"cites {rule}, which is about {capability!r}, but no step uses it: its steps cannot "
                             "check that rule")
    return notes


def _all_steps(steps: tuple[Step, ...]):
    for step in steps:
        yield step
        yield from _all_steps(step.body)


def _checks(step: Step) -> bool:
    return step.kind == "expect" or step.raises is not None or bool(step.warns)


def _walk(steps: tuple[Step, ...], values: dict[str, Any], problems: list[ShapeProblem]) -> None:
    budget = values.budget
    for step in steps:
        budget.add(step.line, steps=1)
        if step.kind == "thread":
            budget.add(step.line, "the threads started up to here", threads=1)
        if step.kind == "repeat":
            _repeat(step, values, problems)
            continue
        try:
            _step(step, values)
        except OverBudget:
            raise
        except ShapeProblem as problem:
            problems.append(problem)
        _walk(step.body, values, problems)


def _repeat(step: Step, values: dict[str, Any], problems: list[ShapeProblem]) -> None:
    """A repeat's body, walked once as its first pass; every further pass costs the same and computes the same
    shapes, which holds where the body leaves each name it rebinds as it found it (`y = y * 2`, not `y = cat(y, y)`:
    such a chain grows with every pass, beyond what one pass shows)."""
    budget, count = values.budget, step.args["repeat"]
    before, since = {name: _shape(value) for name, value in values.items()}, budget.mark()
    _walk(step.body, values, problems)
    if count == 1:
        return
    changed = [f"{name} from {list(shape)} to {list(_shape(values.get(name)))}" for name, shape in before.items()
               if shape is not UNKNOWN and _shape(values.get(name)) not in (shape, UNKNOWN)]
    if changed:
        problems.append(ShapeProblem(step.line, f"the steps of a repeat change the shape of {', '.join(changed)} in "
                                                "one pass, so every pass would compute other shapes: a repeat's steps "
                                                "leave the shapes of the names they rebind as they found them"))
    budget.again(since, count - 1, step.line, f"with its {count} passes, this repeat")


def _shape(value: Any) -> tuple | None:
    return UNKNOWN if value is UNKNOWN else np.shape(value)


def _step(step: Step, values: dict[str, Any]) -> None:
    args = step.args
    if step.raises is not None:  # the error may be the point; what it would have bound stays unknown
        if step.statement is not None:
            _sizes_only(step, values)
        for call in (args.get("grad"), args.get("derivative")):
            if call is not None and "as" in call:
                values.update(dict.fromkeys(as_list(call["as"]), UNKNOWN))
        if step.statement is not None:
            values.update(dict.fromkeys(step.statement.names_bound, UNKNOWN))
        return
    if step.kind == "compute":
        _compute(step, values)
    elif step.kind == "inplace":
        _inplace(step, values)
    elif step.kind == "setitem":
        _setitem(step, values)
    elif step.kind == "grad":
        call = args["grad"]
        outputs = as_list(call["outputs"])
        for index, gradient in enumerate(call.get("grad_outputs", ())):
            _same_shape(step, f"grad_outputs[{index}]", gradient, values.get(outputs[min(index, len(outputs) - 1)]))
        _bind_gradients(call.get("as"), as_list(call["inputs"]), values)
    elif step.kind == "derivative":
        call = args["derivative"]
        _same_shape(step, "gradient", call.get("gradient"), values.get(call["of"]))
        _bind_gradients(call["as"], as_list(call["wrt"]), values)
    elif step.kind == "backward":
        _same_shape(step, "gradient", args.get("gradient"), values.get(args["backward"]))
    elif step.kind == "set_grad":
        for name, value in args["set_grad"].items():
            _same_shape(step, f".grad of {name}", value, values.get(name))
    elif step.kind == "expect":
        _expectations(step, values)


def _sizes_only(step: Step, values: dict[str, Any]) -> None:
    """A step that expects an error may fail in any way but one: asking for a tensor beyond the limits."""
    try:
        _evaluate(step.statement.expr, values, step)
        if step.statement.inplace_op == "setitem" and values.get(step.statement.target) is not UNKNOWN:
            _region_size(step, np.shape(values[step.statement.target]))
    except (TooLarge, OverBudget):
        raise
    except Exception:  # noqa: BLE001 - the step expects an error: whatever numpy says of it is no problem of the case
        pass


def _compute(step: Step, values: dict[str, Any]) -> None:
    statement = step.statement
    value = _evaluate(statement.expr, values, step)
    if not statement.targets:
        values[statement.target] = value
        return
    if value is not UNKNOWN and len(value) != len(statement.targets):
        raise ShapeProblem(step.line, f"{statement.expr.op} gives {len(value)} output(s) here, but the step unpacks "
                                      f"{len(statement.targets)}: {', '.join(statement.targets)}")
    values.update(zip(statement.targets, [UNKNOWN] * len(statement.targets) if value is UNKNOWN else value,
                      strict=True))


def _evaluate(expr: Expr, values: dict[str, Any], step: Step) -> Any:
    if isinstance(expr, Num):
        return np.float64(expr.value)
    if isinstance(expr, Ref):
        return values.get(expr.name)
    if isinstance(expr, GradOf):
        value = values.get(expr.name)
        return UNKNOWN if value is UNKNOWN else np.zeros(np.shape(value))  # a .grad has its tensor's shape
    if isinstance(expr, Apply):
        return _apply(expr, values, step)
    assert isinstance(expr, Call)
    if all(isinstance(arg, Num) for arg in expr.args):  # e.g. (1).exp(): a number, not a tensor of any engine
        raise ShapeProblem(step.line, f"{expr.op} of numbers alone makes no tensor; declare the value under `tensors:`")
    operands = [_evaluate(arg, values, step) for arg in expr.args]
    if any(operand is UNKNOWN for operand in operands):
        return UNKNOWN
    size = result_size(expr.op, [np.shape(o) for o in operands], dict(expr.kwargs))
    _within_limit(step, expr.op, size)
    values.budget.add(step.line, elements=size)
    try:
        with np.errstate(all="ignore"):
            result = numpy_forward(expr.op, operands, dict(expr.kwargs))
            return tuple(map(np.asarray, result)) if isinstance(result, tuple) else np.asarray(result)
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        shapes = ", ".join(str(list(np.shape(o))) for o in operands)
        raise ShapeProblem(step.line, f"{expr.op} cannot take operands of shape {shapes}"
                                      f"{_kwargs_text(expr)}: {exc}") from None


def _apply(expr: Apply, values: dict[str, Any], step: Step) -> Any:
    """A case function's outputs: its forward steps evaluated on the operands (a tuple for several outputs)."""
    function = values.functions[expr.function]
    operands = [_evaluate(arg, values, step) for arg in expr.args]
    if any(operand is UNKNOWN for operand in operands):
        return UNKNOWN
    inner = _Values(zip(function.inputs, operands, strict=True), values.functions, values.budget)
    for statement in function.forward:
        value = _evaluate(statement.expr, inner, step)
        if value is UNKNOWN:
            return UNKNOWN
        if statement.inplace_op:
            if np.broadcast_shapes(np.shape(inner[statement.target]), np.shape(value)) != np.shape(inner[statement.target]):
                raise ShapeProblem(step.line, f"{expr.function}'s forward updates {statement.target} in place with "
                                              f"a value of shape {list(np.shape(value))} that does not fit it")
            value = inner[statement.target]
        inner[statement.target] = value
    outputs = tuple(np.asarray(inner[name]) for name in function.outputs)
    return outputs[0] if len(outputs) == 1 else outputs


def _within_limit(step: Step, what: str, size: int) -> None:
    """Refuse a tensor beyond the element limit, from its size worked out before anything is allocated."""
    most = limit("GRADSPEC_MAX_ELEMENTS")
    if size > most:
        raise TooLarge(step.line, f"{what} would make a tensor of {size} elements, more than the limit of {most} "
                                  "(GRADSPEC_MAX_ELEMENTS)")


def _region_size(step: Step, shape: tuple) -> None:
    """The region `x[index] = ...` writes is read first (an integer list copies it): bounded like any result."""
    _within_limit(step, f"{step.statement.target}[...]", result_size("getitem", [shape], {"index": step.statement.index}))


def _inplace(step: Step, values: dict[str, Any]) -> None:
    statement = step.statement
    target, operand = values.get(statement.target), _evaluate(statement.expr, values, step)
    if target is UNKNOWN or operand is UNKNOWN:
        return
    if not _fits_into(target, operand):
        raise ShapeProblem(step.line, f"{statement.target} {statement.inplace_op}= ... cannot update a tensor of "
                                      f"shape {list(np.shape(target))} with an operand of shape {list(np.shape(operand))}")


def _setitem(step: Step, values: dict[str, Any]) -> None:
    statement = step.statement
    target, value = values.get(statement.target), _evaluate(statement.expr, values, step)
    if target is UNKNOWN or value is UNKNOWN:
        return
    _region_size(step, np.shape(target))
    try:
        region = views.getitem(np.asarray(target), python_index(statement.index))
    except (IndexError, TypeError, ValueError) as exc:
        raise ShapeProblem(step.line, f"{statement.target}[...] cannot index a tensor of shape "
                                      f"{list(np.shape(target))}: {exc}") from None
    if not _fits_into(region, value):
        raise ShapeProblem(step.line, f"a value of shape {list(np.shape(value))} cannot be assigned to "
                                      f"{statement.target}[...] of shape {list(np.shape(region))}")


def _fits_into(target: Any, operand: Any) -> bool:
    """Whether `operand` broadcasts to `target`'s shape without changing it (an in-place update or an assignment)."""
    try:
        return np.broadcast_shapes(np.shape(target), np.shape(operand)) == np.shape(target)
    except ValueError:
        return False


def _bind_gradients(names: Any, inputs: list[str], values: dict[str, Any]) -> None:
    """A gradient has the shape of its input (SHAPE-1); its values are unknown, zeros stand in."""
    if names is None:
        return
    for name, source in zip(as_list(names), inputs, strict=True):
        value = values.get(source)
        values[name] = UNKNOWN if value is UNKNOWN else np.zeros(np.shape(value))


def _expectations(step: Step, values: dict[str, Any]) -> None:
    expect = step.args["expect"]
    for key, what in (("value", "value of"), ("grad", ".grad of")):
        for name, expected in expect.get(key, {}).items():
            _same_shape(step, f"expected {what} {name}", expected, values.get(name))


def _same_shape(step: Step, what: str, literal: Any, reference: Any) -> None:
    """A literal array (not a name, not null) must have the shape of the tensor it stands for."""
    if literal is None or isinstance(literal, str):
        return
    try:
        given = np.shape(np.asarray(thawed(literal), dtype=float))
    except (ValueError, TypeError):
        raise ShapeProblem(step.line, f"{what} is not a number or a rectangular array of numbers") from None
    if reference is UNKNOWN:
        return
    wanted = np.shape(reference)
    if given != wanted:
        raise ShapeProblem(step.line, f"{what} has shape {list(given)}, but the tensor it stands for has shape "
                                      f"{list(wanted)}")


def _kwargs_text(expr: Call) -> str:
    return "".join(f", {key}={value!r}" for key, value in expr.kwargs) if expr.kwargs else ""
