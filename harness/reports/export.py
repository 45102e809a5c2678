"""Export a case as a standalone PyTorch script, for a bug report upstream.

The script needs only torch. It runs the case's steps as plain PyTorch code, checks every
expectation, and raises AssertionError at the first deviation (printing "conforms" when
there is none). Error kinds are recognised by the torch adapter's message patterns, which
the script carries as data.
"""

from __future__ import annotations

import ast
import builtins
import contextvars
import keyword
import pprint
import re
from collections.abc import Mapping

from gradspec import contracts
from gradspec.adapters import torch_adapter
from gradspec.adapters.torch_like import FUNCTIONAL_OPS
from gradspec.language.case import NO_WARNING, Case, FunctionDef, Step, argument_forms, as_list, thawed
from gradspec.running.compare import tolerance_for
from gradspec.language.expressions import Apply, Expr, GradOf, Num, Ref, index_text

_METHODS = {"exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "sqrt", "clone", "detach",
            "expm1", "log1p", "log2", "log10", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
            "acosh", "atanh", "erf", "erfc", "rsqrt", "reciprocal", "square", "sign", "floor", "ceil", "round",
            "trunc", "trace"}
_SHAPE_CALLS = {
    "flatten": lambda a, k: f"{a}.flatten()",
    "broadcast_to": lambda a, k: f"{a}.broadcast_to({tuple(k['shape'])!r})",
    "flip": lambda a, k: f"{a}.flip({tuple(k['dims'])!r})",
    "roll": lambda a, k: f"{a}.roll({k['shifts']!r}, {k['dims']!r})",
    "repeat": lambda a, k: f"{a}.repeat({tuple(k['repeats'])!r})",
    "tile": lambda a, k: f"{a}.tile({tuple(k['reps'])!r})",
}
_BINARY_METHODS = {"maximum", "minimum", "atan2", "hypot", "fmod", "remainder", "copysign", "outer", "dot",
                   "gt", "lt", "ge", "le", "eq", "ne", "take"}
_LINALG = {"inv", "det", "solve"}
_OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
_INPLACE = {"add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_"}

