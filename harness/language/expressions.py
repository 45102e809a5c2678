"""Parse compute steps (`y = (x @ w + b) ** 2`, `a += 1`, `x[1:3] = v`, `p, q = unbind(x)`) into a tiny expression tree.

Python's own `ast` does the parsing; a whitelist then accepts only names, numbers,
the operators + - * / ** @, unary minus and plus, calls of vocabulary ops (as
functions, `exp(x)`, or methods, `x.exp()`), and subscripts made of integers, slices,
None, `...` and integer lists (`x[1:3]`, `x[:, 0]`, `x[[0, 0, 1]]`), which are the op
`getitem`, in the forms numpy and PyTorch read alike (positive steps, one `...`, integer
lists beside the integers they combine with). Nothing is ever evaluated.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache

from gradspec import contracts
from gradspec.language.errors import did_you_mean


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class GradOf:
    """`x.grad` read inside an expression: the gradient stored on tensor x (None if absent)."""

    name: str


@dataclass(frozen=True)
class Call:
    op: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Apply:
    """A call of a function the case defines under `functions:` (a custom derivative), `Cube(x)`."""

    function: str
    args: tuple[Expr, ...]


Expr = Num | Ref | GradOf | Call | Apply


# A subscript, hashable: per position an int, None, "..." (Ellipsis), ("slice", start, stop, step)
# or ("list", ints) for an integer list (advanced indexing). python_index() turns it into Python's.
Index = tuple


@dataclass(frozen=True)
class Statement:
    """`target = expr`; with `inplace_op` set, `target <inplace_op>= expr`, or for "setitem" `target[index] = expr`;
    with `targets`, `a, b = expr` for an op with several outputs (target is then the first name)."""

    target: str
    expr: Expr
    inplace_op: str | None = None
    index: Index | None = None
    targets: tuple[str, ...] = ()

    @property
    def names_bound(self) -> tuple[str, ...]:
        """Every name the statement binds."""
        return self.targets or (self.target,)

    @property
    def targets_text(self) -> str:
        """The left-hand side as written: `y`, `a, b`, or `a,` for an op that gave one output."""
        if not self.targets:
            return self.target
        return ", ".join(self.targets) + ("," if len(self.targets) == 1 else "")


def python_index(index: Index) -> tuple:
    """The subscript as Python writes it: ints, slices, None, Ellipsis and lists of ints (idempotent)."""
    def item(part):
        if part == "...":
            return Ellipsis
        if isinstance(part, tuple) and part[0] == "slice":
            return slice(*part[1:])
        if isinstance(part, tuple) and part[0] == "list":
            return list(part[1])
        return part
    return tuple(item(part) for part in index)


def call_kwargs(call: Call) -> dict:
    """A call's keyword arguments as an adapter receives them: getitem's index as Python writes it."""
    kwargs = dict(call.kwargs)
    if call.op == "getitem":
        kwargs["index"] = python_index(kwargs["index"])
    return kwargs


def index_text(index: Index) -> str:
    """The subscript as written in a case: `1:3, None`."""
    def item(part):
        if part == "...":
            return "..."
        if isinstance(part, tuple) and part[0] == "slice":
            start, stop, step = ("" if v is None else str(v) for v in part[1:])
            return f"{start}:{stop}" + (f":{step}" if step else "")
        if isinstance(part, tuple) and part[0] == "list":
            return f"[{', '.join(map(str, part[1]))}]"
        return str(part)
    return ", ".join(item(part) for part in index)


class ExpressionError(Exception):
    """Not an allowed statement; `column` is 0-based within the statement's text."""

    def __init__(self, message: str, column: int = 0):
        super().__init__(message)
        self.message, self.column = message, column


ALLOWED = ("names, numbers, `name.grad`, the operators + - * / ** @, unary minus, calls of vocabulary ops, "
           "and subscripts (`x[1:3]`, `x[0, None]`, `x[..., 1]`, `x[[0, 0, 1]]`)")


def _operator_table() -> tuple[dict[type, str], dict[type, str]]:
    by_symbol = {entry["operator"]: name for name, entry in contracts.ops().items() if "operator" in entry}
    binary = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}
    return (
        {node: by_symbol[symbol] for node, symbol in binary.items() if symbol in by_symbol},
        {ast.USub: by_symbol.get("unary -")},
    )


