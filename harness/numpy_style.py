"""Op tables for engines that follow NumPy's API: mygrad, HIPS autograd, jax.numpy, CuPy-like namespaces.

`numpy_style(module, **overrides)` gives an entry for every op of spec/ops.yaml but `detach`
(which is each adapter's own): the function of `module` that NumPy names (`arcsin` for asin,
`clip` for clamp, `linalg.inv` for inv), or a composition of such functions where NumPy has
none (relu is `maximum(a, 0)`, lerp `a + weight * (b - a)`, softmax `exp(a - logsumexp(a))`).
An adapter names its module and overrides only what differs. Where the module lacks a function
an entry needs, the entry is a `Lacking` that says so ("mygrad has no function `erf`"): the op
is not applicable on that engine, never an error at run time. `RECIPES` holds each op's NumPy
spelling, which the adapter guide (docs/ops.md, `gradspec ops --markdown`) shows.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.adapter import OPERATOR_OPS, Lacking, table_gaps  # noqa: F401 - table_gaps: part of this API
from gradspec.reference_engine import views

Array = Any  # an engine's array


class _Missing(Exception):
    """A recipe needs what the module lacks."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Functions:
    """The module's functions by NumPy name (`f.exp`, `f("linalg.inv")`), then `special`'s (erf, logsumexp); a
    miss raises `_Missing` with the reason. `f.op(name)` is the table's own entry for a vocabulary op."""

    def __init__(self, module: Any, special: Any, entry: Callable[[str], Any]):
        self._module, self._special, self._entry = module, special, entry

    def __call__(self, dotted: str) -> Callable:
        for namespace in (self._module, self._special):
            value = namespace
            for part in dotted.split("."):
                value = getattr(value, part, None)
            if namespace is not None and callable(value):
                return value
        where = _label(self._module) + (f" (nor {_label(self._special)})" if self._special is not None else "")
        raise _Missing(f"{where} has no function `{dotted}`")

    def __getattr__(self, name: str) -> Callable:
        if name.startswith("_"):
            raise AttributeError(name)
        return self(name)

    def op(self, name: str) -> Callable:
        entry = self._entry(name)
        if isinstance(entry, Lacking):
            raise _Missing(f"it needs {name}, and {entry.reason}")
        return entry


def _label(namespace: Any) -> str:
    return getattr(namespace, "__name__", None) or type(namespace).__name__


@dataclass(frozen=True)
class Recipe:
    spelling: str  # NumPy's spelling of the op, for the adapter guide
    make: Callable[[_Functions], Callable[..., Array]]  # the entry, from the module's functions


RECIPES: dict[str, Recipe] = {}


def _recipe(op: str, spelling: str):
    def register(make: Callable[[_Functions], Callable[..., Array]]) -> Callable:
        RECIPES[op] = Recipe(spelling, make)
        return make
    return register


def _named(op: str, name: str, arguments: str = "a") -> None:
    """An op that is one function of the module, called as the vocabulary calls the op."""
    RECIPES[op] = Recipe(f"{name}({arguments})", lambda f: f(name))


def numpy_style(module: Any, special: Any = None, **overrides: Callable[..., Array] | Lacking) -> dict[str, Any]:
    """An op table for `module`, a namespace with NumPy's function names: every op of spec/ops.yaml but `detach`.

    `special` is searched for functions the module lacks (a scipy.special-like namespace: erf, erfc, logsumexp).
    `overrides` replace entries by op name (a function, or a `Lacking` with the reason, or None); a composition that uses
    another op calls the table's entry for it (relu the `maximum` entry, silu `sigmoid`, softmax `logsumexp`), so an
    override reaches it. An entry whose functions the module lacks is a `Lacking` with the reason.
    """
    vocabulary = contracts.ops()
    unknown = sorted(set(overrides) - set(vocabulary))
    if unknown:
        raise TypeError(f"numpy_style: no op {', '.join(map(repr, unknown))} in spec/ops.yaml")
    # None stands for "absent" too: compositions that need it must become lacking, not call None at run time
    table: dict[str, Any] = {op: Lacking("set to None in the adapter's numpy_style overrides") if value is None
                             else value for op, value in overrides.items()}

    def entry(op: str) -> Any:
        if op not in table:
            try:
                table[op] = RECIPES[op].make(functions)
            except _Missing as missing:
                table[op] = Lacking(missing.reason)
        return table[op]

    functions = _Functions(module, special, entry)
    for op in RECIPES:
        entry(op)
    return table