_PRELUDE = '''
import re
import threading
import warnings

import torch

ERRORS = {errors!r}
WARNINGS = {warnings!r}
RTOL, ATOL = {rtol!r}, {atol!r}
DTYPE, DEVICE = torch.{dtype}, {device!r}
hook_log = []
saved_log = []  # saved-tensor hook calls: (label, "pack" or "unpack", value)
backward_log = []  # calls of the case's functions' backwards: (name, gradients, grad mode)
handles = {{}}
inf, nan = float("inf"), float("nan")  # as expected values are written


class HookRaised(Exception):
    """Raised by a hook that the case asks to raise."""


def kind_of(error):
    if isinstance(error, HookRaised):  # the hook's own exception, unchanged (HOOK-9)
        return "hook_error"
    for type_name, pattern, kind in ERRORS:
        if type(error).__name__ == type_name and re.search(pattern, str(error)):
            return kind
    return "unclassified"


def check_error(where, error, kind, match=None):
    got = kind_of(error)
    assert got == kind, f"{{where}}: expected error {{kind!r}}, got {{got}}: {{type(error).__name__}}: {{error}}"
    assert match is None or re.search(match, str(error)), f"{{where}}: message does not match {{match!r}}: {{error}}"


def check_warned(where, caught, kind):
    for warning in caught:
        for type_name, pattern, name in WARNINGS:
            if name == kind and type(warning.message).__name__ == type_name and re.search(pattern, str(warning.message)):
                return
    raise AssertionError(f"{{where}}: expected warning {{kind!r}}, got {{[str(w.message) for w in caught]}}")


def check_not_warned(where, caught):
    for warning in caught:
        for type_name, pattern, name in WARNINGS:
            if type(warning.message).__name__ == type_name and re.search(pattern, str(warning.message)):
                raise AssertionError(f"{{where}}: expected no warning, got {{name}}: {{warning.message}}")


def check_close(where, got, expected):
    if expected is None:
        assert got is None, f"{{where}}: expected None, got {{got}}"
        return
    assert got is not None, f"{{where}}: expected {{expected}}, got None"
    try:  # read as a user reads a result (SHAPE-5)
        got.detach().cpu().numpy()
    except RuntimeError as error:
        raise AssertionError(f"{{where}}: the result cannot be read as a user reads it: {{error}}") from None
    got = got.detach().cpu().to(torch.float64)
    want = torch.tensor(expected, dtype=torch.float64)
    assert got.shape == want.shape, f"{{where}}: expected shape {{list(want.shape)}}, got {{list(got.shape)}}"
    assert torch.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True), (
        f"{{where}}: expected {{want.tolist()}}, got {{got.tolist()}} (rtol={{RTOL}}, atol={{ATOL}})")


def make_hook(label, returns):
    def hook(gradient):
        hook_log.append((label, gradient.detach().cpu().clone(), torch.is_grad_enabled()))
        if returns == "raise":
            raise HookRaised(label)
        if returns is None:
            return None
        if "backward" in returns:
            globals()[returns["backward"]].backward()
            return None
        if "scale" in returns:
            return gradient * returns["scale"]
        return torch.as_tensor(returns["value"], dtype=gradient.dtype, device=gradient.device)
    return hook


def make_node_prehook(label, scale):
    def hook(grad_outputs):
        hook_log.append((label, grad_outputs[0].detach().cpu().clone(), torch.is_grad_enabled()))
        return None if scale is None else (grad_outputs[0] * scale, *grad_outputs[1:])
    return hook


def make_node_hook(label):
    def hook(grad_inputs, grad_outputs):
        hook_log.append((label, grad_outputs[0].detach().cpu().clone(), torch.is_grad_enabled()))
    return hook


def make_post_hook(label, modifies=None, returns=None):
    def hook(tensor):
        hook_log.append((label, None if tensor.grad is None else tensor.grad.detach().cpu().clone(),
                         torch.is_grad_enabled()))
        if modifies == "clear":
            tensor.grad = None
        elif modifies is not None:
            tensor.grad.mul_(modifies["scale"])
        return None if returns is None else tensor.grad * returns["scale"]
    return hook


def check_hook_calls(where, expected):
    got = [label for label, _, _ in hook_log]
    assert got == [call["hook"] for call in expected], f"{{where}}: hook calls {{got}}, expected {{expected}}"
    for (label, gradient, mode), call in zip(hook_log, expected):
        if "grad" in call:
            check_close(f"{{where}}: hook {{label}}", gradient, call["grad"])
        assert call.get("grad_mode", mode) == mode, f"{{where}}: grad mode in hook {{label}} was {{mode}}"
    hook_log.clear()


def logged(name, grads):
    backward_log.append((name, [None if g is None else g.detach().cpu().clone() for g in grads],
                         torch.is_grad_enabled()))


def check_backward_calls(where, expected):
    got = [name for name, _, _ in backward_log]
    assert got == [call["function"] for call in expected], f"{{where}}: backward calls {{got}}, expected {{expected}}"
    for (name, grads, mode), call in zip(backward_log, expected):
        assert len(grads) == len(call["grads"]), f"{{where}}: {{name}} got {{len(grads)}} gradients"
        for grad, want in zip(grads, call["grads"]):
            check_close(f"{{where}}: gradient into {{name}}", grad, want)
        assert call.get("grad_mode", mode) == mode, f"{{where}}: grad mode in {{name}}'s backward was {{mode}}"
    backward_log.clear()


def make_pack(label, scale, in_place):
    def pack(tensor):
        saved_log.append((label, "pack", tensor.detach().cpu().clone()))
        if scale is None:
            return tensor
        return tensor.mul_(scale) if in_place else tensor * scale
    return pack


def make_unpack(label, scale):
    def unpack(packed):
        saved_log.append((label, "unpack", packed.detach().cpu().clone()))
        return packed if scale is None else packed * scale
    return unpack


def check_saved_hook_calls(where, expected):
    for which in ("pack", "unpack"):
        got = [(label, value) for label, call, value in saved_log if call == which]
        want = [(call[which], call["value"]) for call in expected if which in call]
        assert len(got) == len(want), f"{{where}}: {{len(got)}} {{which}} calls, expected {{len(want)}}"
        for want_label, want_value in want:  # unpack calls come in no promised order
            index = next((i for i, (label, value) in enumerate(got) if label == want_label and torch.allclose(
                value.to(torch.float64), torch.tensor(want_value, dtype=torch.float64), rtol=RTOL, atol=ATOL)), None)
            assert index is not None, f"{{where}}: no {{which}} call of {{want_label}} with {{want_value}}"
            assert which == "unpack" or index == 0, f"{{where}}: pack calls out of order"
            got.pop(index)
    saved_log.clear()


def run_threads(bodies):
    """Each body in a thread of its own, meeting at BARRIER; the first failure is raised here."""
    global BARRIER
    BARRIER, failures = threading.Barrier(len(bodies)), []

    def run(body):
        try:
            body()
        except BaseException as failure:
            failures.append(failure)
            BARRIER.abort()

    threads = [threading.Thread(target=run, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    real = [f for f in failures if not isinstance(f, threading.BrokenBarrierError)]
    if real or failures:
        raise (real or failures)[0]


def check_hook_grads(where, expected):
    seen = {{}}
    for label, gradient, _ in hook_log:
        seen.setdefault(label, []).append(gradient)
    assert sorted(seen) == sorted(expected), f"{{where}}: hooks called {{sorted(seen)}}, expected {{sorted(expected)}}"
    for label, grads in expected.items():
        assert len(seen[label]) == len(grads), f"{{where}}: hook {{label}} called {{len(seen[label])}} times"
        for got, want in zip(seen[label], grads):
            check_close(f"{{where}}: hook {{label}}", got, want)
    hook_log.clear()

'''


