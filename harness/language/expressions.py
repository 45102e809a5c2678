"""Parse compute steps (`y = (x @ w + b) ** 2`, `a += 1`) into a tiny expression tree.

Python's own `ast` does the parsing; a whitelist then accepts only names, numbers,
the operators + - * / ** @, unary minus and plus, and calls of vocabulary ops (as
functions, `exp(x)`, or methods, `x.exp()`). Nothing is ever evaluated.
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


Expr = Num | Ref | GradOf | Call


@dataclass(frozen=True)
class Statement:
    """`target = expr`, or with `inplace_op` set, `target <inplace_op>= expr`."""

    target: str
    expr: Expr
    inplace_op: str | None = None


class ExpressionError(Exception):
    """Not an allowed statement; `column` is 0-based within the statement's text."""

    def __init__(self, message: str, column: int = 0):
        super().__init__(message)
        self.message, self.column = message, column


ALLOWED = "names, numbers, `name.grad`, the operators + - * / ** @, unary minus, and calls of vocabulary ops"


def _operator_table() -> tuple[dict[type, str], dict[type, str]]:
    by_symbol = {entry["operator"]: name for name, entry in contracts.ops().items() if "operator" in entry}
    binary = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}
    return (
        {node: by_symbol[symbol] for node, symbol in binary.items() if symbol in by_symbol},
        {ast.USub: by_symbol.get("unary -")},
    )


@lru_cache(maxsize=4096)
def parse_statement(text: str) -> Statement:
    """Parse one compute statement, or raise ExpressionError saying what is allowed (cached: Statements are immutable)."""
    try:
        module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid statement: {exc.msg}", max((exc.offset or 1) - 1, 0)) from None
    if len(module.body) != 1:
        raise ExpressionError("a compute step holds exactly one statement")
    node = module.body[0]
    binary, _ = _operator_table()
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise ExpressionError("assign to a single name, as in `y = x * 2`", node.col_offset)
        return Statement(node.targets[0].id, _expr(node.value))
    if isinstance(node, ast.AugAssign):
        if not isinstance(node.target, ast.Name):
            raise ExpressionError("an in-place update targets a single name, as in `x += 1`", node.col_offset)
        op = binary.get(type(node.op))
        if op not in ("add", "sub", "mul", "div"):
            raise ExpressionError("in-place updates are +=, -=, *= and /=", node.col_offset)
        return Statement(node.target.id, _expr(node.value), inplace_op=op)
    raise ExpressionError(f"expected `name = expression` or `name += expression`; allowed in expressions: {ALLOWED}")


def _expr(node: ast.AST) -> Expr:
    binary, unary = _operator_table()
    if isinstance(node, ast.Name):
        return Ref(node.id)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Num(float(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in binary:
        return Call(binary[type(node.op)], (_expr(node.left), _expr(node.right)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _expr(node.operand)
    if isinstance(node, ast.UnaryOp) and type(node.op) in unary:
        operand = _expr(node.operand)
        if isinstance(operand, Num):  # -2 is a number, not a graph node
            return Num(-operand.value)
        return Call(unary[type(node.op)], (operand,))
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Attribute) and node.attr == "grad" and isinstance(node.value, ast.Name):
        return GradOf(node.value.id)
    shown = type(node).__name__
    if isinstance(node, ast.Constant):
        shown = f"the constant {node.value!r}"
    raise ExpressionError(f"{shown} is not allowed here; allowed: {ALLOWED}", getattr(node, "col_offset", 0))


def _call(node: ast.Call) -> Call:
    if isinstance(node.func, ast.Name):
        name, operands = node.func.id, list(node.args)
    elif isinstance(node.func, ast.Attribute):  # x.sum() is sum(x)
        name, operands = node.func.attr, [node.func.value, *node.args]
    else:
        raise ExpressionError("call an op by its name, as in `exp(x)` or `x.exp()`", node.col_offset)
    vocabulary = contracts.ops()
    if name not in vocabulary:
        raise ExpressionError(f"unknown op {name!r}{did_you_mean(name, vocabulary)}", node.col_offset)
    args = [_expr(operand) for operand in operands]
    entry = vocabulary[name]
    if len(args) != entry["arity"]:
        raise ExpressionError(f"op {name!r} takes {entry['arity']} operand(s), got {len(args)}", node.col_offset)
    return Call(name, tuple(args), tuple(_keyword(name, entry, kw) for kw in node.keywords))


def _keyword(op: str, entry: dict, keyword: ast.keyword) -> tuple[str, object]:
    attributes = entry.get("attributes", {})
    if keyword.arg not in attributes:
        hint = did_you_mean(keyword.arg or "", attributes) or f"; it takes {sorted(attributes) or 'no keywords'}"
        raise ExpressionError(f"op {op!r} has no keyword {keyword.arg!r}{hint}", keyword.value.col_offset)
    try:
        value = ast.literal_eval(keyword.value)
    except ValueError:
        raise ExpressionError(f"keyword {keyword.arg!r} takes a constant", keyword.value.col_offset) from None
    if not _fits(attributes[keyword.arg]["type"], value):
        raise ExpressionError(f"keyword {keyword.arg!r} of {op!r} takes a {attributes[keyword.arg]['type']}, got {value!r}",
                              keyword.value.col_offset)
    return keyword.arg, value


def _fits(kind: str, value: object) -> bool:
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
    if isinstance(expr, Call):
        return [name for arg in expr.args for name in names_used(arg)]
    return []


def reads_grad(expr: Expr) -> bool:
    """Whether the expression reads some tensor's .grad."""
    if isinstance(expr, GradOf):
        return True
    return isinstance(expr, Call) and any(reads_grad(arg) for arg in expr.args)


def ops_used(expr: Expr) -> list[str]:
    """Every op an expression calls."""
    if isinstance(expr, Call):
        return [expr.op] + [op for arg in expr.args for op in ops_used(arg)]
    return []