# -- arithmetic and elementwise functions ------------------------------------------

for _op, _symbol in (("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/"), ("pow", "**")):
    RECIPES[_op] = Recipe(f"a {_symbol} b", lambda f, _op=_op: OPERATOR_OPS[_op])
RECIPES["neg"] = Recipe("-a", lambda f: operator.neg)
_named("matmul", "matmul", "a, b")
for _op in ("outer", "dot", "maximum", "minimum", "hypot", "fmod", "remainder", "copysign"):
    _named(_op, _op, "a, b")
_named("atan2", "arctan2", "a, b")
for _op in ("inv", "det"):
    _named(_op, f"linalg.{_op}")
_named("solve", "linalg.solve", "a, b")
_named("trace", "trace")
for _op in ("exp", "log", "sin", "cos", "tanh", "abs", "sqrt", "expm1", "log1p", "log2", "log10", "tan", "sinh",
            "cosh", "erf", "erfc", "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc"):
    _named(_op, _op)
for _op in ("asin", "acos", "atan", "asinh", "acosh", "atanh"):
    _named(_op, f"arc{_op[1:]}")
for _op, _name in (("gt", "greater"), ("lt", "less"), ("ge", "greater_equal"), ("le", "less_equal"),
                   ("eq", "equal"), ("ne", "not_equal")):
    _named(_op, _name, "a, b")


@_recipe("lerp", "a + weight * (b - a)")
def _lerp(f):
    return lambda a, b, weight: a + weight * (b - a)


@_recipe("where", "where(c != 0, a, b)")
def _where(f):
    where = f.where
    return lambda condition, a, b: where(condition != 0, a, b)


@_recipe("masked_fill", "where(b != 0, value, a)")
def _masked_fill(f):
    where = f.where
    return lambda a, mask, value: where(mask != 0, value, a)


@_recipe("clamp", "clip(a, min, max)")
def _clamp(f):
    clip = f.clip
    return lambda a, min=None, max=None: clip(a, min, max)


@_recipe("relu", "maximum(a, 0)")
def _relu(f):
    maximum = f.op("maximum")
    return lambda a: maximum(a, 0.0)


@_recipe("sigmoid", "1 / (1 + exp(-a))")
def _sigmoid(f):
    exp = f.op("exp")
    return lambda a: 1.0 / (1.0 + exp(-a))


@_recipe("softplus", "logaddexp(a, 0)")
def _softplus(f):
    logaddexp = f.logaddexp
    return lambda a: logaddexp(a, 0.0)


@_recipe("silu", "a * sigmoid(a)")
def _silu(f):
    sigmoid = f.op("sigmoid")
    return lambda a: a * sigmoid(a)


@_recipe("gelu", "0.5 * a * (1 + erf(a / sqrt(2))); with approximate='tanh', "
                 "0.5 * a * (1 + tanh(sqrt(2 / pi) * (a + 0.044715 * a ** 3)))")
def _gelu(f):
    erf, tanh = f.op("erf"), f.op("tanh")

    def gelu(a, approximate="none"):
        if approximate == "tanh":
            return 0.5 * a * (1.0 + tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a ** 3)))
        return 0.5 * a * (1.0 + erf(a / math.sqrt(2.0)))
    return gelu


@_recipe("rsqrt", "1 / sqrt(a)")
def _rsqrt(f):
    sqrt = f.op("sqrt")
    return lambda a: 1.0 / sqrt(a)


@_recipe("leaky_relu", "where(a > 0, a, a * negative_slope)")
def _leaky_relu(f):
    where = f.where
    return lambda a, negative_slope=0.01: where(a > 0, a, a * negative_slope)


@_recipe("elu", "where(a > 0, a, alpha * expm1(a))")
def _elu(f):
    where, expm1 = f.where, f.op("expm1")
    return lambda a, alpha=1.0: where(a > 0, a, alpha * expm1(a))


# -- reductions -------------------------------------------------------------------