def to_torch_script(case: Case, device: str = "cpu", dtype: str = "float64") -> str:
    """The case as a Python script that needs only torch."""
    token = _RENAMED.set(script_names(case))
    try:
        return _script(case, device, dtype)
    finally:
        _RENAMED.reset(token)


def _script(case: Case, device: str, dtype: str) -> str:
    tolerance = tolerance_for(dtype, case.tolerance)
    rules = contracts.rules()
    # Text from the case (title, source, derivation, id) enters the script only as literals that
    # repr() writes, never pasted into code, a docstring or a comment: no case can inject code.
    about = {"id": case.id, "title": case.title, "source": case.source,
             "rules": {rule: rules[rule].text if rule in rules else "" for rule in case.rules},
             "derivation": case.derivation}
    lines = ['"""A gradspec case exported as a standalone PyTorch script: CASE says which and why.',
             "",
             f"Run with: python this_file.py  (torch, {device}, {dtype}). It raises AssertionError at the first",
             'step that does not behave as the case says, and prints "conforms" otherwise.', '"""',
             f"CASE = {pprint.pformat(about, width=100, sort_dicts=False)}"]
    lines.append(_PRELUDE.format(errors=[(t.__name__, p, k) for t, p, k in torch_adapter.ERRORS],
                                 warnings=[(t.__name__, p, k) for t, p, k in torch_adapter.WARNINGS],
                                 rtol=tolerance["rtol"], atol=tolerance["atol"], dtype=dtype, device=device))
    for function in case.functions.values():
        lines += _function_class(function)
    for tensor in case.tensors:
        tensor_dtype = f"torch.{tensor.dtype}" if tensor.dtype else "DTYPE"
        lines.append(f"{_n(tensor.name)} = torch.tensor({tensor.value.tolist()!r}, dtype={tensor_dtype}, device=DEVICE"
                     f"{', requires_grad=True' if tensor.requires_grad else ''})")
    _steps(lines, case.steps, "", "")
    lines.append('print("conforms:", CASE["id"])')
    return "\n".join(lines) + "\n"