@lru_cache(maxsize=4096)
def parse_statement(text: str, functions: frozenset[str] = frozenset()) -> Statement:
    """Parse one compute statement, or raise ExpressionError saying what is allowed (cached: Statements are immutable).

    `functions` are the names of the case's own functions (`functions:`), callable like ops.
    """
    try:
        module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid statement: {exc.msg}", max((exc.offset or 1) - 1, 0)) from None
    if len(module.body) != 1:
        raise ExpressionError("a compute step holds exactly one statement")
    node = module.body[0]
    binary, _ = _operator_table()
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1:
            raise ExpressionError("assign to a single name, as in `y = x * 2`", node.col_offset)
        target = node.targets[0]
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            return Statement(target.value.id, _expr(node.value, functions), inplace_op="setitem", index=_index(target.slice))
        if isinstance(target, ast.Tuple) and target.elts and all(isinstance(t, ast.Name) for t in target.elts):
            return _unpacking(node, [t.id for t in target.elts], functions)
        if not isinstance(target, ast.Name):
            raise ExpressionError("assign to a single name (`y = x * 2`), a subscript of a name (`x[0] = v`), or "
                                  "several names from an op with several outputs (`a, b = unbind(x)`)", node.col_offset)
        expr = _expr(node.value, functions)
        if isinstance(expr, Call) and contracts.ops()[expr.op].get("outputs") == "many":
            raise ExpressionError(f"op {expr.op!r} has several outputs: unpack them, as in `a, b = {expr.op}(...)`",
                                  node.value.col_offset)
        return Statement(target.id, expr)
    if isinstance(node, ast.AugAssign):
        if not isinstance(node.target, ast.Name):
            raise ExpressionError("an in-place update targets a single name, as in `x += 1`", node.col_offset)
        op = binary.get(type(node.op))
        if op not in ("add", "sub", "mul", "div"):
            raise ExpressionError("in-place updates are +=, -=, *= and /=", node.col_offset)
        return Statement(node.target.id, _expr(node.value, functions), inplace_op=op)
    raise ExpressionError(f"expected `name = expression` or `name += expression`; allowed in expressions: {ALLOWED}")


def _unpacking(node: ast.Assign, names: list[str], functions: frozenset[str]) -> Statement:
    expr = _expr(node.value, functions)
    several = isinstance(expr, Apply) or (isinstance(expr, Call) and contracts.ops()[expr.op].get("outputs") == "many")
    if not several:
        raise ExpressionError("only an op with several outputs (unbind, split, chunk) or a function of the case is "
                              "unpacked into several names", node.value.col_offset)
    if len(set(names)) != len(names):
        raise ExpressionError("each name is bound once", node.col_offset)
    return Statement(names[0], expr, targets=tuple(names))


def _index(node: ast.AST) -> Index:
    """A subscript: ints, slices of ints, None, ..., and integer lists, separated by commas; only in the forms
    that numpy (the reference engine, the static checks) and PyTorch read alike."""
    parts = node.elts if isinstance(node, ast.Tuple) else [node]
    index = tuple(_index_part(part) for part in parts)
    if index.count("...") > 1:
        raise ExpressionError("a subscript holds `...` at most once", node.col_offset)
    advanced = [position for position, part in enumerate(index)
                if type(part) is int or (isinstance(part, tuple) and part[0] == "list")]
    if any(isinstance(index[p], tuple) for p in advanced) and advanced != list(range(advanced[0], advanced[-1] + 1)):
        raise ExpressionError("with an integer list in a subscript, its integers and integer lists stand side by side "
                              "(`x[:, 0, [1, 2]]`, not `x[0, :, [1, 2]]`): separated by a slice, None or `...`, numpy "
                              "and PyTorch put the indexed dimensions in different places", node.col_offset)
    return index


