"""The flat op table: each op once, with its numpy forward, what it saves, and one derivative rule per input.

Rules take (g, a, b, out, attrs) and are written with Python operators and the
dispatching functions below, so the same rule runs on plain numpy arrays (a backward
without create_graph: fast, nothing recorded) and on Tensors (with create_graph: every
step recorded, which gives derivatives of any order with no extra code). A rule may
return a gradient that is still broadcast; the engine sums it back to the input's shape.

The table mirrors spec/ops.yaml (names, arity, what each op saves); a test keeps them
in step. Names starting with an underscore are internal helpers, not vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import grad_mode, views
from .errors import InferenceTensorSavedError
from .graph import NOTHING_SAVED, Node

SLOTS = ("a", "b", "out")


@dataclass(frozen=True)
class Op:
    forward: Callable[..., np.ndarray]
    rules: tuple[Callable | None, ...]  # one per operand
    uses: tuple[str, ...] = ()  # per rule, the values it reads: a string of slots, e.g. "b" or "a,out"
    attrs: dict[str, Any] = field(default_factory=dict)  # keyword arguments and their defaults
    reads_input_meta: bool = False  # whether rules read attrs["in_shape"] / attrs["in_dtype"]
    differentiable: bool = True  # False for ops with integer results (argmax): never recorded (LEAF-2)
    view: bool = False  # the result is a view of the operand: shared values and version counter (VIEW-1)
    plans: list = field(default_factory=list, compare=False)  # by active mask: (rules, slots to keep or None)

    def __post_init__(self):
        """Work out, once per op, the plan for every combination of operands that need a gradient.

        A plan holds the rules of those operands and which values they read: only those are
        saved, as PyTorch does. Plans are listed by the mask read as bits (operand i needs a
        gradient: bit i set), because the engine looks one up on every recorded operation.
        """
        for mask in range(2 ** len(self.rules)):
            active = [bool(mask >> i & 1) for i in range(len(self.rules))]
            used = {slot for rule_uses, on in zip(self.uses, active, strict=True) if on
                    for slot in rule_uses.split(",") if slot}
            rules = tuple(rule if on else None for rule, on in zip(self.rules, active, strict=True))
            keep = tuple(slot in used for slot in SLOTS)
            self.plans.append((rules, keep if any(keep) else None))

    @property
    def saves(self) -> str:
        """What the op saves when every operand needs a gradient, in spec/ops.yaml's words."""
        keep = self.plans[-1][1] or (False, False, False)
        inputs, output = keep[0] or keep[1], keep[2]
        return {(False, False): "nothing", (True, False): "inputs", (False, True): "output"}.get(
            (inputs, output), "both")


# -- dispatch: the same call works on numpy arrays and on Tensors ------------------


def call(name: str, *args: Any, **attrs: Any) -> Any:
    """Apply op `name`: recorded through `apply` if any operand is a Tensor, plain numpy otherwise."""
    if any(isinstance(a, Tensor) for a in args):
        return apply(name, *args, **attrs)
    return OPS[name].forward(*args, **attrs)


def exp(a): return call("exp", a)
def log(a): return call("log", a)
def sin(a): return call("sin", a)
def cos(a): return call("cos", a)
def sinh(a): return call("sinh", a)
def cosh(a): return call("cosh", a)
def sqrt(a): return call("sqrt", a)
def tanh(a): return call("tanh", a)
def sigmoid(a): return call("sigmoid", a)
def relu(a): return call("relu", a)
def erf(a): return call("erf", a)
def transpose(a): return call("transpose", a)
def reshape(a, shape): return call("reshape", a, shape=tuple(shape))
def expand(a, shape): return call("_expand", a, shape=tuple(shape))
def sum_to(a, shape): return call("_sum_to", a, shape=tuple(shape))
def cast(a, dtype): return call("_cast", a, dtype=np.dtype(dtype))
def sign(a): return call("_sign", a)
def take(a, index): return call("_take", a, index=index)
def put_add(a, index, shape): return call("_put_add", a, index=index, shape=tuple(shape))
def view_take(a, steps): return _linear("_view_take", a, steps=steps)
def view_put(a, steps, shape): return _linear("_view_put", a, steps=steps, shape=tuple(shape))
def view_zero(a, steps): return _linear("_view_zero", a, steps=steps)
def swap_last(a): return call("_mT", a)
def inv(a): return call("inv", a)
def solve(a, b): return call("solve", a, b)


def _linear(name: str, a: Any, **attrs: Any) -> Any:
    """`call` for a one-operand op in a gradient rule: recorded on a Tensor (create_graph), plain numpy otherwise."""
    return unary(name, a, **attrs) if type(a) is Tensor else OPS[name].forward(a, **attrs)


def constant(value: np.ndarray, like: Any) -> Any:
    """A value that carries no gradient, in the form (array or Tensor) of `like`."""
    return Tensor(value) if isinstance(like, Tensor) else value


def shape_of(value: Any) -> tuple:
    return tuple(np.shape(value.data if isinstance(value, Tensor) else value))


def data_of(value: Any) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


# -- forwards that need more than one numpy call --------------------------------


def _reduce(numpy_reduce):
    def forward(a, dim=None, keepdim=False):
        return np.asarray(numpy_reduce(a, axis=dim, keepdims=keepdim))
    return forward


def _kept_shape(shape: tuple, dim: int | None) -> tuple:
    """The shape a reduction over `dim` has with keepdim=True."""
    if dim is None:
        return (1,) * len(shape)
    dim = dim % len(shape)
    return shape[:dim] + (1,) + shape[dim + 1:]


def _matmul_rules():
    """a @ b over the last two dims, batch dims broadcasting; a 1-d a is a row [1, n], a 1-d b a column [n, 1].

    The rules work on those matrix forms and return gradients still broadcast over the batch
    dims (and, for a 1-d operand, with its extra dim of 1): the engine sums them back to the
    operand's shape.
    """
    def as_matrices(g, a, b):
        a_shape, b_shape = shape_of(a), shape_of(b)
        a2 = reshape(a, (1,) + a_shape) if len(a_shape) == 1 else a
        b2 = reshape(b, b_shape + (1,)) if len(b_shape) == 1 else b
        rows, columns = shape_of(a2), shape_of(b2)
        out_shape = np.broadcast_shapes(rows[:-2], columns[:-2]) + (rows[-2], columns[-1])
        return reshape(g, out_shape), a2, b2

    def as_operand(gradient, operand):
        """A 1-d operand's gradient, from its matrix form: batch dims summed, the added dim dropped."""
        shape = shape_of(operand)
        if len(shape) != 1:
            return gradient  # the engine sums batch dims back
        matrix_shape = shape_of(gradient)[-2:]
        return reshape(sum_to(gradient, matrix_shape), shape)

    def grad_a(g, a, b, out, attrs):
        g2, _, b2 = as_matrices(g, a, b)
        return as_operand(g2 @ swap_last(b2), a)

    def grad_b(g, a, b, out, attrs):
        g2, a2, _ = as_matrices(g, a, b)
        return as_operand(swap_last(a2) @ g2, b)

    return grad_a, grad_b