def _function_class(function: FunctionDef) -> list[str]:
    """A case function as a torch.autograd.Function subclass; its backward logs what it receives."""
    def assigned(statement) -> str:
        if statement.inplace_op:
            return f"        {_n(statement.target)}.{_INPLACE[statement.inplace_op]}({_expr(statement.expr)})"
        return f"        {_targets(statement)} = {_expr(statement.expr)}"

    grads = [_n(function.grad_name(output)) for output in function.outputs]
    lines = ["", "", f"class {_n(function.name)}(torch.autograd.Function):", "    @staticmethod",
             f"    def forward(ctx, {', '.join(map(_n, function.inputs))}):", *map(assigned, function.forward),
             f"        ctx.save_for_backward({', '.join(map(_n, function.save))})"]
    for option, call in (("non_differentiable", "mark_non_differentiable"), ("dirty", "mark_dirty")):
        if getattr(function, option):
            lines.append(f"        ctx.{call}({', '.join(map(_n, getattr(function, option)))})")
    if not function.materialize_grads:
        lines.append("        ctx.set_materialize_grads(False)")
    lines += [f"        return {', '.join(map(_n, function.outputs))}", "", "    @staticmethod"]
    if function.once_differentiable:
        lines.append("    @torch.autograd.function.once_differentiable")
    lines += [f"    def backward(ctx, {', '.join(grads)}):"]
    lines += ["        ctx.saved_tensors  # read once more: each read unpacks (SAVED-2)"] * (function.reads_saved - 1)
    lines += [f"        ({''.join(_n(name) + ', ' for name in function.save)}) = ctx.saved_tensors",
              f"        logged({function.name!r}, [{', '.join(grads)}])", *map(assigned, function.backward),
              f"        return {', '.join('None' if name is None else _n(name) for name in function.returns) or '()'}", ""]
    return lines


def _steps(lines: list[str], steps: tuple[Step, ...], indent: str, prefix: str) -> None:
    for number, step in enumerate(steps, start=1):
        where = f"step {prefix}{number} ({step.describe()})"
        lines.append(f"{indent}# {where}")
        body = _statements(step, indent, f"{prefix}{number}.", where)
        if step.warns:
            lines.append(f"{indent}with warnings.catch_warnings(record=True) as caught:")
            lines.append(f"{indent}    warnings.simplefilter('always')")
            body = ["    " + line for line in body]
        if step.raises:
            lines.append(f"{indent}try:")
            lines += ["    " + line for line in body]
            lines.append(f"{indent}except Exception as error:")
            lines.append(f"{indent}    check_error({where!r}, error, {step.raises.kind!r}, {step.raises.match!r})")
            message = f"{where}: expected error {step.raises.kind!r}, but the step completed"
            lines.append(f"{indent}else:")
            lines.append(f"{indent}    raise AssertionError({message!r})")
        else:
            lines += body
        for kind in step.warns:
            if kind == NO_WARNING:
                lines.append(f"{indent}check_not_warned({where!r}, caught)")
            else:
                lines.append(f"{indent}check_warned({where!r}, caught, {kind!r})")


def _written(items: list[str], form: str) -> str:
    """Python source of a call's argument in the case's form: the one item bare, a list or a tuple."""
    if form == "tensor":
        return items[0]
    if form == "tuple":
        return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
    return f"[{', '.join(items)}]"


