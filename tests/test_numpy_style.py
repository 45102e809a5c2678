"""The NumPy-style op table: complete, right against the reference engine, lacking with reasons, documented."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from gradspec import contracts
from gradspec.adapter import Lacking, table_gaps
from gradspec.cli import main as cli
from gradspec.language.forwards import numpy_forward
from gradspec.numpy_style import RECIPES, numpy_style
from gradspec.ops_guide import markdown

from .conftest import REPO

X = np.array([[0.3, -0.6, 0.45], [-0.2, 0.7, 0.5]])
Y = np.array([[0.5, 0.4, -0.35], [0.9, -0.25, 0.6]])
SQUARE = np.array([[2.0, 0.5, 0.1], [0.3, 1.5, -0.4], [0.2, 0.1, 1.2]])
INDEX = np.array([[2, 0], [1, 1]])
POSITIVE = {"log", "sqrt", "log2", "log10", "rsqrt", "reciprocal", "log1p", "pow"}  # pow: a real power of a negative base is nan
UNIT = {"asin", "acos", "atanh"}
# Arguments and attributes for each op: several attribute sets where the NumPy spelling branches on them.
SAMPLES: dict[str, list[tuple[tuple, dict]]] = {
    "acosh": [((np.abs(X) + 1.5,), {})],
    "clamp": [((X,), {"min": -0.3, "max": 0.4}), ((X,), {"max": 0.0})],
    "gelu": [((X,), {}), ((X,), {"approximate": "tanh"})],
    "leaky_relu": [((X,), {}), ((X,), {"negative_slope": 0.2})],
    "elu": [((X,), {}), ((X,), {"alpha": 1.5})],
    "lerp": [((X, Y), {"weight": 0.3})],
    "where": [((np.array([[1, 0, 2], [0, 0, 1]]), X, Y), {})],
    "masked_fill": [((X, np.array([[1, 0, 1], [0, 0, 1]])), {"value": 9.0})],
    "matmul": [((X, SQUARE), {})], "outer": [((X[0], Y[0]), {})], "dot": [((X[0], Y[0]), {})],
    "inv": [((SQUARE,), {})], "det": [((SQUARE,), {})], "solve": [((SQUARE, Y.T), {})],
    "trace": [((SQUARE,), {})], "diag": [((X[0],), {"diagonal": 1}), ((SQUARE,), {"diagonal": -1})],
    "triu": [((SQUARE,), {"diagonal": 1})], "tril": [((SQUARE,), {})],
    "var": [((X,), {}), ((X,), {"dim": 1, "correction": 0, "keepdim": True})],
    "std": [((X,), {"dim": 0})],
    "logsumexp": [((X,), {"dim": 1}), ((X,), {"dim": 0, "keepdim": True})],
    "softmax": [((X,), {"dim": 1})], "log_softmax": [((X,), {"dim": 0})],
    "cumsum": [((X,), {"dim": 1})], "cumprod": [((X,), {"dim": 0})],
    "norm": [((X,), {}), ((X,), {"p": 1}), ((X,), {"p": "inf", "keepdim": True}), ((X,), {"p": 2, "dim": 1})],
    "reshape": [((X,), {"shape": [3, 2]})], "view": [((X,), {"shape": [-1]})],
    "getitem": [((X,), {"index": (slice(0, 1), [0, 2, 2])}), ((X,), {"index": (1, None, Ellipsis)})],
    "select": [((X,), {"dim": 1, "index": 2})], "narrow": [((X,), {"dim": -1, "start": 1, "length": 2})],
    "unsqueeze": [((X,), {"dim": -1})], "squeeze": [((X[:1],), {}), ((X[:1],), {"dim": 1})],
    "expand": [((X[:1],), {"shape": [2, 2, -1]})], "permute": [((X,), {"dims": [1, 0]})],
    "diagonal": [((SQUARE,), {"offset": 1}), ((SQUARE[None],), {"dim1": 1, "dim2": 2})],
    "broadcast_to": [((X[0],), {"shape": [2, 3]})], "flip": [((X,), {"dims": [0, 1]})],
    "roll": [((X,), {"shifts": 1, "dims": 1})], "repeat": [((X,), {"repeats": [2, 1]})],
    "tile": [((X,), {"reps": [1, 2]})], "cat": [((X, Y), {"dim": 1})], "stack": [((X, Y), {})],
    "unbind": [((X,), {"dim": 1})], "split": [((X,), {"split_size": 2, "dim": 1})], "chunk": [((X,), {"chunks": 2})],
    "gather": [((X, INDEX), {"dim": 1})], "take": [((X, INDEX), {})],
    "index_select": [((X, np.array([2, 0, 2])), {"dim": 1})],
    "scatter": [((X, INDEX, Y[:, :2]), {"dim": 1})], "scatter_add": [((X, np.array([[1, 1, 0]]), Y[:1]), {})],
    "index_add": [((X, np.array([2, 0]), Y[:, :2]), {"dim": 1})],
}

# a scipy.special-like namespace from the standard library: erf and erfc, elementwise
SPECIAL = types.SimpleNamespace(erf=np.vectorize(math.erf, otypes=[float]), erfc=np.vectorize(math.erfc, otypes=[float]))


def samples(op: str) -> list[tuple[tuple, dict]]:
    if op in SAMPLES:
        return SAMPLES[op]
    entry = contracts.ops()[op]
    a = np.abs(X) + 0.1 if op in POSITIVE else X / 2 if op in UNIT else X
    if entry["arity"] == 2:
        return [((a, Y), {})]
    dims = [{}, {"dim": 1}, {"dim": 0, "keepdim": True}] if "dim" in (entry.get("attributes") or {}) else [{}]
    return [((a,), attributes) for attributes in dims]


@pytest.mark.parametrize("op", [op for op in contracts.ops() if op not in ("detach", "data")])
def test_every_op_spelled_with_numpy_computes_what_the_reference_engine_computes(op):
    """numpy itself (with math's erf: scipy is no dependency of gradspec) through the table gives the reference
    engine's forward values, so
    a mistake in a NumPy spelling or composition shows here, not as a failing case of some engine."""
    table = numpy_style(np, special=SPECIAL)
    for args, kwargs in samples(op):
        got, want = table[op](*args, **kwargs), numpy_forward(op, list(args), dict(kwargs))
        if contracts.ops()[op].get("outputs") == "many":
            assert len(got) == len(want), op
            for piece, expected in zip(got, want, strict=True):
                np.testing.assert_allclose(piece, expected, rtol=1e-12, atol=1e-12, err_msg=op)
        else:
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12, err_msg=f"{op} {kwargs}")


def test_the_table_covers_every_op_but_detach_and_numpy_lacks_only_what_it_has_no_function_for():
    """Complete: an op is a function, a composition, or lacking with the reason; never absent from the table."""
    assert set(RECIPES) == set(contracts.ops()) - {"detach"}
    gaps = table_gaps(numpy_style(np))
    assert gaps == {"detach": "its op table does not map it",
                    "erf": "numpy has no function `erf`", "erfc": "numpy has no function `erfc`",
                    "gelu": "it needs erf, and numpy has no function `erf`",
                    "data": "NumPy's API has no counterpart of PyTorch's .data"}
    assert table_gaps(numpy_style(np, special=SPECIAL)).keys() == {"detach", "data"}


def test_a_function_the_module_lacks_makes_its_ops_lacking_with_the_reason_never_an_error_at_run_time():
    engine = types.ModuleType("toyengine")
    engine.__dict__.update({name: getattr(np, name) for name in dir(np)
                            if not name.startswith("_") and name not in ("tile", "maximum", "linalg")})
    table = numpy_style(engine)
    assert isinstance(table["tile"], Lacking) and table["tile"].reason == "toyengine has no function `tile`"
    assert table["repeat"].reason == "toyengine has no function `tile`"
    assert table["relu"].reason == "it needs maximum, and toyengine has no function `maximum`"
    assert table["inv"].reason == "toyengine has no function `linalg.inv`"
    assert table["norm"].reason == "toyengine has no function `linalg.norm`"
    np.testing.assert_allclose(table["exp"](X), np.exp(X))  # the rest is there


def test_an_override_replaces_an_entry_and_reaches_the_compositions_that_use_that_op():
    calls = []

    def maximum(a, b):
        calls.append("maximum")
        return np.maximum(a, b)
    table = numpy_style(np, maximum=maximum, erf=Lacking("no erf here"))
    np.testing.assert_allclose(table["relu"](X), np.maximum(X, 0))
    assert calls == ["maximum"]
    assert table_gaps(table)["gelu"] == "it needs erf, and no erf here"
    with pytest.raises(TypeError, match="'maximun'"):
        numpy_style(np, maximun=maximum)


def test_the_adapter_guide_is_generated_from_the_vocabulary_and_in_step(capsys):
    """docs/ops.md is `gradspec ops --markdown`; regenerate it when spec/ops.yaml or a NumPy spelling changes."""
    assert cli(["ops", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert text == markdown()
    assert (REPO / "docs" / "ops.md").read_text(encoding="utf-8") == text, \
        "docs/ops.md is stale: run `gradspec ops --markdown > docs/ops.md`"
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(contracts.ops())
    assert "| `lerp` | a, b | weight (required) | a tensor | `a + weight * (b - a)` |" in rows
    assert "| `scatter` | a, index (int64 index), src | dim (0) |" in text
    assert "[docs/ops.md](docs/ops.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_an_op_overridden_as_none_is_lacking_and_so_is_every_composition_that_needs_it():
    """gelu, made from erf, stayed in the table and called None at run time."""
    table = numpy_style(np, special=SPECIAL, erf=None)
    assert isinstance(table["erf"], Lacking) and isinstance(table["gelu"], Lacking)
    assert "erf" in table["gelu"].reason