def _sum_grad(g, a, b, out, attrs):
    shape = attrs["in_shape"]
    if not attrs.get("keepdim"):
        g = reshape(g, _kept_shape(shape, attrs.get("dim")))
    return expand(g, shape)


def _mean_grad(g, a, b, out, attrs):
    shape = attrs["in_shape"]
    count = int(np.prod(shape)) if attrs.get("dim") is None else shape[attrs["dim"]]
    return _sum_grad(g, a, b, out, attrs) / count


def _kept(value, attrs):
    """A reduction's result (or its gradient) with the reduced dimension kept, so it broadcasts over the input."""
    if attrs.get("keepdim"):
        return value
    return reshape(value, _kept_shape(attrs["in_shape"], attrs.get("dim")))


def _extreme_grad(g, a, b, out, attrs):
    """max, amax and amin: g shared evenly among the elements equal to the extreme along dim (KINK-3)."""
    values = data_of(a)
    ties = values == np.reshape(data_of(out), _kept_shape(values.shape, attrs.get("dim")))
    share = ties / ties.sum(axis=attrs.get("dim"), keepdims=True)
    return _kept(g, attrs) * constant(share.astype(values.dtype), g)


def _centred(a, attrs):
    """a less its mean along the reduced dim (kept), recorded, so var's and std's gradients differentiate again."""
    return a - call("mean", a, dim=attrs.get("dim"), keepdim=True)


def _dof(attrs) -> float:
    """The degrees of freedom of var and std: elements reduced, less the correction."""
    shape, dim = attrs["in_shape"], attrs.get("dim")
    count = int(np.prod(shape)) if dim is None else shape[dim]
    return count - attrs.get("correction", 1)