def _statements(step: Step, indent: str, prefix: str, where: str) -> list[str]:
    args, kind = step.args, step.kind
    if kind == "compute":
        return [f"{indent}{_targets(step.statement)} = {_expr(step.statement.expr)}"]
    if kind == "setitem":
        statement = step.statement
        return [f"{indent}{_n(statement.target)}[{index_text(statement.index)}] = {_expr(statement.expr)}"]
    if kind == "detach_":
        return [f"{indent}{_n(args['detach_'])}.detach_()"]
    if kind == "inplace":
        statement = step.statement
        return [f"{indent}{_n(statement.target)}.{_INPLACE[statement.inplace_op]}({_expr(statement.expr)})"]
    if kind == "backward":
        forms = argument_forms("backward", args)  # each argument written as the case writes it
        options = _options(args, ("retain_graph", "create_graph"))
        if "inputs" in args:
            options.append(f"inputs={_written(_names(args['inputs']), forms['inputs'])}")
        if forms["backward"] != "tensor":  # autograd.backward: several outputs, or one in a list or a tuple
            outputs = _names(args["backward"])
            gradients = args.get("gradients") if isinstance(args["backward"], tuple) else \
                None if "gradient" not in args else [args["gradient"]]
            if gradients is not None:
                given = ["None" if g is None else _gradient(g, o) for g, o in zip(gradients, outputs, strict=True)]
                options.insert(0, f"grad_tensors={_written(given, forms['gradient'])}")
            return [f"{indent}torch.autograd.backward({_written(outputs, forms['backward'])}"
                    f"{''.join(', ' + o for o in options)})"]
        if "gradient" in args:
            options.insert(0, f"gradient={_gradient(args['gradient'], _n(args['backward']))}")
        return [f"{indent}{_n(args['backward'])}.backward({', '.join(options)})"]
    if kind == "grad":
        call = args["grad"]
        forms = argument_forms("grad", call)
        outputs, inputs = _names(call["outputs"]), _names(call["inputs"])
        options = _options(call, ("retain_graph", "create_graph", "allow_unused", "materialize_grads"))
        if "grad_outputs" in call:
            grads = [_gradient(g, outputs[min(i, len(outputs) - 1)]) for i, g in enumerate(call["grad_outputs"])]
            options.insert(0, f"grad_outputs={_written(grads, forms['grad_outputs'])}")
        target = f"({', '.join(_names(call['as']))},) = " if "as" in call else ""
        return [f"{indent}{target}torch.autograd.grad({_written(outputs, forms['outputs'])}, "
                f"{_written(inputs, forms['inputs'])}{''.join(', ' + o for o in options)})"]
    if kind == "derivative":  # torch has grad, which is what the step uses where an engine has it
        call = args["derivative"]
        gradient = f", grad_outputs=[{_gradient(thawed(call['gradient']), _n(call['of']))}]" if "gradient" in call else ""
        return [f"{indent}({', '.join(_names(call['as']))},) = torch.autograd.grad([{_n(call['of'])}], "
                f"[{', '.join(_names(call['wrt']))}]{gradient})"]
    if kind == "retain_grad":
        return [f"{indent}{_n(args['retain_grad'])}.retain_grad()"]
    if kind == "register_hook":
        returns = thawed(args.get("returns"))
        if isinstance(returns, dict) and "backward" in returns:  # a name the hook looks up in the script's globals
            returns["backward"] = _n(returns["backward"])
        hook = f"make_hook({args['as']!r}, {returns!r})"
        return [f"{indent}handles[{args['as']!r}] = {_n(args['register_hook'])}.register_hook({hook})"]
    if kind == "register_post_accumulate_grad_hook":
        return [f"{indent}handles[{args['as']!r}] = {_n(args['register_post_accumulate_grad_hook'])}"
                f".register_post_accumulate_grad_hook(make_post_hook({args['as']!r}, "
                f"{thawed(args.get('modifies'))!r}, {thawed(args.get('returns'))!r}))"]
    if kind == "register_node_prehook":
        scale = (thawed(args.get("returns")) or {}).get("scale")
        return [f"{indent}handles[{args['as']!r}] = {_n(args['register_node_prehook'])}.grad_fn.register_prehook("
                f"make_node_prehook({args['as']!r}, {scale!r}))"]
    if kind == "register_node_hook":
        return [f"{indent}handles[{args['as']!r}] = {_n(args['register_node_hook'])}.grad_fn.register_hook("
                f"make_node_hook({args['as']!r}))"]
    if kind == "remove_hook":
        return [f"{indent}handles[{args['remove_hook']!r}].remove()"]
    if kind == "set_grad":
        return [f"{indent}{_n(name)}.grad = {'None' if value is None else _gradient(thawed(value), _n(name))}"
                for name, value in args["set_grad"].items()]
    if kind == "zero_grad":
        return [f"{indent}{name}.grad.zero_()" for name in _names(args["zero_grad"])]
    if kind == "requires_grad_":
        return [f"{indent}{_n(name)}.requires_grad_({'' if flag is None else flag})"
                for name, flag in args["requires_grad_"].items()]
    if kind == "repeat":
        nested: list[str] = []
        _steps(nested, step.body, indent + "    ", prefix)
        return [f"{indent}for _ in range({int(args['repeat'])}):", *nested]
    if kind == "saved_tensor_hooks":
        pack, unpack = args.get("pack") or {}, args.get("unpack") or {}
        label, nested = args["saved_tensor_hooks"], []
        _steps(nested, step.body, indent + "    ", prefix)
        return [f"{indent}with torch.autograd.graph.saved_tensors_hooks(make_pack({label!r}, {pack.get('scale')!r}, "
                f"{bool(pack.get('in_place'))!r}), make_unpack({label!r}, {unpack.get('scale')!r})):", *nested]
    if kind == "threads":
        lines, names = [], []
        for number, thread in enumerate(step.body, start=1):
            name = f"thread_{prefix.replace('.', '_')}{number}"
            bound = sorted(_names_bound(thread.body))
            nested: list[str] = [f"{indent}    global {', '.join(bound)}"] if bound else []
            _steps(nested, thread.body, indent + "    ", f"{prefix}t{number}.")
            lines += [f"{indent}def {name}():", *nested]
            names.append(name)
        return [*lines, f"{indent}run_threads([{', '.join(names)}])"]
    if kind == "barrier":
        return [f"{indent}BARRIER.wait()"]
    if kind in ("no_grad", "enable_grad", "set_grad_enabled", "inference_mode"):
        context = {"no_grad": "torch.no_grad()", "enable_grad": "torch.enable_grad()",
                   "inference_mode": "torch.inference_mode()"}.get(
            kind, f"torch.set_grad_enabled({args.get('set_grad_enabled')})")
        form = args.get("form") or "context"
        if form == "context":
            nested: list[str] = []
            _steps(nested, step.body, indent + "    ", prefix)
            return [f"{indent}with {context}:", *nested]
        name = f"{step.kind}_{prefix.replace('.', '_')}{form}_{step.line}"
        bound = sorted(_names_bound(step.body))
        nested = [f"{indent}    global {', '.join(bound)}"] if bound else []
        for number, inner in enumerate(step.body, start=1):  # a generator resumes once per step
            _steps(nested, (inner,), indent + "    ", f"{prefix}{number}.")
            if form == "generator":
                nested.append(f"{indent}    yield")
        call = f"{indent}{name}()" if form == "decorator" else f"{indent}for _ in {name}():\n{indent}    pass"
        return [f"{indent}@{context}", f"{indent}def {name}():", *nested, *call.split("\n")]
    if kind == "expect":
        return [indent + line for line in _expectations(args["expect"], where, quiet=not step.warns)]
    raise ValueError(f"no export for step kind {kind!r}")  # pragma: no cover - the schema knows every kind