def _index_part(node: ast.AST):
    if isinstance(node, ast.Slice):
        if node.step is not None and _int(node.step) <= 0:
            raise ExpressionError("a slice's step is a positive integer (PyTorch has no negative or zero steps; "
                                  "`flip(x, dims=[0])` reverses)", node.step.col_offset)
        return ("slice", *(None if bound is None else _int(bound) for bound in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return "..."
    if isinstance(node, ast.List):
        if not node.elts:
            raise ExpressionError("an integer list in a subscript holds at least one index", node.col_offset)
        return ("list", tuple(_int(element) for element in node.elts))
    return _int(node)


def _int(node: ast.AST) -> int:
    negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    inner = node.operand if negative else node
    if not (isinstance(inner, ast.Constant) and type(inner.value) is int):
        raise ExpressionError("a subscript holds integers, slices (1:3), None, ... and integer lists ([0, 2])",
                              getattr(node, "col_offset", 0))
    if inner.value >= 2 ** 63:
        raise ExpressionError(f"an index of {inner.value} is beyond any tensor (indices fit in 64 bits)", node.col_offset)
    return -inner.value if negative else inner.value


def _expr(node: ast.AST, functions: frozenset[str]) -> Expr:
    binary, unary = _operator_table()
    if isinstance(node, ast.Name):
        return Ref(node.id)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Num(float(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in binary:
        return Call(binary[type(node.op)], (_expr(node.left, functions), _expr(node.right, functions)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _expr(node.operand, functions)
    if isinstance(node, ast.UnaryOp) and type(node.op) in unary:
        operand = _expr(node.operand, functions)
        if isinstance(operand, Num):  # -2 is a number, not a graph node
            return Num(-operand.value)
        return Call(unary[type(node.op)], (operand,))
    if isinstance(node, ast.Call):
        return _call(node, functions)
    if isinstance(node, ast.Subscript):
        return Call("getitem", (_expr(node.value, functions),), (("index", _index(node.slice)),))
    if isinstance(node, ast.Attribute) and node.attr == "grad" and isinstance(node.value, ast.Name):
        return GradOf(node.value.id)
    shown = type(node).__name__
    if isinstance(node, ast.Constant):
        shown = f"the constant {node.value!r}"
    raise ExpressionError(f"{shown} is not allowed here; allowed: {ALLOWED}", getattr(node, "col_offset", 0))


def _call(node: ast.Call, functions: frozenset[str]) -> Call | Apply:
    if isinstance(node.func, ast.Name) and node.func.id in functions:
        if node.keywords:
            raise ExpressionError(f"function {node.func.id!r} of the case takes tensors only, no keywords",
                                  node.keywords[0].value.col_offset)
        return Apply(node.func.id, tuple(_expr(operand, functions) for operand in node.args))
    if isinstance(node.func, ast.Name):
        name, operands = node.func.id, list(node.args)
    elif isinstance(node.func, ast.Attribute):  # x.sum() is sum(x)
        name, operands = node.func.attr, [node.func.value, *node.args]
    else:
        raise ExpressionError("call an op by its name, as in `exp(x)` or `x.exp()`", node.col_offset)
    vocabulary = contracts.ops()
    if name not in vocabulary:
        raise ExpressionError(f"unknown op {name!r}{did_you_mean(name, vocabulary)}", node.col_offset)
    if name == "getitem":
        raise ExpressionError("write indexing as a subscript, as in `x[1:3]` or `x[[0, 2]]`", node.col_offset)
    args = [_expr(operand, functions) for operand in operands]
    entry = vocabulary[name]
    if entry["arity"] == "many" and not args:
        raise ExpressionError(f"op {name!r} takes one or more operands, as in `{name}(a, b, dim=0)`", node.col_offset)
    if entry["arity"] != "many" and len(args) != entry["arity"]:
        raise ExpressionError(f"op {name!r} takes {entry['arity']} operand(s), got {len(args)}", node.col_offset)
    kwargs = tuple(_keyword(name, entry, kw) for kw in node.keywords)
    missing = [key for key, spec in entry.get("attributes", {}).items()
               if spec.get("required") and key not in dict(kwargs)]
    if missing:
        raise ExpressionError(f"op {name!r} needs the keyword(s) {', '.join(missing)}", node.col_offset)
    return Call(name, tuple(args), kwargs)


def _keyword(op: str, entry: dict, keyword: ast.keyword) -> tuple[str, object]:
    attributes = entry.get("attributes", {})
    if keyword.arg not in attributes:
        hint = did_you_mean(keyword.arg or "", attributes) or f"; it takes {sorted(attributes) or 'no keywords'}"
        raise ExpressionError(f"op {op!r} has no keyword {keyword.arg!r}{hint}", keyword.value.col_offset)
    try:
        value = ast.literal_eval(keyword.value)
    except ValueError:
        raise ExpressionError(f"keyword {keyword.arg!r} takes a constant", keyword.value.col_offset) from None
    spec = attributes[keyword.arg]
    if not _fits(spec, value):
        wanted = f"one of {spec['choices']}" if spec["type"] == "choice" else f"a {spec['type']}"
        raise ExpressionError(f"keyword {keyword.arg!r} of {op!r} takes {wanted}, got {value!r}",
                              keyword.value.col_offset)
    return keyword.arg, value


def _fits(spec: dict, value: object) -> bool:
    kind = spec["type"]
    if kind == "float":
        return type(value) in (int, float)
    if kind == "choice":
        return value in spec["choices"]
    if kind == "int":
        return type(value) is int
    if kind == "bool":
        return type(value) is bool
    if kind == "shape":
        return isinstance(value, (tuple, list)) and all(type(v) is int for v in value)
    return False


def names_used(expr: Expr) -> list[str]:
    """Every tensor name an expression reads, in order of appearance."""
    if isinstance(expr, (Ref, GradOf)):
        return [expr.name]
    if isinstance(expr, (Call, Apply)):
        return [name for arg in expr.args for name in names_used(arg)]
    return []


def reads_grad(expr: Expr) -> bool:
    """Whether the expression reads some tensor's .grad."""
    if isinstance(expr, GradOf):
        return True
    return isinstance(expr, (Call, Apply)) and any(reads_grad(arg) for arg in expr.args)


def ops_used(expr: Expr) -> list[str]:
    """Every op an expression calls."""
    if isinstance(expr, Call):
        return [expr.op] + [op for arg in expr.args for op in ops_used(arg)]
    if isinstance(expr, Apply):
        return [op for arg in expr.args for op in ops_used(arg)]
    return []


def functions_used(expr: Expr) -> list[str]:
    """Every function of the case an expression calls."""
    if isinstance(expr, Apply):
        return [expr.function] + [f for arg in expr.args for f in functions_used(arg)]
    if isinstance(expr, Call):
        return [f for arg in expr.args for f in functions_used(arg)]
    return []
