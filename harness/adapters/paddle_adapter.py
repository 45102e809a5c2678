"""The PaddlePaddle adapter: Paddle's dynamic graph on CPU, in float64 and float32.

Paddle's eager mode is PyTorch-like (`Tensor.backward`, `paddle.grad` with create_graph,
`.grad`, `register_hook`, `retain_grads`, `no_grad`, version counters, `PyLayer`), so this
subclasses `TorchLikeAdapter` and overrides what Paddle spells otherwise: ops take `axis`,
`gather` and `scatter` are `take_along_axis` and `put_along_axis`, `x += y` rebinds (the
in-place ops are `add_` and friends, which take tensors), `.grad.zero_()` is refused on a
gradient (it does not stop gradient) and `clear_grad()` zeroes it.

What Paddle lacks is left out of the capabilities: `Tensor.backward` has neither
`create_graph` nor `inputs` (backward_create_graph, backward_inputs), `paddle.grad` no
`materialize_grads`; there are no node or post-accumulate-grad hooks, no inference mode, no
once_differentiable, no mark_dirty and no warnings; a slice shares its base's values but an
in-place update through it does not reach the base's history (views). What it has but
does otherwise is in expectations/paddle.txt. A second pass through a PyLayer node that a
backward ran kills the process, so the adapter refuses that pass (PyLayerRerunRefused).

paddle is imported on first use (`load()`): the import takes seconds and prints warnings.
Its C++ log (a line per failed backward node, per type promotion) is quietened with
GLOG_minloglevel unless the user set it.
"""

from __future__ import annotations

import importlib.util
import operator
import os
import sys
import warnings
from typing import Any

import numpy as np
from gradspec.absent import Unsupported
from gradspec.adapter import OPERATOR_OPS, CrashAvoided
from gradspec.adapters.torch_like import TorchLikeAdapter, call_method, custom_forward

paddle: Any = None  # the module, once load() imported it
PADDLE_SPEC = importlib.util.find_spec("paddle")  # whether it is installed, without importing it


def load() -> Any:
    """Import paddle (quietly) and put it on the CPU; the adapter calls this before anything touches Paddle.

    Loaded into a process that has loaded TensorFlow (2.21), libpaddle crashes the process (SIGSEGV in
    paddle.base.core): there it is loaded with RTLD_DEEPBIND, preferring its own symbols to TensorFlow's.
    """
    global paddle
    if paddle is None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        flags = sys.getdlopenflags()
        if "tensorflow" in sys.modules:
            sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "No ccache found", at import
                import paddle as module
        finally:
            sys.setdlopenflags(flags)
        module.set_device("cpu")
        paddle = module
    return paddle


# Exceptions by type and message pattern; the messages are Paddle 3.3's.
ERRORS = [
    (SystemError, r"TensorWrappers of \w+ do not exist", "freed_graph"),
    (ValueError, r"input does not appear in the backward graph", "unused_input"),
    (AssertionError, r"Tensor shape not match, Tensor of grad_tensor", "grad_shape_mismatch"),
    (AssertionError, r"The length of grad_outputs must be equal to outputs", "grad_count_mismatch"),
    (AssertionError, r"The length of grad_tensors must be equal to tensors", "grad_count_mismatch"),
    (RuntimeError, r"modified by an inplace operation", "inplace_modified"),
    (ValueError, r"Leaf (Var|Tensor) .* that doesn't stop gradient can't use inplace strategy", "leaf_inplace"),
    # a PyLayer's backward returning fewer gradients than the forward has inputs, or more
    (ValueError, r"backward function should not return empty at \d+ position", "custom_grad_count"),
    (ValueError, r"The number of outputs of `PyLayer.backward` should be \d+, but received \d+", "custom_grad_count"),
    (RuntimeError, r"Cannot register hook on a tensor that stop gradient", "not_requires_grad"),
]


def _reduce(name: str):
    """paddle.NAME(x, axis, keepdim): a reduction over everything, or along dim."""
    return lambda a, dim=None, keepdim=False: getattr(paddle, name)(a, axis=dim, keepdim=keepdim)