def _expectations(expect, where: str, quiet: bool) -> list[str]:
    """Checks for one expect step; `quiet` silences warnings from reading .grad unless the step expects them."""
    lines = []
    for name, value in expect.get("value", {}).items():
        lines.append(f"check_close({where + ': value of ' + name!r}, {_n(name)}, {thawed(value)!r})")
    for name, value in expect.get("grad", {}).items():
        check = f"check_close({where + ': .grad of ' + name!r}, {_n(name)}.grad, {thawed(value)!r})"
        if quiet:
            lines += ["with warnings.catch_warnings():", "    warnings.simplefilter('ignore')", "    " + check]
        else:
            lines.append(check)
    for name, value in expect.get("grad_dtype", {}).items():
        lines.append(f"assert {_n(name)}.grad is not None and {_n(name)}.grad.dtype == torch.{value}, "
                     f"{where + ': dtype of .grad of ' + name + ' is not ' + value!r}")
    checks = {"requires_grad": "{}.requires_grad", "is_leaf": "{}.is_leaf", "has_grad_fn": "({}.grad_fn is not None)",
              "is_inference": "{}.is_inference()"}
    for flag, template in checks.items():
        for name, value in expect.get(flag, {}).items():
            message = f"{where}: {flag} of {name} is not {value}"
            lines.append(f"assert {template.format(_n(name))} == {value}, {message!r}")
    if "hook_calls" in expect:
        lines.append(f"check_hook_calls({where!r}, {thawed(expect['hook_calls'])!r})")
    if "hook_grads" in expect:
        lines.append(f"check_hook_grads({where!r}, {thawed(expect['hook_grads'])!r})")
    if "backward_calls" in expect:
        lines.append(f"check_backward_calls({where!r}, {thawed(expect['backward_calls'])!r})")
    if "saved_hook_calls" in expect:
        lines.append(f"check_saved_hook_calls({where!r}, {thawed(expect['saved_hook_calls'])!r})")
    return lines