def _slice_positions(shape: tuple, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """For each element p of an array of `shape`: the flat positions of the elements of p's slice along dim (all
    elements without dim), as an array of shape + (n,), and p's own index in that slice, as an array of shape."""
    flat = views.positions(shape)
    if dim is None:
        return np.broadcast_to(flat.reshape(-1), shape + (flat.size,)), flat
    dim = dim % len(shape)
    rows = np.moveaxis(flat, dim, -1)  # rows[..., j]: the j-th element of a slice
    slices = np.moveaxis(np.broadcast_to(rows[..., None, :], rows.shape[:-1] + (shape[dim],) * 2), -2, dim)
    return slices, np.indices(shape)[dim]


def _product_of_others(a, attrs):
    """For each element, the product of the other elements of its slice: the others read through an index map and
    the element itself replaced by 1, so no division (exact at zeros) and every step recorded (HIGHER rules)."""
    slices, own = _slice_positions(attrs["in_shape"], attrs.get("dim"))
    others = (np.arange(slices.shape[-1]) != own[..., None]).astype(data_of(a).dtype)
    return call("prod", take(a, slices) * constant(others, a) + constant(1 - others, a), dim=-1)


def _cumprod_grad(g, a, b, out, attrs):
    """d out_k / d a_i is the product of a_j over j <= k, j != i, for k >= i: each written as a product over a row
    of a with the excluded elements replaced by 1, as in prod's rule, and weighted by g_k."""
    shape, dim = attrs["in_shape"], attrs["dim"]
    slices, own = _slice_positions(shape, dim)
    n = slices.shape[-1]
    k, j = np.arange(n)[:, None], np.arange(n)[None, :]
    kept = ((j <= k) & (j != own[..., None, None])).astype(data_of(a).dtype)  # shape + (k, j)
    reached = (np.arange(n) >= own[..., None]).astype(data_of(a).dtype)  # shape + (k,): out_k reads a_i
    rows = take(a, np.broadcast_to(slices[..., None, :], shape + (n, n)))
    partial = call("prod", rows * constant(kept, a) + constant(1 - kept, a), dim=-1)
    return call("sum", partial * take(g, slices) * constant(reached, a), dim=-1)


def _extreme_along(pick):
    """max or min: without dim, g shared among tied extremes (KINK-3); along dim, all of g to the element that
    pick (argmax or argmin, the first of tied ones) names (KINK-7)."""
    def rule(g, a, b, out, attrs):
        if attrs.get("dim") is None:
            return _extreme_grad(g, a, b, out, attrs)
        values, dim = data_of(a), attrs["dim"]
        first = pick(values, axis=dim, keepdims=True) == np.indices(values.shape)[dim % values.ndim]
        return _kept(g, attrs) * constant(first.astype(values.dtype), g)
    return rule


def _norm_forward(a, p=2, dim=None, keepdim=False):
    magnitude = np.abs(a)
    if p == 1:
        return np.asarray(np.sum(magnitude, axis=dim, keepdims=keepdim))
    if p == "inf":
        return np.asarray(np.max(magnitude, axis=dim, keepdims=keepdim))
    return np.asarray(np.sqrt(np.sum(magnitude * magnitude, axis=dim, keepdims=keepdim)))


def _norm_grad(g, a, b, out, attrs):
    """p = 1: sign(a); p = 2: a / norm, 0 where the norm is 0 (KINK-8); p = inf: sign(a) shared among the
    elements of largest magnitude (KINK-8)."""
    p, kept_g = attrs.get("p", 2), _kept(g, attrs)
    if p == 1:
        return kept_g * sign(a)
    if p == "inf":
        magnitude = np.abs(data_of(a))
        ties = magnitude == np.reshape(data_of(out), _kept_shape(magnitude.shape, attrs.get("dim")))
        share = ties / ties.sum(axis=attrs.get("dim"), keepdims=True)
        return kept_g * sign(a) * constant(share.astype(magnitude.dtype), g)
    norm = _kept(out, attrs)
    at_zero = (data_of(norm) == 0).astype(data_of(a).dtype)
    return kept_g * a / (norm + constant(at_zero, a))  # a is 0 wherever its norm is: 0 / 1


def _det_grad(g, a, b, out, attrs):
    """d det(a) / d a is det(a) * inv(a)^T, the cofactor matrix (a invertible)."""
    batch = shape_of(out) + (1, 1)
    return reshape(g, batch) * reshape(out, batch) * swap_last(inv(a))


def _solve_rules():
    """out = solve(a, b) solves a @ out = b: b's gradient solves a^T @ gb = g, and a's is -gb @ out^T (for a
    vector b, the outer product of gb and out)."""
    def grad_b(g, a, b, out, attrs):
        return solve(swap_last(a), g)

    def grad_a(g, a, b, out, attrs):
        gb = solve(swap_last(a), g)
        if len(shape_of(out)) == 1:
            return -call("outer", gb, out)
        return -(gb @ swap_last(out))
    return grad_a, grad_b


def _diag_forward(a, diagonal=0):
    return np.diag(a, diagonal).copy()


def _diag_grad(g, a, b, out, attrs):
    """A 1-d operand was placed on a diagonal of out: its gradient is that diagonal of g; a 2-d operand gave its
    diagonal: g goes back there."""
    shape, k = attrs["in_shape"], attrs.get("diagonal", 0)
    if len(shape) == 1:
        return take(g, np.diag(views.positions(shape_of(g)), k))
    return put_add(g, np.diag(views.positions(shape), k), shape)


def _triangle(numpy_triangle):
    def rule(g, a, b, out, attrs):
        keep = numpy_triangle(np.ones(attrs["in_shape"][-2:], dtype=data_of(g).dtype), attrs.get("diagonal", 0))
        return g * constant(keep, g)
    return rule


def _take_forward(a, index):
    return np.asarray(a).reshape(-1)[index]


def _take_grad(g, a, b, out, attrs):
    size = int(np.prod(attrs["in_shape"], dtype=np.int64))
    return put_add(g, np.asarray(attrs["index"]) % max(size, 1), attrs["in_shape"])  # negative indices wrap


def _logsumexp_forward(a, dim, keepdim=False):
    top = np.max(a, axis=dim, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    out = np.log(np.sum(np.exp(a - top), axis=dim, keepdims=True)) + top
    return out if keepdim else np.squeeze(out, axis=dim)


def _softmax_forward(a, dim):
    shifted = np.exp(a - np.max(a, axis=dim, keepdims=True))
    return shifted / np.sum(shifted, axis=dim, keepdims=True)


def _flip(a, dim):
    return call("_flip", a, dim=dim)


def _pow_base_grad(g, a, b, out, attrs):
    """b * a^(b-1), and 0 where a == 0 and b == 0 (a^0 is constant in a), not 0 * 0^-1 = nan. Only there is the
    exponent shifted (to b, whose factor b makes the value 0): elsewhere the rule stays b * a^(b-1), so that its own
    derivative with respect to b at b == 0 is a^-1 (DERIV-2), which a mask over every b == 0 would make 0 or 1."""
    at_zero = constant(((data_of(a) == 0) & (data_of(b) == 0)).astype(data_of(b).dtype), b)
    return g * b * a ** (b - 1 + at_zero)


def _pow_exponent_grad(g, a, b, out, attrs):
    """log(a) * a^b, and 0 where a == 0 and b >= 0 (0^b is constant for b > 0; KINK-4 at b = 0).

    There log(a) is taken at 1 instead of 0, so the rule stays free of nan and differentiable.
    """
    flat = ((data_of(a) == 0) & (data_of(b) >= 0)).astype(data_of(a).dtype)
    return g * log(a + constant(flat, a)) * a ** b


def _pow_number_exponent_grad(g, a, b, out, attrs):
    """a ** c for a number c (PyTorch's pow.Tensor_Scalar): c * a^(c-1), and 0 for c == 0 (a^0 is constant in a),
    not 0 * 0^-1 = nan at a = 0. The exponent is known when the op runs, so a branch does what a mask does in pow."""
    exponent = attrs["exponent"]
    if exponent == 0:
        return g * 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return g * exponent * a ** (exponent - 1)


def _pow_number_base_grad(g, a, b, out, attrs):
    """c ** a for a number c (PyTorch's pow.Scalar): out * log(c), and 0 where c == 0 and a >= 0 (0^a is constant
    for a > 0; KINK-4 at a = 0), not 0 * log(0) = nan."""
    base, values = attrs["base"], data_of(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(np.logical_and(base == 0, values >= 0), 0, np.log(values.dtype.type(base)))
    return g * out * constant(factor.astype(values.dtype), g)


def _sqrt_grad(g, a, b, out, attrs):
    with np.errstate(divide="ignore"):
        return g / (2 * out)  # sqrt'(0) = inf (KINK-2)


def _sum_to_forward(a, shape):
    """Sum a broadcast array back to `shape` (the reverse of broadcasting)."""
    a = np.asarray(a)
    extra = a.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and a.shape[i + extra] != 1)
    return np.asarray(a.sum(axis=axes, keepdims=True).reshape(shape)) if axes else a.reshape(shape)


def _view_rule(name: str):
    """The derivative of a view op that makes a region of its operand (getitem, select, narrow, diagonal): zeros
    of the operand's shape with g written into the same region, as PyTorch's strided backward does (views.py).
    Without create_graph, one numpy assignment by the step's basic index (views.STEP_INDEX) where it has one;
    else, and under create_graph (recorded, so it differentiates again), `_view_put`."""
    index_of = views.STEP_INDEX.get(name)

    def rule(g, a, b, out, attrs):
        shape = attrs["in_shape"]
        if type(g) is not Tensor and index_of is not None:
            index = index_of(attrs, len(shape))
            if index is not None:
                grad = np.zeros(shape, dtype=g.dtype)
                grad[index] = g
                return grad
        return view_put(g, ((name, views.arguments(attrs)),), shape)
    return rule


def _reshaped_back(g, a, b, out, attrs):
    """view, flatten, squeeze, unsqueeze: the same elements in another shape, so g takes the operand's shape."""
    return reshape(g, attrs["in_shape"])


def _permuted_back(g, a, b, out, attrs):
    """permute: g by the inverse permutation."""
    dims = attrs["dims"]
    inverse = [0] * len(dims)
    for position, dim in enumerate(dims):
        inverse[dim % len(dims)] = position
    return call("permute", g, dims=tuple(inverse))


def _summed_back(g, a, b, out, attrs):
    """expand and broadcast_to: each element read at several positions gets their sum (VIEW-11)."""
    return sum_to(g, attrs["in_shape"])


def _through_index_map(forward):
    """The derivative of an op that reads each output element from one input element (views, gather, indexing):
    scatter g back to where each element came from, adding where one element was read several times."""
    def rule(g, a, b, out, attrs):
        shape = attrs["in_shape"]
        kwargs = {key: value for key, value in attrs.items() if not key.startswith("in_")}
        index = np.asarray(forward(views.positions(shape), **kwargs))
        return put_add(g, index, shape)
    return rule


def _gather(a, dim, index):
    """out[i][j] = a[index[i][j]][j] (dim 0) over index's shape: an index smaller than a along another dim reads
    that dim's first elements only (PyTorch's gather), where take_along_axis would broadcast it across the dim."""
    dim = dim % max(a.ndim, 1)
    region = tuple(slice(None) if d == dim else slice(0, index.shape[d]) for d in range(a.ndim))
    return np.take_along_axis(a[region], index, axis=dim)


def _index_select(a, dim, index):
    return np.take(a, index, axis=dim)


def _overwrite(a, b, index=None, steps=None, where=None):
    """a with b written at flat positions `index`, or at the region of view `steps` (basic indexing: views.py),
    whose numpy basic index is `where` where views.where finds one (x[where] = b gives only that)."""
    if steps is not None or where is not None:
        return views.overwrite(a, b, steps, where)
    out = np.array(a, order="C")  # C order: reshape(-1) of a transposed copy would be another copy, the writes lost
    out.reshape(-1)[index.ravel()] = np.broadcast_to(b, index.shape).ravel()
    return out


def _add_at(a, b, index):
    return a + _put_add_forward(b, index, a.shape)


def _put_add_forward(a, index, shape):
    """zeros(shape) with each a[i] added at flat position index[i]; repeated positions add up."""
    size = int(np.prod(shape, dtype=np.int64))
    weights = np.broadcast_to(a, index.shape).ravel()
    return np.bincount(index.ravel(), weights=weights, minlength=size).reshape(shape).astype(np.asarray(a).dtype)


def _scatter_forward(write):
    def forward(a, b, dim, index):
        return write(a, b, _gather(views.positions(a.shape), dim, index))
    return forward


def _index_add_forward(a, b, dim, index):
    return _add_at(a, b, _index_select(views.positions(a.shape), dim, index))


def _written_positions(along):
    """Where each element of the scattered operand went in a: along `dim` by `index` (as _gather or _index_select
    reads), or, for _overwrite (along None), the flat positions in attrs["index"] themselves."""
    def positions(attrs):
        if along is None:
            return attrs["index"]
        return along(views.positions(attrs["in_shape"]), attrs["dim"], attrs["index"])
    return positions


def _keep_unwritten(along):
    """Overwritten positions of a get no gradient (VIEW-10, VIEW-12): exactly 0, even where g is inf or nan, as
    PyTorch's (a mask multiplied in would leave nan there)."""
    positions = _written_positions(along)
    return lambda g, a, b, out, attrs: _linear("_zero_at", g, index=positions(attrs))


def _zero_at_forward(a, index):
    """A copy of a with the flat positions `index` set to 0."""
    out = np.array(a, order="C")  # C order, as in _overwrite: flat positions written into out itself
    out.reshape(-1)[index.ravel()] = 0
    return out


def _written(along):
    """The scattered operand gets the gradient at the positions it was written to."""
    positions = _written_positions(along)
    return lambda g, a, b, out, attrs: take(g, positions(attrs))


def _overwrite_rules():
    """`_overwrite` (setitem, and CopySlices after an in-place update of a view): by index map for integer lists
    (attrs index), else on the strided path, by the basic index `where` or the view `steps`, overwritten positions
    getting an exact 0 (views.py). Under create_graph the same, recorded."""
    keep_by_index, written_by_index = _keep_unwritten(None), _written(None)

    def keep_unwritten(g, a, b, out, attrs):
        index, steps = attrs.get("where"), attrs.get("steps")
        if index is None and steps is None:
            return keep_by_index(g, a, b, out, attrs)
        if type(g) is Tensor:
            return view_zero(g, steps or (("getitem", {"index": index}),))
        if index is None:
            return views.zero(g, steps)
        kept = np.array(g, order="C")  # a copy (writable even where g is a broadcast gradient)
        kept[index] = 0
        return kept

    def written(g, a, b, out, attrs):
        index, steps = attrs.get("where"), attrs.get("steps")
        if index is None and steps is None:
            return written_by_index(g, a, b, out, attrs)
        if type(g) is Tensor:
            return view_take(g, steps or (("getitem", {"index": index}),))
        return views.take(g, steps) if index is None else np.array(g[index])
    return keep_unwritten, written


# -- the elementwise functions of the larger vocabulary ----------------------------------------------

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_ONE_OVER_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_K = math.sqrt(2 / math.pi)  # gelu's tanh form: 0.5 a (1 + tanh(k (a + 0.044715 a^3)))
_erf_elementwise = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf; math's is exact to double precision


def _erf_forward(a):
    return np.asarray(_erf_elementwise(a), dtype=np.float64).astype(a.dtype)


def _gelu_forward(a, approximate="none"):
    if approximate == "tanh":
        return 0.5 * a * (1 + np.tanh(_GELU_K * (a + 0.044715 * a ** 3)))
    return (0.5 * a * (1 + _erf_forward(a / math.sqrt(2)))).astype(a.dtype)


def _gelu_grad(g, a, b, out, attrs):
    """d/da of a * Phi(a) is Phi(a) + a phi(a); of the tanh form, 0.5 (1 + t) + 0.5 a (1 - t^2) k (1 + 3 c a^2)."""
    if attrs.get("approximate", "none") == "tanh":
        t = tanh(_GELU_K * (a + 0.044715 * a * a * a))
        return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * _GELU_K * (1 + 3 * 0.044715 * a * a))
    return g * (0.5 * (1 + erf(a * (1 / math.sqrt(2)))) + a * exp(a * a * -0.5) * _ONE_OVER_SQRT_2PI)


def _positive(a):
    """1 where a > 0, else 0, as a recorded step of derivative 0 (relu's trick, so that leaky_relu's and elu's
    gradients are recorded like relu's, HIGHER-8)."""
    return sign(relu(a))


def _leaky_relu_grad(g, a, b, out, attrs):
    slope = attrs.get("negative_slope", 0.01)
    return g * (slope + (1 - slope) * _positive(a))  # slope at a = 0 (KINK-5)


def _elu_grad(g, a, b, out, attrs):
    alpha, step = attrs.get("alpha", 1.0), _positive(a)
    return g * (step + (1 - step) * (out + alpha))  # alpha at a = 0 (KINK-5)


def _clamp_forward(a, min=None, max=None):
    return np.clip(a, -np.inf if min is None else min, np.inf if max is None else max).astype(a.dtype)


def _clamp_grad(g, a, b, out, attrs):
    """g where min < a < max, 0 at a bound, the subgradient of least norm (KINK-5); the mask is a constant, so
    nothing is recorded (HIGHER-9)."""
    low, high = attrs.get("min"), attrs.get("max")
    values = data_of(a)
    inside = (values > (-np.inf if low is None else low)) & (values < (np.inf if high is None else high))
    return g * constant(inside.astype(values.dtype), g)


def _constant_zero(g, a, b, out, attrs):
    return g * 0  # a step function (sign, floor, ...): derivative 0, recorded on nothing (HIGHER-9)


# -- more two-operand functions ---------------------------------------------------------------------


def _tie_shares(first_wins):
    """The share of g that goes to a where a wins, half at a tie (KINK-6), for maximum (a > b) and minimum (a < b)."""
    def rule_a(g, a, b, out, attrs):
        x, y = np.broadcast_arrays(data_of(a), data_of(b))
        return g * constant((first_wins(x, y) + 0.5 * (x == y)).astype(x.dtype), g)

    def rule_b(g, a, b, out, attrs):
        x, y = np.broadcast_arrays(data_of(a), data_of(b))
        return g * constant((first_wins(y, x) + 0.5 * (x == y)).astype(x.dtype), g)
    return rule_a, rule_b


def _atan2_rules():
    """atan2(a, b) is the angle of the point (b, a): d/da = b / r^2, d/db = -a / r^2, both 0 at the origin (KINK-6)."""
    def squared_radius(a, b):
        origin = (data_of(a) == 0) & (data_of(b) == 0)
        return a * a + b * b + constant(origin.astype(data_of(a).dtype), a)  # 1 there: 0 / 1 = 0, not nan
    return (lambda g, a, b, o, t: g * b / squared_radius(a, b), lambda g, a, b, o, t: -g * a / squared_radius(a, b))


def _quotient_rule(rounding, name):
    """fmod and remainder are a - rounding(a / b) * b: d/db = -rounding(a / b), a step function of a and b, computed
    through the division and the rounding op, so that under create_graph it is recorded and differentiates to
    zeros (HIGHER-8; PyTorch's choice, HIGHER-9)."""
    def rule_b(g, a, b, out, attrs):
        with np.errstate(divide="ignore", invalid="ignore"):
            if isinstance(g, Tensor):
                return -g * call(name, a / b)
            return g * -rounding(data_of(a) / data_of(b))
    return (lambda g, a, b, o, t: g, rule_b)


def _where_forward(a, b, condition):
    return np.where(condition, a, b)


def _safe(function):
    """numpy forward that returns inf/nan at domain edges without printing warnings (sqrt'(0) = inf)."""
    def forward(*args, **kwargs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return function(*args, **kwargs)
    return forward


OPS: dict[str, Op] = {
    # elementwise, two operands (broadcasting)
    "add": Op(np.add, (lambda g, a, b, o, t: g, lambda g, a, b, o, t: g), ("", "")),
    "sub": Op(np.subtract, (lambda g, a, b, o, t: g, lambda g, a, b, o, t: -g), ("", "")),
    "mul": Op(np.multiply, (lambda g, a, b, o, t: g * b, lambda g, a, b, o, t: g * a), ("b", "a")),
    "div": Op(_safe(np.divide), (lambda g, a, b, o, t: g / b, lambda g, a, b, o, t: -g * a / (b * b)), ("b", "a,b")),
    "pow": Op(_safe(np.power), (_pow_base_grad, _pow_exponent_grad), ("a,b", "a,b")),
    # pow with a number exponent or a number base: ops of their own, as PyTorch's pow overloads are (see power)
    "_pow_number_exponent": Op(_safe(lambda a, exponent: np.power(a, exponent)), (_pow_number_exponent_grad,),
                               ("a",), attrs={"exponent": None}),
    "_pow_number_base": Op(_safe(lambda a, base: np.power(base, a)), (_pow_number_base_grad,), ("a,out",),
                           attrs={"base": None}),
    "matmul": Op(np.matmul, _matmul_rules(), ("a,b", "a,b")),
    "outer": Op(np.outer, (lambda g, a, b, o, t: g @ b, lambda g, a, b, o, t: transpose(g) @ a), ("b", "a")),
    "dot": Op(lambda a, b: np.asarray(np.dot(a, b)), (lambda g, a, b, o, t: g * b, lambda g, a, b, o, t: g * a),
              ("b", "a")),
    "solve": Op(np.linalg.solve, _solve_rules(), ("a,out", "a")),
    "maximum": Op(np.maximum, _tie_shares(np.greater), ("a,b", "a,b")),
    "minimum": Op(np.minimum, _tie_shares(np.less), ("a,b", "a,b")),
    "atan2": Op(np.arctan2, _atan2_rules(), ("a,b", "a,b")),
    "hypot": Op(np.hypot, (lambda g, a, b, o, t: g * a / o, lambda g, a, b, o, t: g * b / o), ("a,out", "b,out")),
    "fmod": Op(_safe(np.fmod), _quotient_rule(np.trunc, "trunc"), ("", "a,b")),
    "remainder": Op(_safe(np.remainder), _quotient_rule(np.floor, "floor"), ("", "a,b")),
    "copysign": Op(np.copysign, (lambda g, a, b, o, t: g * sign(a) * sign(o), lambda g, a, b, o, t: g * 0),
                   ("a,out", "")),
    "lerp": Op(lambda a, b, weight: a + weight * (b - a),
               (lambda g, a, b, o, t: g * (1 - t["weight"]), lambda g, a, b, o, t: g * t["weight"]), ("", ""),
               attrs={"weight": None}),
    "masked_fill": Op(lambda a, value, condition: np.where(condition, np.asarray(value, dtype=a.dtype), a),
                      (lambda g, a, b, o, t: g * constant((~t["condition"]).astype(data_of(g).dtype), g),), ("",),
                      attrs={"value": None, "condition": None}),
    "where": Op(_where_forward, (lambda g, a, b, o, t: g * constant(t["condition"].astype(data_of(g).dtype), g),
                                 lambda g, a, b, o, t: g * constant((~t["condition"]).astype(data_of(g).dtype), g)),
                ("", ""), attrs={"condition": None}),
    # elementwise, one operand
    "neg": Op(np.negative, (lambda g, a, b, o, t: -g,), ("",)),
    "exp": Op(np.exp, (lambda g, a, b, o, t: g * o,), ("out",)),
    "log": Op(_safe(np.log), (lambda g, a, b, o, t: g / a,), ("a",)),
    "sin": Op(np.sin, (lambda g, a, b, o, t: g * cos(a),), ("a",)),
    "cos": Op(np.cos, (lambda g, a, b, o, t: -(g * sin(a)),), ("a",)),
    "tanh": Op(np.tanh, (lambda g, a, b, o, t: g * (1 - o * o),), ("out",)),
    "sigmoid": Op(lambda a: 1 / (1 + np.exp(-a)), (lambda g, a, b, o, t: g * o * (1 - o),), ("out",)),
    # relu'(0) = abs'(0) = 0 (KINK-1). The sign is an op of its own: under create_graph it records
    # on a value that requires grad, so the gradient does too and differentiates to zeros (HIGHER-8).
    "relu": Op(lambda a: np.maximum(a, 0).astype(a.dtype), (lambda g, a, b, o, t: g * sign(o),), ("out",)),
    "abs": Op(np.abs, (lambda g, a, b, o, t: g * sign(a),), ("a",)),
    "sqrt": Op(np.sqrt, (_sqrt_grad,), ("out",)),
    "expm1": Op(np.expm1, (lambda g, a, b, o, t: g * (o + 1),), ("out",)),
    "log1p": Op(_safe(np.log1p), (lambda g, a, b, o, t: g / (a + 1),), ("a",)),
    "log2": Op(_safe(np.log2), (lambda g, a, b, o, t: g / (a * math.log(2)),), ("a",)),
    "log10": Op(_safe(np.log10), (lambda g, a, b, o, t: g / (a * math.log(10)),), ("a",)),
    "tan": Op(np.tan, (lambda g, a, b, o, t: g * (o * o + 1),), ("out",)),
    "asin": Op(_safe(np.arcsin), (lambda g, a, b, o, t: g / sqrt(1 - a * a),), ("a",)),
    "acos": Op(_safe(np.arccos), (lambda g, a, b, o, t: -g / sqrt(1 - a * a),), ("a",)),
    "atan": Op(np.arctan, (lambda g, a, b, o, t: g / (a * a + 1),), ("a",)),
    "sinh": Op(np.sinh, (lambda g, a, b, o, t: g * cosh(a),), ("a",)),
    "cosh": Op(np.cosh, (lambda g, a, b, o, t: g * sinh(a),), ("a",)),
    "asinh": Op(np.arcsinh, (lambda g, a, b, o, t: g / sqrt(a * a + 1),), ("a",)),
    "acosh": Op(_safe(np.arccosh), (lambda g, a, b, o, t: g / sqrt(a * a - 1),), ("a",)),
    "atanh": Op(_safe(np.arctanh), (lambda g, a, b, o, t: g / (1 - a * a),), ("a",)),
    "softplus": Op(lambda a: np.logaddexp(0, a).astype(a.dtype), (lambda g, a, b, o, t: g * sigmoid(a),), ("a",)),
    "silu": Op(lambda a: (a / (1 + np.exp(-a))).astype(a.dtype),
               (lambda g, a, b, o, t: g * (sigmoid(a) * (1 + a * (1 - sigmoid(a)))),), ("a",)),
    "gelu": Op(_gelu_forward, (_gelu_grad,), ("a",), attrs={"approximate": "none"}),
    "erf": Op(_erf_forward, (lambda g, a, b, o, t: g * exp(-(a * a)) * _TWO_OVER_SQRT_PI,), ("a",)),
    "erfc": Op(lambda a: (1 - _erf_forward(a)).astype(a.dtype),
               (lambda g, a, b, o, t: -g * exp(-(a * a)) * _TWO_OVER_SQRT_PI,), ("a",)),
    "rsqrt": Op(_safe(lambda a: 1 / np.sqrt(a)), (lambda g, a, b, o, t: g * o * o * o * -0.5,), ("out",)),
    "reciprocal": Op(_safe(np.reciprocal), (lambda g, a, b, o, t: -g * o * o,), ("out",)),
    "square": Op(np.square, (lambda g, a, b, o, t: g * a * 2,), ("a",)),
    "leaky_relu": Op(lambda a, negative_slope=0.01: np.where(a > 0, a, a * negative_slope).astype(a.dtype),
                     (_leaky_relu_grad,), ("a",), attrs={"negative_slope": 0.01}),
    "elu": Op(lambda a, alpha=1.0: np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0))).astype(a.dtype),
              (_elu_grad,), ("a,out",), attrs={"alpha": 1.0}),
    # integer-valued and clamped: derivative 0 (or 1 inside the bounds), constant, so never recorded
    **{name: Op(forward, (_constant_zero,), ("",)) for name, forward in (
        ("sign", np.sign), ("floor", np.floor), ("ceil", np.ceil), ("round", np.round), ("trunc", np.trunc))},
    "clamp": Op(_clamp_forward, (_clamp_grad,), ("a",), attrs={"min": None, "max": None}),
    # reductions
    "sum": Op(_reduce(np.add.reduce), (_sum_grad,), ("",), attrs={"dim": None, "keepdim": False}, reads_input_meta=True),
    "mean": Op(_reduce(np.mean), (_mean_grad,), ("",), attrs={"dim": None, "keepdim": False}, reads_input_meta=True),
    "max": Op(_reduce(np.max), (_extreme_along(np.argmax),), ("a,out",), attrs={"dim": None, "keepdim": False},
              reads_input_meta=True),
    "min": Op(_reduce(np.min), (_extreme_along(np.argmin),), ("a,out",), attrs={"dim": None, "keepdim": False},
              reads_input_meta=True),
    "prod": Op(_reduce(np.prod), (lambda g, a, b, o, t: _kept(g, t) * _product_of_others(a, t),), ("a",),
               attrs={"dim": None, "keepdim": False}, reads_input_meta=True),
    "cumprod": Op(lambda a, dim: np.cumprod(a, axis=dim), (_cumprod_grad,), ("a",), attrs={"dim": None},
                  reads_input_meta=True),
    "norm": Op(_norm_forward, (_norm_grad,), ("a,out",), attrs={"p": 2, "dim": None, "keepdim": False},
               reads_input_meta=True),
    "amax": Op(_reduce(np.max), (_extreme_grad,), ("a,out",), attrs={"dim": None, "keepdim": False},
               reads_input_meta=True),
    "amin": Op(_reduce(np.min), (_extreme_grad,), ("a,out",), attrs={"dim": None, "keepdim": False},
               reads_input_meta=True),
    # d logsumexp = softmax; d softmax(a)_i = out_i (g_i - sum_j g_j out_j); d log_softmax = g - exp(out) sum(g)
    "logsumexp": Op(_logsumexp_forward, (lambda g, a, b, o, t: _kept(g, t) * exp(a - _kept(o, t)),), ("a,out",),
                    attrs={"dim": None, "keepdim": False}, reads_input_meta=True),
    "softmax": Op(_softmax_forward, (lambda g, a, b, o, t: o * (g - call("sum", g * o, dim=t["dim"], keepdim=True)),),
                  ("out",), attrs={"dim": None}),
    "log_softmax": Op(lambda a, dim: np.log(_softmax_forward(a, dim)),
                      (lambda g, a, b, o, t: g - exp(o) * call("sum", g, dim=t["dim"], keepdim=True),), ("out",),
                      attrs={"dim": None}),
    # var and std with Bessel's correction c: d var / da = 2 (a - mean) / (n - c), d std = d var / (2 std)
    "var": Op(lambda a, dim=None, correction=1, keepdim=False: np.asarray(np.var(a, axis=dim, ddof=correction,
                                                                                  keepdims=keepdim)),
              (lambda g, a, b, o, t: _kept(g, t) * _centred(a, t) * (2 / _dof(t)),), ("a",),
              attrs={"dim": None, "correction": 1, "keepdim": False}, reads_input_meta=True),
    "std": Op(lambda a, dim=None, correction=1, keepdim=False: np.asarray(np.std(a, axis=dim, ddof=correction,
                                                                                  keepdims=keepdim)),
              (lambda g, a, b, o, t: _kept(g, t) * _centred(a, t) / (_kept(o, t) * _dof(t)),), ("a,out",),
              attrs={"dim": None, "correction": 1, "keepdim": False}, reads_input_meta=True),
    # cumsum's gradient is the cumulative sum of g taken from the other end
    "cumsum": Op(lambda a, dim: np.cumsum(a, axis=dim), (lambda g, a, b, o, t: _flip(call("cumsum", _flip(g, t["dim"]),
                                                                                    dim=t["dim"]), t["dim"]),),
                 ("",), attrs={"dim": None}),
    "_flip": Op(lambda a, dim: np.flip(a, axis=dim).copy(), (lambda g, a, b, o, t: _flip(g, t["dim"]),), ("",),
                attrs={"dim": None}),
    # comparisons: boolean results, never recorded (LEAF-2)
    **{name: Op(function, (None, None), ("", ""), differentiable=False) for name, function in (
        ("gt", np.greater), ("lt", np.less), ("ge", np.greater_equal), ("le", np.less_equal), ("eq", np.equal),
        ("ne", np.not_equal))},
    "argmax": Op(_reduce(np.argmax), (None,), ("",), attrs={"dim": None, "keepdim": False},
                 differentiable=False),
    "argmin": Op(_reduce(np.argmin), (None,), ("",), attrs={"dim": None, "keepdim": False},
                 differentiable=False),
    # linear algebra on the last two dims
    "trace": Op(lambda a: np.asarray(np.trace(a)),
                (lambda g, a, b, o, t: g * constant(np.eye(*t["in_shape"], dtype=t["in_dtype"]), g),), ("",),
                reads_input_meta=True),
    "diag": Op(_diag_forward, (_diag_grad,), ("",), attrs={"diagonal": 0}, reads_input_meta=True),
    "triu": Op(lambda a, diagonal=0: np.triu(a, diagonal), (_triangle(np.triu),), ("",), attrs={"diagonal": 0},
               reads_input_meta=True),
    "tril": Op(lambda a, diagonal=0: np.tril(a, diagonal), (_triangle(np.tril),), ("",), attrs={"diagonal": 0},
               reads_input_meta=True),
    "inv": Op(np.linalg.inv, (lambda g, a, b, o, t: -(swap_last(o) @ g @ swap_last(o)),), ("out",)),
    "det": Op(lambda a: np.asarray(np.linalg.det(a)), (_det_grad,), ("a,out",)),
    # shape: transpose is a view, reshape a view where the layout allows and a copy elsewhere (VIEW-1)
    "clone": Op(np.copy, (lambda g, a, b, o, t: g,), ("",)),
    "transpose": Op(lambda a: a.T, (lambda g, a, b, o, t: transpose(g),), ("",), view=True),  # 0-d, 1-d: unchanged
    "reshape": Op(lambda a, shape: np.reshape(a, shape), (lambda g, a, b, o, t: reshape(g, t["in_shape"]),),
                  ("",), attrs={"shape": None}, reads_input_meta=True, view=True),
    # views (views.py): each gradient takes the strided path, no index map
    **{name: Op(forward, (rule,), ("",), attrs=attrs, reads_input_meta=True, view=True)
       for name, forward, rule, attrs in (
           ("getitem", views.getitem, _view_rule("getitem"), {"index": None}),
           ("select", views.select, _view_rule("select"), {"dim": None, "index": None}),
           ("narrow", views.narrow, _view_rule("narrow"), {"dim": None, "start": None, "length": None}),
           ("unsqueeze", views.unsqueeze, _reshaped_back, {"dim": None}),
           ("squeeze", views.squeeze, _reshaped_back, {"dim": None}),
           ("expand", views.expand, _summed_back, {"shape": None}),
           ("view", views.view, _reshaped_back, {"shape": None}),
           ("permute", views.permute, _permuted_back, {"dims": None}),
           ("diagonal", views.diagonal, _view_rule("diagonal"), {"offset": 0, "dim1": 0, "dim2": 1}),
           ("flatten", views.flatten, _reshaped_back, {}),
           ("broadcast_to", views.broadcast_to, _summed_back, {"shape": None}),
       )},
    # copies that read each output element from one input element: the index map gives the gradient too
    **{name: Op(forward, (_through_index_map(forward),), ("",), attrs=attrs, reads_input_meta=True)
       for name, forward, attrs in (
           ("flip", lambda a, dims: np.flip(a, axis=tuple(dims)).copy(), {"dims": None}),
           ("roll", lambda a, shifts, dims: np.roll(a, shifts, axis=dims), {"shifts": None, "dims": None}),
           ("repeat", lambda a, repeats: np.tile(a, tuple(repeats)), {"repeats": None}),  # PyTorch's repeat is tile
           ("tile", lambda a, reps: np.tile(a, tuple(reps)), {"reps": None}),
       )},
    # indexing that copies; an index map again gives the gradient, repeated positions adding up (VIEW-11)
    "_index_copy": Op(views.getitem, (_through_index_map(views.getitem),), ("",), attrs={"index": None},
                      reads_input_meta=True),
    "gather": Op(_gather, (_through_index_map(_gather),), ("",), attrs={"dim": None, "index": None},
                 reads_input_meta=True),
    "index_select": Op(_index_select, (_through_index_map(_index_select),), ("",), attrs={"dim": None, "index": None},
                       reads_input_meta=True),
    # a scatter writes src at positions of a: overwriting (scatter, setitem) or adding (scatter_add, index_add)
    "scatter": Op(_scatter_forward(_overwrite), (_keep_unwritten(_gather), _written(_gather)), ("", ""),
                  attrs={"dim": None, "index": None}, reads_input_meta=True),
    "scatter_add": Op(_scatter_forward(_add_at), (lambda g, a, b, o, t: g, _written(_gather)), ("", ""),
                      attrs={"dim": None, "index": None}, reads_input_meta=True),
    "index_add": Op(_index_add_forward, (lambda g, a, b, o, t: g, _written(_index_select)), ("", ""),
                    attrs={"dim": None, "index": None}, reads_input_meta=True),
    "_overwrite": Op(_overwrite, _overwrite_rules(), ("", ""), attrs={"index": None, "steps": None, "where": None},
                     reads_input_meta=True),
    "take": Op(_take_forward, (_take_grad,), ("",), attrs={"index": None}, reads_input_meta=True),
    "_take": Op(lambda a, index: a.reshape(-1)[index], (lambda g, a, b, o, t: put_add(g, t["index"], t["in_shape"]),),
                ("",), attrs={"index": None}, reads_input_meta=True),
    "_put_add": Op(lambda a, index, shape: _put_add_forward(a, index, shape),
                   (lambda g, a, b, o, t: take(g, t["index"]),), ("",), attrs={"index": None, "shape": None}),
    # the strided path of views (views.py): each op's derivative is another of the three
    "_view_take": Op(views.take, (lambda g, a, b, o, t: view_put(g, t["steps"], t["in_shape"]),), ("",),
                     attrs={"steps": None}, reads_input_meta=True),
    "_view_put": Op(views.put, (lambda g, a, b, o, t: view_take(g, t["steps"]),), ("",),
                    attrs={"steps": None, "shape": None}),
    "_zero_at": Op(_zero_at_forward, (lambda g, a, b, o, t: _linear("_zero_at", g, index=t["index"]),), ("",),
                   attrs={"index": None}),
    "_view_zero": Op(views.zero, (lambda g, a, b, o, t: view_zero(g, t["steps"]),), ("",), attrs={"steps": None}),
    # internal helpers used by rules and by the engine
    "_expand": Op(lambda a, shape: np.broadcast_to(a, shape), (lambda g, a, b, o, t: sum_to(g, t["in_shape"]),),
                  ("",), attrs={"shape": None}, reads_input_meta=True),
    "_sum_to": Op(_sum_to_forward, (lambda g, a, b, o, t: expand(g, t["in_shape"]),), ("",), attrs={"shape": None},
                  reads_input_meta=True),
    "_mT": Op(lambda a: np.swapaxes(a, -1, -2).copy(), (lambda g, a, b, o, t: swap_last(g),), ("",)),
    "_sign": Op(np.sign, (lambda g, a, b, o, t: g * 0,), ("",)),  # a step function: derivative 0
    "_cast": Op(lambda a, dtype: a.astype(dtype), (lambda g, a, b, o, t: cast(g, t["in_dtype"]),), ("",),
                attrs={"dtype": None}, reads_input_meta=True),
}


