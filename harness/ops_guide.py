"""The adapter guide to the op vocabulary (docs/ops.md): each op as `Adapter.apply` receives it, and its NumPy spelling.

Generated from spec/ops.yaml and `gradspec.numpy_style.RECIPES` by `gradspec ops --markdown`, so it
covers every op and changes with them; tests/test_numpy_style.py regenerates it and compares.
"""

from __future__ import annotations

from gradspec import contracts
from gradspec.numpy_style import RECIPES

HEADER = """# The op vocabulary, as an adapter receives it

Generated from `spec/ops.yaml` and `gradspec.numpy_style` by `gradspec ops --markdown > docs/ops.md`
(a test regenerates it and compares); edit those, not this file.

`Adapter.apply(op, args, kwargs)` gets the operands in `args`, in the order below (engine tensors, or
Python floats where a case writes a number), and in `kwargs` only the attributes the case gives: pass
the others on as not given, so that the engine's defaults are what is tested (the defaults below are
the vocabulary's; `getitem`'s `index` is a tuple as Python writes a subscript: ints, slices, None,
Ellipsis and lists of ints). An op with several outputs returns a sequence; `*tensors` is any number of tensors.
An index operand is an int64 tensor (no gradient; an engine may take it as a plain array), a condition
an int64 tensor whose nonzero elements mean true. A view op's result shares its operand's values where
the adapter declares `views`.

**NumPy-style** is what `gradspec.numpy_style.numpy_style(module, special=None, **overrides)` calls: each
name is a function of `module` (then of `special`, a scipy.special-like namespace), and an op whose
functions `module` lacks is lacking, with the reason (`gradspec engines NAME` lists them). Override an
entry by op name where the engine differs. **PyTorch-style** engines use
`gradspec.adapters.torch_like.OPS`: each op is the tensor method of its name (`a.exp()`, `a.clamp(min=,
max=)`), `torch.nn.functional` for softplus, silu, gelu, leaky_relu and elu, the namespace for cat,
stack, inv, det and solve.

| op | args | kwargs (default) | returns | NumPy-style |
|---|---|---|---|---|
"""


def _operands(entry: dict) -> str:
    if entry["arity"] == "many":
        return "*tensors"
    names = entry.get("operands") or list("abc"[:entry["arity"]])
    marks = {entry.get("index_operand"): "int64 index", entry.get("condition_operand"): "int64 condition"}
    return ", ".join(f"{name} ({marks[i]})" if i in marks else name for i, name in enumerate(names))


def _attributes(entry: dict) -> str:
    parts = []
    for name, spec in (entry.get("attributes") or {}).items():
        value = "required" if spec.get("required") else repr(spec.get("default"))
        choices = f", one of {', '.join(map(repr, spec['choices']))}" if "choices" in spec else ""
        parts.append(f"{name} ({value}{choices})")
    return ", ".join(parts) or "none"


def _returns(entry: dict) -> str:
    several = entry.get("outputs") == "many"
    if entry.get("view"):
        return "a sequence of views" if several else "a view"
    if entry.get("differentiable") is False:
        return "a tensor that never requires grad (int64 or bool)"
    return "a sequence" if several else "a tensor"


def _numpy(op: str) -> str:
    return RECIPES[op].spelling if op in RECIPES else "the adapter's own (stop_gradient, a constant copy)"


def text() -> str:
    """One line per op: apply's arguments, then the NumPy spelling."""
    lines = []
    for op, entry in contracts.ops().items():
        attributes = _attributes(entry)
        lines.append(f"{op}({_operands(entry)}{'' if attributes == 'none' else '; ' + attributes})  NumPy-style: "
                     f"{_numpy(op)}")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """docs/ops.md: one row per op of spec/ops.yaml, in its order."""
    rows = []
    for op, entry in contracts.ops().items():
        numpy = f"`{_numpy(op)}`"
        operator = f" (`{entry['operator']}`)" if entry.get("operator") else ""
        cells = [f"`{op}`{operator}", _operands(entry), _attributes(entry), _returns(entry), numpy]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return HEADER + "\n".join(rows) + "\n"