def _names_bound(steps: tuple[Step, ...]) -> set[str]:
    """The names a thread's steps bind (as the script writes them), which its thread function declares global."""
    names: set[str] = set()
    for step in steps:
        if step.statement is not None:
            names.update(map(_n, step.statement.names_bound))
        for call in (step.args.get("grad"), step.args.get("derivative")):
            if isinstance(call, Mapping) and "as" in call:
                names.update(_names(call["as"]))
        names |= _names_bound(step.body)
    return names


def _expr(expr: Expr) -> str:
    if isinstance(expr, Num):
        return repr(expr.value)
    if isinstance(expr, Ref):
        return _n(expr.name)
    if isinstance(expr, GradOf):
        return f"{_n(expr.name)}.grad"
    if isinstance(expr, Apply):
        return f"{_n(expr.function)}.apply({', '.join(_expr(a) for a in expr.args)})"
    args = [_expr(a) for a in expr.args]
    kwargs = dict(expr.kwargs)
    if expr.op in _OPERATORS:
        return f"({args[0]} {_OPERATORS[expr.op]} {args[1]})"
    if expr.op == "neg":
        return f"(-{args[0]})"
    if expr.op in ("sum", "mean", "prod", "max", "min", "argmax", "argmin"):
        if kwargs.get("dim") is None:
            return f"{args[0]}.{expr.op}()"
        picked = ".values" if expr.op in ("max", "min") else ""  # along a dim max and min give (values, indices)
        return f"{args[0]}.{expr.op}({kwargs['dim']}, keepdim={bool(kwargs.get('keepdim', False))}){picked}"
    if expr.op == "norm":
        p = kwargs.get("p", 2)
        order = "float('inf')" if p == "inf" else repr(p)
        return (f"torch.linalg.vector_norm({args[0]}, {order}, "
                f"dim={kwargs.get('dim')!r}, keepdim={bool(kwargs.get('keepdim', False))})")
    if expr.op in ("cat", "stack"):
        return f"torch.{expr.op}([{', '.join(args)}], dim={kwargs.get('dim', 0)!r})"
    if expr.op in _LINALG:
        return f"torch.linalg.{expr.op}({', '.join(args)})"
    if expr.op == "masked_fill":
        return f"{args[0]}.masked_fill({args[1]} != 0, {kwargs['value']!r})"
    if expr.op in ("diag", "triu", "tril"):
        return f"{args[0]}.{expr.op}({kwargs.get('diagonal', 0)!r})"
    if expr.op == "transpose":
        return f"{args[0]}.t()"
    if expr.op == "reshape":
        return f"{args[0]}.reshape({tuple(kwargs['shape'])!r})"
    if expr.op == "getitem":
        return f"{args[0]}[{index_text(kwargs['index'])}]"
    if expr.op == "data":
        return f"{args[0]}.data"
    if expr.op in _POSITIONAL:
        return _positional(expr.op, args, kwargs)
    if expr.op in ("amax", "amin", "logsumexp", "softmax", "log_softmax", "cumsum", "cumprod", "var", "std"):  # keywords
        return f"{args[0]}.{expr.op}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    if expr.op in _SHAPE_CALLS:
        return _SHAPE_CALLS[expr.op](args[0], kwargs)
    if expr.op in _BINARY_METHODS:
        return f"{args[0]}.{expr.op}({args[1]})"
    if expr.op == "lerp":
        return f"torch.lerp({args[0]}, {args[1]}, {kwargs['weight']!r})"
    if expr.op == "where":
        return f"torch.where({args[0]} != 0, {args[1]}, {args[2]})"
    if expr.op in FUNCTIONAL_OPS or expr.op == "clamp":  # keyword arguments as torch names them
        call = f"torch.nn.functional.{expr.op}" if expr.op in FUNCTIONAL_OPS else "torch.clamp"
        return f"{call}({', '.join([args[0], *(f'{k}={v!r}' for k, v in kwargs.items())])})"
    assert expr.op in _METHODS, expr.op
    return f"{args[0]}.{expr.op}()"