def apply(name: str, *args: Any, **attrs: Any) -> Tensor:
    """Run op `name` on its operands (at least one a Tensor) and record it; see unary and binary."""
    return binary(name, *args) if len(args) == 2 else unary(name, args[0], **attrs)


def binary(name: str, a: Any, b: Any, attrs: dict | None = None) -> Tensor:
    """A two-operand op; a number becomes a constant of the other operand's dtype (x * 2 stays float32)."""
    op = OPS[name]
    if type(a) is not Tensor:
        a = result(np.asarray(a, dtype=b.data.dtype))
    if type(b) is not Tensor:
        b = result(np.asarray(b, dtype=a.data.dtype))
    data = op.forward(a.data, b.data, **attrs) if attrs else op.forward(a.data, b.data)
    state = grad_mode._state
    out = _new(Tensor)  # tensor.result, spelled out: this runs for every operation
    out.data = data if type(data) is np.ndarray else np.asarray(data)  # 0-d ufunc results are scalars
    out._requires_grad, out._grad_fn, out._grad, out._version, out._accumulator, out._view = _FRESH
    if not state.enabled:
        out._inference = state.inference
    else:  # grad mode is never on inside inference_mode (grad_mode.py): one thread-local read less
        out._inference = False
        view = a._view
        if view is not None and view.seen != a._version.value:  # a stale view: its history first (views.py)
            a._sync_view()
        view = b._view
        if view is not None and view.seen != b._version.value:
            b._sync_view()
        if (a._requires_grad or b._requires_grad) and op.differentiable:
            record(name, op, a, b, out, attrs or _NO_ATTRS)
    return out