def axis_reduction(function: Callable[..., Array]) -> Callable[..., Array]:
    """sum or mean with the vocabulary's dim/keepdim, for a reduction spelled NumPy's way (axis/keepdims)."""
    return lambda a, dim=None, keepdim=False: function(a, axis=dim, keepdims=keepdim)


for _op, _name in (("sum", "sum"), ("mean", "mean"), ("max", "max"), ("min", "min"), ("amax", "max"),
                   ("amin", "min"), ("prod", "prod"), ("argmax", "argmax"), ("argmin", "argmin")):
    RECIPES[_op] = Recipe(f"{_name}(a, axis=dim, keepdims=keepdim)", lambda f, _name=_name: axis_reduction(f(_name)))


def _with_ddof(function: Callable[..., Array]) -> Callable[..., Array]:
    return lambda a, dim=None, correction=1, keepdim=False: function(a, axis=dim, ddof=correction, keepdims=keepdim)


def _along_axis(function: Callable[..., Array]) -> Callable[..., Array]:
    return lambda a, dim: function(a, axis=dim)


for _op in ("var", "std"):
    RECIPES[_op] = Recipe(f"{_op}(a, axis=dim, ddof=correction, keepdims=keepdim)",
                          lambda f, _op=_op: _with_ddof(f(_op)))
for _op in ("cumsum", "cumprod"):
    RECIPES[_op] = Recipe(f"{_op}(a, axis=dim)", lambda f, _op=_op: _along_axis(f(_op)))


@_recipe("logsumexp", "logsumexp(a, axis=dim, keepdims=keepdim) of the module or special; else "
                      "m + log(sum(exp(a - m), axis=dim, keepdims=True)), m = max(a, axis=dim, keepdims=True)")
def _logsumexp(f):
    try:
        logsumexp = f.logsumexp
    except _Missing:
        pass
    else:
        return lambda a, dim, keepdim=False: logsumexp(a, axis=dim, keepdims=keepdim)
    highest, total, log, exp, squeeze = f.max, f.sum, f.op("log"), f.op("exp"), f.squeeze

    def composed(a, dim, keepdim=False):  # exact for any m: its derivatives cancel, so ties in max do not matter
        m = highest(a, axis=dim, keepdims=True)
        out = m + log(total(exp(a - m), axis=dim, keepdims=True))
        return out if keepdim else squeeze(out, axis=dim)
    return composed


@_recipe("softmax", "exp(a - logsumexp(a, axis=dim, keepdims=True))")
def _softmax(f):
    exp, logsumexp = f.op("exp"), f.op("logsumexp")
    return lambda a, dim: exp(a - logsumexp(a, dim, keepdim=True))


@_recipe("log_softmax", "a - logsumexp(a, axis=dim, keepdims=True)")
def _log_softmax(f):
    logsumexp = f.op("logsumexp")
    return lambda a, dim: a - logsumexp(a, dim, keepdim=True)


@_recipe("norm", "linalg.vector_norm(a, ord=p, axis=dim, keepdims=keepdim); else linalg.norm of a (flattened "
                 "when dim is None: a vector norm, never a matrix one), p 'inf' as inf")
def _norm(f):
    try:
        vector_norm = f("linalg.vector_norm")
    except _Missing:
        pass
    else:
        return lambda a, p=2, dim=None, keepdim=False: vector_norm(a, ord=_order(p), axis=dim, keepdims=keepdim)
    norm, reshape = f("linalg.norm"), f.reshape

    def flattened(a, p=2, dim=None, keepdim=False):
        if dim is not None:
            return norm(a, _order(p), axis=dim, keepdims=keepdim)
        out = norm(reshape(a, (-1,)), _order(p))
        return reshape(out, (1,) * len(a.shape)) if keepdim else out
    return flattened


def _order(p: int | str) -> float:
    return math.inf if p == "inf" else p


# -- matrices, copies ------------------------------------------------------------



def _with_diagonal(function: Callable[..., Array]) -> Callable[..., Array]:
    return lambda a, diagonal=0: function(a, diagonal)


for _op in ("diag", "triu", "tril"):
    RECIPES[_op] = Recipe(f"{_op}(a, diagonal)", lambda f, _op=_op: _with_diagonal(f(_op)))


@_recipe("clone", "copy(a)")
def _clone(f):
    return f.copy


@_recipe("data", "none: NumPy has no counterpart of PyTorch's .data")
def _data(f):
    raise _Missing("NumPy's API has no counterpart of PyTorch's .data")


