"""The mygrad adapter: `Tensor.backward(grad)` into `.grad`, in float64 and float32, on NumPy's API.

mygrad is imperative and NumPy-based: its functions have NumPy's names, so the op table is
`gradspec.numpy_style` over the `mygrad` namespace, with only mygrad's differences written
here. What maps: `backward` filling `.grad` (a NumPy array) of every tensor of the graph,
non-leaves included; in-place arithmetic and assignment into subscripts, with views of
basic indexing that share their base's values (since mygrad 2.0); tensors that are
`constant` (requires_grad false) or not, and the operation that made one (`creator`);
custom operations (an `Operation` subclass run by `mygrad.execute_op`).

What does not: a functional `grad`, create_graph, retain_graph (each backward frees the
graph), hooks, version counters, `requires_grad_`, assigning `.grad`, and grad modes
beyond `no_autodiff` (no enable_grad, no set_grad_enabled). mygrad has no detach: a tensor
is cut from the graph by making a constant one of its values (`Tensor(x, constant=True)`).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from gradspec.absent import Absent, Unsupported
from gradspec.adapter import Adapter
from gradspec.numpy_style import numpy_style

try:
    import mygrad
    from mygrad.nnet import activations
    from mygrad.operation_base import Operation
except ImportError:  # pragma: no cover - exercised only where mygrad is absent
    mygrad = None

INPLACE = {"add": operator.iadd, "sub": operator.isub, "mul": operator.imul, "div": operator.itruediv}


def _ops() -> dict:
    """NumPy's spelling over `mygrad`, with mygrad's own activations, and its argmax and argmin, which have no
    keepdims; clone is unary plus (a new tensor in the graph), since mygrad has no copy function."""
    def arg(function):
        def reduce(a, dim=None, keepdim=False):
            out = function(a, axis=dim)
            return np.expand_dims(out, dim) if keepdim and dim is not None else out
        return reduce
    return numpy_style(
        mygrad, clone=mygrad.positive, argmax=arg(mygrad.argmax), argmin=arg(mygrad.argmin),
        relu=activations.relu, sigmoid=activations.sigmoid, softmax=lambda a, dim: activations.softmax(a, axis=dim),
        log_softmax=lambda a, dim: activations.logsoftmax(a, axis=dim),
        leaky_relu=lambda a, negative_slope=0.01: activations.leaky_relu(a, negative_slope),
        elu=lambda a, alpha=1.0: activations.elu(a, alpha),
        detach=lambda a: mygrad.Tensor(a, constant=True))


class MygradAdapter(Absent, Adapter):
    name = "mygrad"
    devices = ("cpu",)
    dtypes = ("float64", "float32")
    capabilities = frozenset({"backward", "detach", "inplace", "setitem", "views", "view_ops", "index_ops",
                              "introspection", "integer_tensors", "one_element_implicit", "custom_function"})
    # mygrad applies the NumPy ufuncs it does not implement to constant tensors only (ValueError "<ufunc 'floor'>
    # cannot involve non-constant mygrad tensors"): these ops have no derivative there
    fuzz_tolerates = {"results_become_leaves": "leaves/results-stay-results-after-a-pass.yaml"}
    lacks_ops = dict.fromkeys(("fmod", "remainder", "sign", "floor", "ceil", "trunc"),
                              "NumPy's ufunc on constants only: a tensor that requires grad raises ValueError, so "
                              "there is no derivative")
    ops = _ops() if mygrad is not None else {}
    # mygrad sums a gradient back over broadcast dims, and refuses one with fewer dims than its variable
    errors = ((ValueError, r"dimensionality of the gradient of the broadcasted operation .* is less than",
               "custom_grad_shape"),)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if mygrad is not None else "mygrad is not installed (pip install gradspec[mygrad])"

    @classmethod
    def version(cls) -> str:
        return mygrad.__version__ if mygrad is not None else "not installed"

    def op_table(self) -> dict:
        return self.ops

    def tensor(self, value: np.ndarray, requires_grad: bool, dtype: str) -> Any:
        return mygrad.tensor(np.asarray(value, dtype=dtype), constant=not requires_grad)

    def like(self, value: np.ndarray, reference: Any) -> Any:
        return mygrad.tensor(np.asarray(value, dtype=self.dtype_name(reference)), constant=True)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return np.array(tensor, copy=True)  # a Tensor, or the NumPy array of a .grad, argmax or comparison

    def dtype_name(self, tensor: Any) -> str:
        return np.dtype(tensor.dtype).name

    def apply(self, op: str, args, kwargs) -> Any:
        return self.ops[op](*args, **kwargs)

    def apply_inplace(self, op: str, target: Any, operand: Any) -> Any:
        return INPLACE[op](target, operand)

    def setitem(self, target, index, value) -> None:
        target[tuple(np.asarray(i) if isinstance(i, list) else i for i in index)] = value

    def backward(self, output, gradient, retain_graph, create_graph, inputs) -> None:
        if retain_graph or create_graph or inputs is not None or isinstance(output, (list, tuple)):
            raise Unsupported("mygrad's backward takes one tensor and a gradient, nothing more")
        output.backward(gradient)

    def custom_function(self, program):
        """An `Operation` subclass run by `mygrad.execute_op`: its forward runs the case's steps on constants (mygrad
        wants a NumPy array), its `backward_var` the case's backward once per pass, for every input at once."""
        class Custom(Operation):
            def __call__(self, *inputs):
                self.variables = inputs
                outputs, self.saved = program.forward(*(mygrad.Tensor(x, constant=True) for x in inputs))
                return np.asarray(outputs[0])

            def backward_var(self, grad, index, **kwargs):
                if index == min(i for i, x in enumerate(self.variables) if not x.constant):  # the pass's first call
                    self.grads = program.backward(self.saved, (mygrad.Tensor(grad, constant=True),))
                given = self.grads[index]
                # a copy: a Tensor's array is read-only, and mygrad accumulates into what backward_var returns
                return np.zeros_like(self.variables[index].data) if given is None else np.array(given, copy=True)
        return lambda *inputs: mygrad.execute_op(Custom, *inputs)

    def read_grad(self, tensor) -> Any:
        return tensor.grad

    def clear_grad(self, tensor) -> None:
        tensor.null_grad()  # .grad has no setter; backward replaces it anyway

    # argmax, argmin and comparisons give NumPy arrays, outside any graph: read as leaves that do not require grad
    def requires_grad(self, tensor) -> bool:
        return isinstance(tensor, mygrad.Tensor) and not tensor.constant

    def is_leaf(self, tensor) -> bool:
        return getattr(tensor, "creator", None) is None

    def has_grad_fn(self, tensor) -> bool:
        return getattr(tensor, "creator", None) is not None