def power(a: Any, b: Any) -> Tensor:
    """a ** b, at least one a Tensor. Real engines keep separate derivative code for pow's spellings (PyTorch's
    tensor ** tensor, tensor ** number and number ** tensor are three overloads with three backward formulas), so
    a number exponent or base does not become a constant tensor here, as in binary, but the attribute of an op of
    its own: the faults that an engine's spelling can have are planted and caught one spelling at a time."""
    if isinstance(b, (int, float)) and isinstance(a, Tensor):
        return unary("_pow_number_exponent", a, exponent=float(b))
    if isinstance(a, (int, float)) and isinstance(b, Tensor):
        return unary("_pow_number_base", b, base=float(a))
    return binary("pow", a, b)


def unary(name: str, a: Tensor, **attrs: Any) -> Tensor:
    op = OPS[name]
    data = op.forward(a.data, **attrs) if attrs else op.forward(a.data)
    state = grad_mode._state
    out = _new(Tensor)  # tensor.result, spelled out
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out._requires_grad, out._grad_fn, out._grad, out._version, out._accumulator, out._view = _FRESH
    enabled = state.enabled
    out._inference = False if enabled else state.inference  # (never both: grad_mode.py)
    if op.view:
        _make_view(out, a, name, attrs)
    if enabled:
        view = a._view
        if view is not None and view.seen != a._version.value:
            a._sync_view()  # a stale view makes its history again first (views.py)
        if a._requires_grad and op.differentiable:
            record(name, op, a, None, out, attrs)
    return out


