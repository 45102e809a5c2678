"""The expression parser accepts the small whitelisted language and nothing else; nothing is evaluated."""

from __future__ import annotations

import pytest
from gradspec.language.expressions import (
    Call,
    ExpressionError,
    GradOf,
    Num,
    Ref,
    Statement,
    index_text,
    names_used,
    parse_statement,
    python_index,
)


def test_operators_map_to_vocabulary_ops():
    statement = parse_statement("y = (l @ w2 + b2) ** 2")
    assert statement == Statement("y", Call("pow", (Call("add", (Call("matmul", (Ref("l"), Ref("w2"))), Ref("b2"))), Num(2.0))))


def test_method_calls_are_function_calls_and_keywords_are_checked():
    assert parse_statement("m = x.sum(dim=0)").expr == Call("sum", (Ref("x"),), (("dim", 0),))
    assert parse_statement("m = sum(x, dim=0, keepdim=True)").expr.kwargs == (("dim", 0), ("keepdim", True))


def test_negative_numbers_fold_and_negated_tensors_are_ops():
    assert parse_statement("y = x * -2").expr == Call("mul", (Ref("x"), Num(-2.0)))
    assert parse_statement("y = -x").expr == Call("neg", (Ref("x"),))


def test_inplace_updates_and_grad_reads():
    assert parse_statement("a += x * 2").inplace_op == "add"
    assert parse_statement("a /= 2").inplace_op == "div"
    statement = parse_statement("g = x.grad * 2")
    assert statement.expr == Call("mul", (GradOf("x"), Num(2.0)))
    assert names_used(statement.expr) == ["x"]


def test_subscripts_are_getitem_with_a_hashable_index():
    expr = parse_statement("y = x[1:3, None, ..., 0, [0, 0, -1], ::2]").expr
    index = dict(expr.kwargs)["index"]
    assert expr.op == "getitem" and expr.args == (Ref("x"),)
    assert index == (("slice", 1, 3, None), None, "...", 0, ("list", (0, 0, -1)), ("slice", None, None, 2))
    assert python_index(index) == (slice(1, 3), None, Ellipsis, 0, [0, 0, -1], slice(None, None, 2))
    assert index_text(index) == "1:3, None, ..., 0, [0, 0, -1], ::2"
    assert hash(expr)  # statements are cached


def test_assignment_into_a_subscript_and_unpacking():
    statement = parse_statement("x[1:3] = v * 2")
    assert (statement.target, statement.inplace_op, statement.index) == ("x", "setitem", (("slice", 1, 3, None),))
    statement = parse_statement("a, b = unbind(x, dim=1)")
    assert statement.targets == ("a", "b") and statement.names_bound == ("a", "b")


REFUSED = [
    ("y = eval('1')", r"the constant '1' is not allowed|unknown op 'eval'"),
    ("y = lambda: x", r"Lambda is not allowed"),
    ("y = x[i]", r"a subscript holds integers"),
    ("y = x[0.5]", r"a subscript holds integers"),
    ("y = x[[]]", r"at least one index"),
    ("y = getitem(x, index=1)", r"write indexing as a subscript"),
    ("y = unbind(x)", r"several outputs: unpack them"),
    ("a, b = exp(x)", r"only an op with several outputs"),
    ("a, a = unbind(x)", r"each name is bound once"),
    ("y = select(x, dim=0)", r"needs the keyword\(s\) index"),
    ("x[0] += 1", r"an in-place update targets a single name"),
    ("y = [a for a in x]", r"ListComp is not allowed"),
    ("y = x if c else z", r"IfExp is not allowed"),
    ("y = x.data", r"Attribute is not allowed"),
    ("y = x.__class__", r"Attribute is not allowed"),
    ("y = os.system('rm')", r"unknown op 'system'"),
    ("y = 'text'", r"the constant 'text' is not allowed"),
    ("y = x // 2", r"BinOp is not allowed"),
    ("y = x < 2", r"Compare is not allowed"),
    ("import os", r"expected `name = expression`"),
    ("y = x; z = x", r"exactly one statement"),
    ("a, b = x", r"only an op with several outputs"),
    ("a.b = x", r"assign to a single name"),
    ("a **= 2", r"in-place updates are"),
    ("y = exp(x, x)", r"'exp' takes 1 operand\(s\), got 2"),
    ("y = sum(x, dim=x)", r"keyword 'dim' takes a constant"),
    ("y = sum(x, dim=1.5)", r"takes a int"),
    ("y = sum(x, axis=1)", r"has no keyword 'axis'"),
    ("y = (x", r"not a valid statement"),
]


@pytest.mark.parametrize("text, message", REFUSED, ids=[r[0] for r in REFUSED])
def test_anything_outside_the_whitelist_is_refused(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse_statement(text)


def test_errors_point_at_the_offending_column():
    with pytest.raises(ExpressionError) as info:
        parse_statement("y = x + expp(x)")
    assert info.value.column == 8
    assert "did you mean 'exp'" in info.value.message