def _split(a, split_size, dim=0):
    """torch's split takes the size of each piece (the last may be smaller); paddle.split the sizes of all."""
    length = a.shape[dim]
    sizes = [split_size] * (length // split_size) + ([length % split_size] if length % split_size else [])
    return paddle.split(a, sizes, axis=dim)


def _chunk(a, chunks, dim=0):
    """torch's chunk: pieces of ceil(n / chunks) elements (fewer pieces where that covers n); paddle.chunk needs
    n divisible by chunks, so it is the same split by sizes."""
    return _split(a, -(-a.shape[dim] // chunks), dim)


def _select(a, dim, index):
    """Paddle has no select: it is indexing at position dim (a view, as a[i] is)."""
    return a[(slice(None),) * (dim % a.ndim) + (index,)]


def _unary(name: str):
    return lambda a: getattr(paddle, name)(a)


def _std(a, dim=None, correction=1, keepdim=False):
    """paddle.std has `unbiased`, not `correction`: only 0 and 1 have a Paddle spelling."""
    if correction not in (0, 1):
        raise Unsupported(f"paddle.std has no correction={correction} (unbiased is 0 or 1)")
    return paddle.std(a, axis=dim, unbiased=bool(correction), keepdim=keepdim)


def _norm(a, p=2, dim=None, keepdim=False):
    return paddle.linalg.vector_norm(a, p=float("inf") if p == "inf" else p, axis=dim, keepdim=keepdim)


# Every op of spec/ops.yaml that Paddle has, in Paddle's spelling.
OPS: dict[str, Any] = {
    **OPERATOR_OPS,
    **{name: _reduce(name) for name in ("sum", "mean", "max", "min", "amax", "amin", "prod", "argmax", "argmin",
                                        "logsumexp")},
    **{name: _unary(name) for name in (
        "exp", "log", "sin", "cos", "tanh", "sigmoid", "abs", "sqrt", "expm1", "log1p", "log2", "log10", "tan",
        "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "rsqrt", "reciprocal", "square",
        "sign", "floor", "ceil", "round", "trunc", "clone", "flatten")},
    "relu": lambda a: paddle.nn.functional.relu(a),
    "detach": call_method("detach"),
    # Tensor.t() hands a 0-d or 1-d tensor back as itself (the leaf, not a view of it); the identity permutation
    # gives a new tensor over the same buffer, as the vocabulary's transpose (a view) is
    "transpose": lambda a: a.t() if a.ndim == 2 else paddle.transpose(a, perm=list(range(a.ndim))),
    "reshape": lambda a, shape: paddle.reshape(a, list(shape)),
    "view": lambda a, shape: a.view(list(shape)),
    "getitem": lambda a, index: a[index],
    "select": _select,
    "narrow": lambda a, dim, start, length: paddle.narrow(a, dim, start, length),
    "unsqueeze": lambda a, dim: paddle.unsqueeze(a, axis=dim),
    "squeeze": lambda a, dim=None: paddle.squeeze(a, axis=dim),
    "expand": lambda a, shape: paddle.expand(a, list(shape)),
    "broadcast_to": lambda a, shape: paddle.broadcast_to(a, list(shape)),
    "permute": lambda a, dims: paddle.transpose(a, perm=list(dims)),
    "diagonal": lambda a, offset=0, dim1=0, dim2=1: paddle.diagonal(a, offset=offset, axis1=dim1, axis2=dim2),
    "unbind": lambda a, dim=0: paddle.unbind(a, axis=dim),
    "split": _split,
    "chunk": _chunk,
    "flip": lambda a, dims: paddle.flip(a, axis=list(dims)),
    "roll": lambda a, shifts, dims: paddle.roll(a, shifts, axis=dims),
    "repeat": lambda a, repeats: paddle.tile(a, list(repeats)),  # torch's repeat is NumPy's tile
    "tile": lambda a, reps: paddle.tile(a, list(reps)),
    "gather": lambda a, index, dim=0: paddle.take_along_axis(a, index, axis=dim, broadcast=False),
    "scatter": lambda a, index, src, dim=0: paddle.put_along_axis(a, index, src, axis=dim, reduce="assign",
                                                                   broadcast=False),
    "scatter_add": lambda a, index, src, dim=0: paddle.put_along_axis(a, index, src, axis=dim, reduce="add",
                                                                       broadcast=False),
    "index_select": lambda a, index, dim=0: paddle.index_select(a, index, axis=dim),
    "index_add": lambda a, index, src, dim=0: paddle.index_add(a, index, dim, src),
    "take": lambda a, index: paddle.take(a, index),
    "clamp": lambda a, min=None, max=None: paddle.clip(a, min=min, max=max),
    "maximum": lambda a, b: paddle.maximum(a, b),
    "minimum": lambda a, b: paddle.minimum(a, b),
    "atan2": lambda a, b: paddle.atan2(a, b),
    "hypot": lambda a, b: paddle.hypot(a, b),
    "remainder": lambda a, b: paddle.remainder(a, b),
    "copysign": lambda a, b: paddle.copysign(a, b),
    "lerp": lambda a, b, weight: paddle.lerp(a, b, weight),
    "var": lambda a, dim=None, correction=1, keepdim=False: paddle.var(a, axis=dim, correction=correction,
                                                                         keepdim=keepdim),
    "std": _std,
    "softmax": lambda a, dim: paddle.nn.functional.softmax(a, axis=dim),
    "log_softmax": lambda a, dim: paddle.nn.functional.log_softmax(a, axis=dim),
    "cumsum": lambda a, dim: paddle.cumsum(a, axis=dim),
    "cumprod": lambda a, dim: paddle.cumprod(a, dim=dim),
    "norm": _norm,
    "where": lambda condition, a, b: paddle.where(condition.astype("bool"), a, b),
    "masked_fill": lambda a, mask, value: paddle.masked_fill(a, mask.astype("bool"), value),
    "gt": operator.gt, "lt": operator.lt, "ge": operator.ge, "le": operator.le, "eq": operator.eq,
    "ne": operator.ne,
    "outer": lambda a, b: paddle.outer(a, b), "dot": lambda a, b: paddle.dot(a, b),
    "trace": lambda a: paddle.trace(a),
    "diag": lambda a, diagonal=0: paddle.diag(a, offset=diagonal),
    "triu": lambda a, diagonal=0: paddle.triu(a, diagonal=diagonal),
    "tril": lambda a, diagonal=0: paddle.tril(a, diagonal=diagonal),
    "cat": lambda *tensors, dim=0: paddle.concat(list(tensors), axis=dim),
    "stack": lambda *tensors, dim=0: paddle.stack(list(tensors), axis=dim),
    "inv": lambda a: paddle.linalg.inv(a), "det": lambda a: paddle.linalg.det(a),
    "solve": lambda a, b: paddle.linalg.solve(a, b),
    "softplus": lambda a: paddle.nn.functional.softplus(a),
    "silu": lambda a: paddle.nn.functional.silu(a),
    "gelu": lambda a, approximate="none": paddle.nn.functional.gelu(a, approximate=approximate == "tanh"),
    "leaky_relu": lambda a, negative_slope=0.01: paddle.nn.functional.leaky_relu(a, negative_slope),
    "elu": lambda a, alpha=1.0: paddle.nn.functional.elu(a, alpha),
}
INPLACE = {"add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_"}


class PyLayerRerunRefused(CrashAvoided):
    """Paddle 3.3 kills the process (SIGSEGV in GradNodePyLayer) when a pass reaches a PyLayer node that a backward
    pass has run before, even over a retained graph; the adapter refuses such a pass instead, so that an in-process
    run (the fuzzer's) survives it."""


def _pylayer_nodes(outputs) -> dict[int, Any]:
    """The PyLayer nodes of the graphs of `outputs` (a tensor, or a list or tuple of them), by node_ptr."""
    stack = [t.grad_fn for t in (outputs if isinstance(outputs, (list, tuple)) else [outputs]) if t.grad_fn is not None]
    seen: set[int] = set()
    found: dict[int, Any] = {}
    while stack:
        node = stack.pop()
        if node.node_ptr() in seen:
            continue
        seen.add(node.node_ptr())
        if node.name().startswith("GradNodePyLayer"):
            found[node.node_ptr()] = node
        stack.extend(n for n in node.next_functions if n is not None)
    return found


class PaddleAdapter(TorchLikeAdapter):
    name = "paddle"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    capabilities = frozenset({
        "backward", "grad", "create_graph", "graph_lifetime", "allow_unused", "retain_grad", "tensor_hooks",
        "grad_mode", "detach", "inplace", "version_counters", "view_ops", "index_ops", "setitem", "detach_inplace",
        "requires_grad_toggle", "introspection", "grad_assignment", "requires_grad", "one_element_implicit",
        "integer_tensors", "custom_function", "custom_multiple_outputs", "custom_non_differentiable",
        "custom_materialize_grads", "several_roots", "argument_forms", "saved_tensor_hooks", "threads",
        "reentrant_backward", "retain_grad_in_grad", "grad_mode_forms",
    })
    fuzz_tolerates = {"leaf_has_grad_fn": "leaves/leaves-and-results.yaml",
                      "unrecorded_result_has_grad_fn": "custom/non-differentiable-output-is-a-leaf.yaml",
                      "nonleaf_requires_grad_off_allowed": "leaves/nonleaf-requires-grad-off.yaml",
                      "custom_gradient_for_constant_input_refused": "custom/gradient-for-constant-input-is-dropped.yaml"}
    lacks_ops = {
        "erfc": "Paddle has no erfc (neither paddle.erfc, Tensor.erfc nor paddle.special.erfc)",
        "fmod": "Paddle has no truncated remainder: paddle.mod and paddle.floor_mod are remainder (the divisor's sign)",
        "data": "Paddle's Tensor.data shares its tensor's version counter (as detach does), unlike PyTorch's .data",
    }
    # "The Op X_grad doesn't have any grad op" at the first paddle.grad(create_graph=True) through them (HIGHER-1; the
    # *-second cases are in expectations/paddle.txt); measured by reproductions/paddle/second_derivative_table.py
    once_differentiable_ops = {op: f"Paddle 3.3.1 has no double-grad kernel for {kernel}" for op, kernel in (
        ("pow", "elementwise_pow_grad"), ("dot", "dot_grad"), ("inv", "inverse_grad"), ("det", "det_grad"),
        ("solve", "solve_grad"), ("atan2", "atan2_grad"), ("remainder", "remainder_grad"),
        ("copysign", "copysign_grad"), ("lerp", "lerp_grad"), ("expm1", "expm1_grad"), ("log1p", "log1p_grad"),
        ("log2", "log2_grad"), ("log10", "log10_grad"), ("tan", "tan_grad"), ("asin", "asin_grad"),
        ("atan", "atan_grad"), ("sinh", "sinh_grad"), ("cosh", "cosh_grad"), ("asinh", "asinh_grad"),
        ("acosh", "acosh_grad"), ("atanh", "atanh_grad"), ("gelu", "gelu_grad"), ("erf", "erf_grad"),
        ("reciprocal", "reciprocal_grad"), ("floor", "floor_grad"), ("ceil", "ceil_grad"), ("round", "round_grad"),
        ("trunc", "trunc_grad"), ("max", "max_grad"), ("min", "min_grad"), ("amax", "amax_grad"),
        ("amin", "amin_grad"), ("logsumexp", "logsumexp_grad"), ("softmax", "softmax_grad"),
        ("log_softmax", "log_softmax_grad"), ("cumsum", "cumsum_grad"), ("cumprod", "cumprod_grad"),
        ("prod", "prod_grad"), ("norm", "p_norm_grad"), ("trace", "trace_grad"), ("diag", "diag_grad"),
        ("triu", "triu_grad"), ("tril", "tril_grad"), ("narrow", "as_strided_grad"), ("diagonal", "diagonal_grad"),
        ("flatten", "flatten_grad"), ("roll", "roll_grad"), ("take", "flatten_grad"),
        ("scatter", "put_along_axis_grad (its double grad supports reduce='add' only)"))}
    errors = ERRORS

    def __init__(self, device: str, dtype: str):
        super().__init__(device, dtype)
        load()
        self.made_layers = False  # whether a custom function was made: only then are graphs searched for PyLayers
        # The PyLayer nodes a backward pass has run, by node_ptr; holding them keeps their addresses from reuse.
        self.layers_run: dict[int, Any] = {}

    def refuse_pylayer_rerun(self, outputs) -> dict[int, Any]:
        """The PyLayer nodes a pass from `outputs` would reach; PyLayerRerunRefused where a backward ran one."""
        if not self.made_layers:
            return {}
        nodes = _pylayer_nodes(outputs)
        if nodes.keys() & self.layers_run.keys():
            raise PyLayerRerunRefused("this pass reaches a PyLayer node that a backward pass has run, which kills "
                                      "Paddle 3.3 (SIGSEGV in GradNodePyLayer): refused")
        return nodes

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if PADDLE_SPEC is None:
            return "PaddlePaddle is not installed (pip install gradspec[paddle])"
        return None

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("paddlepaddle")
        except PackageNotFoundError:
            return "not installed"

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Any:
        return paddle.to_tensor(np.array(value, dtype=dtype), dtype=dtype, place="cpu",
                                stop_gradient=not requires_grad)

    def like(self, value: np.ndarray, reference: Any) -> Any:
        return paddle.to_tensor(np.asarray(value), dtype=reference.dtype, place=reference.place)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor.detach().numpy(), copy=True)

    def dtype_name(self, tensor: Any) -> str:
        return str(tensor.dtype).removeprefix("paddle.")

    def op_table(self):
        return OPS

    def apply(self, op: str, args, kwargs) -> Any:
        return OPS[op](*args, **kwargs)

    def apply_inplace(self, op: str, target: Any, operand: Any) -> Any:
        """Paddle's `x += y` makes a new tensor; its in-place ops are the methods, which take a tensor operand."""
        if not isinstance(operand, paddle.Tensor):
            operand = paddle.full([], operand, dtype=target.dtype)
        return getattr(target, INPLACE[op])(operand)

    def grad_function(self):
        return paddle.grad

    def grad_modes(self):
        return paddle

    def backward_function(self):
        return paddle.autograd.backward

    def saved_tensors_hooks_class(self):
        return paddle.autograd.saved_tensors_hooks

    def backward(self, output, gradient, retain_graph, create_graph, inputs) -> None:
        if create_graph:
            raise Unsupported("Paddle's backward has no create_graph")
        if inputs is not None:
            raise Unsupported("Paddle's backward has no inputs")
        kwargs = {} if retain_graph is None else {"retain_graph": retain_graph}
        layers = self.refuse_pylayer_rerun(output)
        if isinstance(output, (list, tuple)):  # paddle.autograd.backward(tensors, grad_tensors, retain_graph)
            paddle.autograd.backward(output, gradient, **kwargs)
        else:
            output.backward(gradient, **kwargs)
        self.layers_run.update(layers)

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
        if materialize_grads is not None:
            raise Unsupported("paddle.grad has no materialize_grads")
        self.refuse_pylayer_rerun(outputs)  # paddle.grad runs a copy of the graph, which a backward may not follow
        return super().grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, None)

    def zero_grad(self, tensor) -> None:
        tensor.clear_grad()  # Paddle's way: it zeroes .grad (set_to_zero defaults to True)

    def retain_grad(self, tensor) -> None:
        tensor.retain_grads()

    def inference_mode(self):
        raise Unsupported("Paddle has no inference_mode")

    def is_inference(self, tensor) -> bool:
        raise Unsupported("Paddle has no inference tensors")

    def register_post_accumulate_grad_hook(self, tensor, hook):
        raise Unsupported("Paddle has no post-accumulate-grad hooks")

    def register_node_prehook(self, tensor, hook):
        raise Unsupported("Paddle's grad_fn has no public hooks")

    def register_node_hook(self, tensor, hook):
        raise Unsupported("Paddle's grad_fn has no public hooks")

    def custom_function(self, program):
        """A paddle.autograd.PyLayer subclass running the case's forward and backward."""
        definition = program.definition
        if definition.dirty:
            raise Unsupported("PyLayer has no mark_dirty")
        if definition.once_differentiable:
            raise Unsupported("Paddle has no once_differentiable")
        forward = custom_forward(program)  # mark_dirty is never reached: refused above

        def backward(ctx, *grads):
            for _ in range(definition.reads_saved - 1):  # every read unpacks (SAVED-2)
                ctx.saved_tensor()
            returned = program.backward(ctx.saved_tensor(), grads)
            return returned[0] if len(returned) == 1 else returned

        layer = type(definition.name, (paddle.autograd.PyLayer,),
                     {"forward": staticmethod(forward), "backward": staticmethod(backward)})
        self.made_layers = True
        return layer.apply