# -- views and shapes (values only: whether they alias is the engine's) -----------


@_recipe("transpose", "transpose(a)")
def _transpose(f):
    transpose = f.transpose
    return lambda a: transpose(a)




def _shaped(reshape: Callable[..., Array]) -> Callable[..., Array]:
    return lambda a, shape: reshape(a, tuple(shape))


for _op in ("reshape", "view"):
    RECIPES[_op] = Recipe("reshape(a, shape)", lambda f: _shaped(f.reshape))


@_recipe("flatten", "reshape(a, (-1,))")
def _flatten(f):
    reshape = f.reshape
    return lambda a: reshape(a, (-1,))


@_recipe("getitem", "a[index], lists of ints as int64 arrays")
def _getitem(f):
    return lambda a, index: a[tuple(np.asarray(i, dtype=np.int64) if isinstance(i, list) else i for i in index)]


def _along(dim: int, ndim: int, item: Any) -> tuple:
    return (slice(None),) * (dim % ndim) + (item,)


@_recipe("select", "a[:, ..., index] (index at position dim)")
def _select(f):
    return lambda a, dim, index: a[_along(dim, len(a.shape), index)]


@_recipe("narrow", "a[:, ..., start:start + length] (at position dim)")
def _narrow(f):
    return lambda a, dim, start, length: a[_along(dim, len(a.shape), slice(start, start + length))]


@_recipe("unsqueeze", "expand_dims(a, dim), a negative dim counted as PyTorch does")
def _unsqueeze(f):
    expand_dims = f.expand_dims
    return lambda a, dim: expand_dims(a, dim if dim >= 0 else dim + len(a.shape) + 1)


@_recipe("squeeze", "squeeze(a), or squeeze(a, axis=dim) where that dim has size 1 (else a)")
def _squeeze(f):
    squeeze = f.squeeze

    def squeezed(a, dim=None):
        if dim is None:
            return squeeze(a)
        return squeeze(a, axis=dim) if a.shape[dim] == 1 else a
    return squeezed


@_recipe("expand", "broadcast_to(a, shape), each -1 in shape keeping a's size")
def _expand(f):
    broadcast_to = f.broadcast_to
    return lambda a, shape: broadcast_to(a, views.expanded_shape(tuple(a.shape), shape))


@_recipe("broadcast_to", "broadcast_to(a, shape)")
def _broadcast_to(f):
    broadcast_to = f.broadcast_to
    return lambda a, shape: broadcast_to(a, tuple(shape))


@_recipe("permute", "transpose(a, dims)")
def _permute(f):
    transpose = f.transpose
    return lambda a, dims: transpose(a, tuple(dims))


@_recipe("diagonal", "diagonal(a, offset, dim1, dim2)")
def _diagonal(f):
    diagonal = f.diagonal
    return lambda a, offset=0, dim1=0, dim2=1: diagonal(a, offset, dim1, dim2)


def _several(name: str):
    def make(f):
        single = {"select": f.op("select"), "narrow": f.op("narrow")}
        return lambda a, **attrs: [single[step](a, **step_attrs)
                                   for step, step_attrs in views.pieces(name, tuple(a.shape), attrs)]
    return make


RECIPES["unbind"] = Recipe("[a[:, ..., i] for each i along dim] (select)", _several("unbind"))
RECIPES["split"] = Recipe("narrow(a, dim, start, split_size) for each start", _several("split"))
RECIPES["chunk"] = Recipe("narrow(a, dim, start, ceil(size / chunks)) for each start", _several("chunk"))


@_recipe("flip", "flip(a, axis=dims)")
def _flip(f):
    flip = f.flip
    return lambda a, dims: flip(a, axis=tuple(dims))


@_recipe("roll", "roll(a, shifts, axis=dims)")
def _roll(f):
    roll = f.roll
    return lambda a, shifts, dims: roll(a, shifts, axis=dims)


@_recipe("repeat", "tile(a, repeats)")
def _repeat(f):
    tile = f.tile
    return lambda a, repeats: tile(a, tuple(repeats))


@_recipe("tile", "tile(a, reps)")
def _tile(f):
    tile = f.tile
    return lambda a, reps: tile(a, tuple(reps))