# Ops spelled as torch methods with positional arguments: the attributes in torch's order ("*" unpacks a
# shape), and for index ops the index operand after `dim`, then the source operand.
_POSITIONAL = {
    "select": ("dim", "index"), "narrow": ("dim", "start", "length"), "unsqueeze": ("dim",), "squeeze": ("dim",),
    "expand": ("*shape",), "view": ("*shape",), "permute": ("*dims",), "diagonal": ("offset", "dim1", "dim2"),
    "unbind": ("dim",), "split": ("split_size", "dim"), "chunk": ("chunks", "dim"), "gather": ("dim",),
    "index_select": ("dim",), "scatter": ("dim",), "scatter_add": ("dim",), "index_add": ("dim",),
}


def _positional(op: str, args: list[str], kwargs: dict) -> str:
    attributes = contracts.ops()[op].get("attributes", {})
    values = []
    for name in _POSITIONAL[op]:
        key = name.lstrip("*")
        value = kwargs.get(key, attributes[key].get("default"))
        if value is None:
            continue  # squeeze() with no dim
        values.append(", ".join(map(str, value)) if name.startswith("*") else repr(value))
    return f"{args[0]}.{op}({', '.join(values + args[1:])})"


def _gradient(value, like: str) -> str:
    """A gradient given by name, or as a literal made like the tensor `like` (a name as the script writes it)."""
    if isinstance(value, str):
        return _n(value)
    return f"torch.tensor({thawed(value)!r}, dtype={like}.dtype, device={like}.device)"


def _options(args, names) -> list[str]:
    return [f"{name}={args[name]}" for name in names if name in args]




# Names of the case (tensors, results, functions and their variables) become names of the script. One that is no
# Python name (`x` and a newline), or that the script itself binds (`torch`, `check_close`, `nan`, `inf`, a builtin)
# would break the script or change what it checks: such a name gets a name of its own in the script (`torch_`),
# while messages keep the case's name.
_RENAMED: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("renamed", default={})
_GENERATED = re.compile(r"(thread|no_grad|enable_grad|set_grad_enabled|inference_mode)_")  # functions _steps writes


def _prelude_names() -> set[str]:
    """What the script binds at its top level, besides the case's names."""
    tree = ast.parse(_PRELUDE.format(errors=[], warnings=[], rtol=0.0, atol=0.0, dtype="float64", device="cpu"))
    names = {"CASE", "BARRIER", "caught", "error", "ctx", "_"}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return names


_RESERVED = _prelude_names() | set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)


def script_names(case: Case) -> dict[str, str]:
    """Each case name that cannot be the script's name for it, with the name the script uses instead."""
    names = _case_names(case)
    renamed: dict[str, str] = {}
    for name in sorted(names):
        if name.isidentifier() and name not in _RESERVED and not _GENERATED.match(name):
            continue
        base = re.sub(r"\W", "_", name.strip()) or "t"
        base = f"t_{base}" if base[0].isdigit() or _GENERATED.match(base) else base
        while base in _RESERVED or base in names or base in renamed.values():
            base += "_"
        renamed[name] = base
    return renamed


def _case_names(case: Case) -> set[str]:
    names = {decl.name for decl in case.tensors}
    for function in case.functions.values():
        names.update([function.name, *function.inputs, *function.outputs, *function.save,
                      *(function.grad_name(output) for output in function.outputs),
                      *(n for n in function.returns if n is not None)])
        names.update(bound for statement in (*function.forward, *function.backward) for bound in statement.names_bound)

    def walk(steps: tuple[Step, ...]) -> None:
        for step in steps:
            if step.statement is not None:
                names.update(step.statement.names_bound)
            for call in (step.args.get("grad"), step.args.get("derivative")):
                if isinstance(call, Mapping) and "as" in call:
                    names.update(as_list(call["as"]))
            walk(step.body)
    walk(case.steps)
    return names


def _n(name: str) -> str:
    """A case's name as the script writes it (script_names)."""
    return _RENAMED.get().get(name, name)


def _names(value) -> list[str]:
    """A case's "one name, or a list of names", as the script writes them."""
    return [_n(name) for name in as_list(value)]


def _targets(statement) -> str:
    """A statement's left-hand side as the script writes it: `y`, `a, b`, or `a,` for one output."""
    if not statement.targets:
        return _n(statement.target)
    return ", ".join(map(_n, statement.targets)) + ("," if len(statement.targets) == 1 else "")