def _make_view(out: Tensor, a: Tensor, name: str, attrs: dict) -> None:
    """Mark `out` a view of `a`'s root base: shared version counter, the view steps from the base (views.py)."""
    source = a._view
    out._inference = a._inference  # a view of an inference tensor is one; made inside, a view of another is not (MODE-12)
    if source is None:  # (ViewInfo(a, steps, seen, False, no_grad), spelled out: this runs for every view)
        out._version = counter = a._version or a._shared_version()
        out._view = info = _new(views.ViewInfo)
        info.base, info.steps, info.seen, info.multi_output, info.no_grad = (
            a, ((name, attrs),), counter.value, False, not grad_mode._state.enabled)
    else:
        base = source.base
        out._version = counter = base._version or base._shared_version()
        out._view = views.ViewInfo(base, source.steps + ((name, attrs),), counter.value, source.multi_output,
                                   source.no_grad or not grad_mode._state.enabled)


_NO_ATTRS: dict = {}
_FRESH = (False, None, None, None, None, None)  # a result's autograd slots, from _requires_grad to _view
_new = object.__new__


def record(name: str, op: Op, a: Tensor, b: Tensor | None, out: Tensor, attrs: dict) -> None:
    """Attach a node for `out` (b is None for a one-operand op), saving only what the active rules read."""
    # Edges are Tensor._edge() spelled out, on the raw slots: this runs for every operand of every
    # recorded op, and most operands already have their node or accumulator, so the call is rarely
    # needed. (binary and unary have brought stale views up to date.)
    if b is None:
        rules, keep = op.plans[1]
        edges = (a._grad_fn or a._accumulator or a._edge(),)
    else:
        rules, keep = op.plans[a._requires_grad + 2 * b._requires_grad]
        edges = ((a._grad_fn or a._accumulator or a._edge()) if a._requires_grad else None,
                 (b._grad_fn or b._accumulator or b._edge()) if b._requires_grad else None)
    if op.reads_input_meta:
        data = a.data
        shape, first = data.shape, edges[0]
        if first is not None and first.shape == shape:
            shape = first.shape  # one tuple for both (fewer objects for the garbage collector)
        if op.view:  # one dict for the view's step and its node: unary's own, which views.py reads past in_ keys
            attrs["in_shape"], attrs["in_dtype"] = shape, data.dtype
        else:
            attrs = {**attrs, "in_shape": shape, "in_dtype": data.dtype}
    if keep is None:
        saved = NOTHING_SAVED
    else:
        saved = (a if keep[0] else None, b if keep[1] else None, out if keep[2] else None)
        if (keep[0] and a._inference) or (keep[1] and b._inference) or (keep[2] and out._inference):
            raise InferenceTensorSavedError("Inference tensors cannot be saved for backward (MODE-10).")
    out._grad_fn = Node(name, rules, edges, out, saved, attrs)
    out._requires_grad = True


from .tensor import Tensor, result  # noqa: E402  (Tensor's operators call apply; the cycle is resolved here)