@_recipe("cat", "concatenate(tensors, axis=dim)")
def _cat(f):
    concatenate = f.concatenate
    return lambda *arrays, dim=0: concatenate(arrays, axis=dim)


@_recipe("stack", "stack(tensors, axis=dim)")
def _stack(f):
    stack = f.stack
    return lambda *arrays, dim=0: stack(arrays, axis=dim)


# -- gathering and scattering (index operands are int64 arrays, read as constants) ----


@_recipe("gather", "take_along_axis(a, index, axis=dim)")
def _gather(f):
    take_along_axis = f.take_along_axis
    return lambda a, index, dim=0: take_along_axis(a, index, axis=dim)


@_recipe("index_select", "take(a, index, axis=dim)")
def _index_select(f):
    take = f.take
    return lambda a, index, dim=0: take(a, index, axis=dim)


@_recipe("take", "take(a, index) (a read as flat)")
def _take(f):
    return f.take


def _placement(a: Array, index: Array, dim: int, last_wins: bool = False) -> np.ndarray:
    """One row per element of `index`: a one-hot of the flat position in `a` it scatters to (its own coordinates,
    with its value along `dim`), in a's dtype; with `last_wins`, a row whose position a later row repeats is zeros."""
    index = np.asarray(index)
    coordinates = list(np.indices(index.shape))
    coordinates[dim % max(index.ndim, 1)] = index
    flat = np.ravel_multi_index(tuple(coordinates), tuple(a.shape)).reshape(-1)
    placement = np.zeros((flat.size, math.prod(a.shape)), dtype=np.dtype(a.dtype))
    placement[np.arange(flat.size), flat] = 1
    if last_wins:
        last = {position: row for row, position in enumerate(flat.tolist())}
        placement[[row for row in range(flat.size) if last[flat[row]] != row]] = 0
    return placement


_SCATTER = ("a * (1 - hit) + reshape(reshape(src[:index's shape], (-1,)) @ P, a.shape), P the one-hot rows of "
            "the positions index names (the last of repeated ones), hit where P has one")


@_recipe("scatter_add", _SCATTER.replace("a * (1 - hit)", "a").replace(" (the last of repeated ones), hit where P has one", ""))
def _scatter_add(f):
    matmul, reshape = f.op("matmul"), f.reshape

    def scatter_add(a, index, src, dim=0):
        placement = _placement(a, index, dim)
        crop = src[tuple(slice(0, n) for n in np.shape(np.asarray(index)))]
        return a + reshape(matmul(reshape(crop, (-1,)), placement), tuple(a.shape))
    return scatter_add


@_recipe("scatter", _SCATTER)
def _scatter(f):
    matmul, reshape = f.op("matmul"), f.reshape

    def scatter(a, index, src, dim=0):
        placement = _placement(a, index, dim, last_wins=True)
        crop = src[tuple(slice(0, n) for n in np.shape(np.asarray(index)))]
        kept = (1 - placement.max(axis=0, initial=0)).reshape(tuple(a.shape))
        return a * kept + reshape(matmul(reshape(crop, (-1,)), placement), tuple(a.shape))
    return scatter


@_recipe("index_add", "scatter_add with index repeated along every dim of src but dim")
def _index_add(f):
    scatter_add = f.op("scatter_add")

    def index_add(a, index, src, dim=0):
        dim %= len(a.shape)
        shape = [1] * len(src.shape)
        shape[dim] = -1
        return scatter_add(a, np.broadcast_to(np.asarray(index).reshape(shape), tuple(src.shape)), src, dim)
    return index_add


# -- the partial tables of earlier releases, kept for adapters written against them --------


def numpy_style_ops(np_like: Any, relu: Callable, sigmoid: Callable) -> dict[str, Callable[..., Array]]:
    """The first 25 ops only (an adapter written before `numpy_style` meets the rest as not applicable)."""
    first = ("add", "sub", "mul", "div", "pow", "matmul", "neg", "sum", "mean", "max", "min", "argmax", "argmin",
             "transpose", "reshape", "exp", "log", "sin", "cos", "tanh", "sqrt", "abs")
    table = numpy_style(np_like, relu=relu, sigmoid=sigmoid, clone=lambda a: a)
    return {op: table[op] for op in (*first, "relu", "sigmoid", "clone")}
