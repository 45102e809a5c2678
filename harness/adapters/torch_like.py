"""A base for adapters of engines with PyTorch's tensor API (torch itself, gradspec's reference engine, ...).

Operations are the tensor's operators and methods, autograd calls are `backward`,
`grad`, `.grad`, `retain_grad`, `register_hook` and so on. A subclass says how to make
tensors and read them back, which function is `grad`, how to enter a grad mode, and
maps its exceptions to error kinds with a table of (type, message pattern, kind).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import cache
from typing import Any

from gradspec.adapter import OPERATOR_OPS, Adapter


def _reduce(method: str, values: bool = False):
    """A reduction over everything, or along dim; `values` for max and min, which return (values, indices) there."""
    def reduce(a, dim=None, keepdim=False):
        if dim is None:
            return getattr(a, method)()
        result = getattr(a, method)(dim, keepdim=keepdim)
        return result.values if values else result
    return reduce


def call_method(name: str):
    """The op that calls the array's method `name` with no arguments."""
    return lambda a: getattr(a, name)()


def custom_forward(program):
    """The forward of a case's function for a PyTorch-style ctx (autograd.Function, Paddle's PyLayer): the values to
    save, and the ctx options the case sets (mark_non_differentiable, mark_dirty, set_materialize_grads)."""
    definition = program.definition

    def forward(ctx, *inputs):
        outputs, saved = program.forward(*inputs)
        ctx.save_for_backward(*saved)
        by_name = dict(zip(definition.outputs, outputs, strict=True)) | dict(zip(definition.inputs, inputs,
                                                                                 strict=True))
        if definition.non_differentiable:
            ctx.mark_non_differentiable(*(by_name[name] for name in definition.non_differentiable))
        if definition.dirty:
            ctx.mark_dirty(*(by_name[name] for name in definition.dirty))
        if not definition.materialize_grads:
            ctx.set_materialize_grads(False)
        return outputs[0] if len(outputs) == 1 else outputs
    return forward


# Every op of spec/ops.yaml, spelled with PyTorch's tensor API.
OPS = {
    **OPERATOR_OPS,
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "max": _reduce("max", values=True),
    "min": _reduce("min", values=True),
    "argmax": _reduce("argmax"),
    "argmin": _reduce("argmin"),
    "transpose": call_method("t"),
    "reshape": lambda a, shape: a.reshape(tuple(shape)),
    **{name: call_method(name) for name in ("exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "sqrt",
                                        "clone", "detach")},
}
OPS.update({
    "getitem": lambda a, index: a[index],
    "select": lambda a, dim, index: a.select(dim, index),
    "narrow": lambda a, dim, start, length: a.narrow(dim, start, length),
    "unsqueeze": lambda a, dim: a.unsqueeze(dim),
    "squeeze": lambda a, dim=None: a.squeeze() if dim is None else a.squeeze(dim),
    "expand": lambda a, shape: a.expand(tuple(shape)),  # a tuple: expand(*()) is refused, expand(()) is not
    "view": lambda a, shape: a.view(tuple(shape)),
    "permute": lambda a, dims: a.permute(tuple(dims)),
    "diagonal": lambda a, offset=0, dim1=0, dim2=1: a.diagonal(offset, dim1, dim2),
    "unbind": lambda a, dim=0: a.unbind(dim),
    "split": lambda a, split_size, dim=0: a.split(split_size, dim),
    "chunk": lambda a, chunks, dim=0: a.chunk(chunks, dim),
    "gather": lambda a, index, dim=0: a.gather(dim, index),
    "index_select": lambda a, index, dim=0: a.index_select(dim, index),
    "scatter": lambda a, index, src, dim=0: a.scatter(dim, index, src),
    "scatter_add": lambda a, index, src, dim=0: a.scatter_add(dim, index, src),
    "index_add": lambda a, index, src, dim=0: a.index_add(dim, index, src),
    "data": lambda a: a.data,
})
OPS.update({name: call_method(name) for name in (
    "expm1", "log1p", "log2", "log10", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
    "erf", "erfc", "rsqrt", "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc")})
OPS["clamp"] = lambda a, min=None, max=None: a.clamp(min=min, max=max)
OPS.update({name: (lambda a, b, _name=name: getattr(a, _name)(b))
            for name in ("maximum", "minimum", "atan2", "hypot", "fmod", "remainder", "copysign")})
OPS["lerp"] = lambda a, b, weight: a.lerp(b, weight)
OPS.update({name: (lambda a, dim=None, keepdim=False, _name=name:
                   getattr(a, _name)(**({} if dim is None else {"dim": dim}), keepdim=keepdim))
            for name in ("amax", "amin")})
OPS.update({
    "flatten": lambda a: a.flatten(), "broadcast_to": lambda a, shape: a.broadcast_to(tuple(shape)),
    "flip": lambda a, dims: a.flip(tuple(dims)), "roll": lambda a, shifts, dims: a.roll(shifts, dims),
    "repeat": lambda a, repeats: a.repeat(*repeats), "tile": lambda a, reps: a.tile(tuple(reps)),
})
OPS.update({name: (lambda a, dim=None, correction=1, keepdim=False, _name=name:
                   getattr(a, _name)(dim, correction=correction, keepdim=keepdim)) for name in ("var", "std")})
OPS["logsumexp"] = lambda a, dim, keepdim=False: a.logsumexp(dim, keepdim=keepdim)
OPS.update({name: (lambda a, dim, _name=name: getattr(a, _name)(dim)) for name in ("softmax", "log_softmax", "cumsum")})
OPS["where"] = lambda condition, a, b: a.where(condition.bool(), b)
OPS.update({"gt": operator.gt, "lt": operator.lt, "ge": operator.ge, "le": operator.le,
            "eq": lambda a, b: a.eq(b), "ne": lambda a, b: a.ne(b)})
OPS.update({
    "prod": _reduce("prod"), "cumprod": lambda a, dim: a.cumprod(dim),
    "norm": lambda a, p=2, dim=None, keepdim=False: a.norm(float("inf") if p == "inf" else p, dim, keepdim),
    "masked_fill": lambda a, mask, value: a.masked_fill(mask.bool(), value),
    "take": lambda a, index: a.take(index),
    "outer": lambda a, b: a.outer(b), "dot": lambda a, b: a.dot(b), "trace": call_method("trace"),
    **{name: (lambda a, diagonal=0, _name=name: getattr(a, _name)(diagonal)) for name in ("diag", "triu", "tril")},
})


@cache
def namespace_ops(namespace: Any) -> dict[str, Any]:
    """The ops PyTorch has as functions of its namespace rather than tensor methods (cat, stack, torch.linalg)."""
    return {
        "cat": lambda *tensors, dim=0: namespace.cat(tensors, dim=dim),
        "stack": lambda *tensors, dim=0: namespace.stack(tensors, dim=dim),
        "inv": namespace.linalg.inv, "det": namespace.linalg.det, "solve": namespace.linalg.solve,
    }


NAMESPACE_OPS = ("cat", "stack", "inv", "det", "solve")
# The ops PyTorch keeps in torch.nn.functional (an engine's `functional()` namespace), same signatures.
FUNCTIONAL_OPS = ("softplus", "silu", "gelu", "leaky_relu", "elu")
INPLACE = {"add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_"}


class TorchLikeAdapter(Adapter):
    """Everything but tensor creation, reading values, grad modes and the error tables."""

    def grad_function(self):
        """The engine's autograd.grad."""
        raise NotImplementedError

    def grad_modes(self):
        """The namespace holding the engine's no_grad, enable_grad and set_grad_enabled (torch, for PyTorch)."""
        raise NotImplementedError

    def namespace(self):
        """The namespace holding cat, stack and linalg (torch, for PyTorch); by default the grad modes' one."""
        return self.grad_modes()

    def autograd_function(self) -> tuple[type, Any]:
        """The engine's autograd.Function base class and its once_differentiable decorator."""
        raise NotImplementedError

    def custom_function(self, program):
        """An autograd.Function subclass running the case's forward and backward (ctx options as the case sets)."""
        base, once_differentiable = self.autograd_function()
        definition = program.definition
        forward = custom_forward(program)

        def backward(ctx, *grads):
            for _ in range(definition.reads_saved - 1):  # every read unpacks (SAVED-2)
                ctx.saved_tensors  # noqa: B018 - read for its effect
            returned = program.backward(ctx.saved_tensors, grads)
            return returned[0] if len(returned) == 1 else returned

        if definition.once_differentiable:
            backward = once_differentiable(backward)
        function = type(definition.name, (base,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})
        return function.apply

    def grad_enabled(self) -> bool:
        return self.grad_modes().is_grad_enabled()

    def functional(self):
        """The namespace holding softplus, silu, gelu, leaky_relu and elu (torch.nn.functional, for PyTorch)."""
        raise NotImplementedError

    def no_grad(self):
        return self.grad_modes().no_grad()

    def enable_grad(self):
        return self.grad_modes().enable_grad()

    def set_grad_enabled(self, mode: bool):
        return self.grad_modes().set_grad_enabled(mode)

    def inference_mode(self):
        return self.grad_modes().inference_mode()

    def apply(self, op: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        if op in FUNCTIONAL_OPS:
            return getattr(self.functional(), op)(*args, **kwargs)
        if op in NAMESPACE_OPS:
            return namespace_ops(self.namespace())[op](*args, **kwargs)
        return OPS[op](*args, **kwargs)

    def apply_inplace(self, op: str, target: Any, operand: Any) -> Any:
        return getattr(target, INPLACE[op])(operand)

    def setitem(self, target, index, value) -> None:
        target[index] = value

    def detach_(self, tensor) -> None:
        tensor.detach_()

    def backward(self, output, gradient, retain_graph, create_graph, inputs) -> None:
        if isinstance(output, (list, tuple)):  # autograd.backward: several outputs (or one in a list) in one pass
            self.backward_function()(output, **_given(grad_tensors=gradient, retain_graph=retain_graph,
                                                      create_graph=create_graph, inputs=inputs))
            return
        output.backward(**_given(gradient=gradient, retain_graph=retain_graph, create_graph=create_graph,
                                 inputs=inputs))

    def backward_function(self):
        """The engine's autograd.backward(tensors, grad_tensors, ...), for several outputs at once."""
        return self.grad_modes().autograd.backward

    def grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
        kwargs = _given(grad_outputs=grad_outputs, retain_graph=retain_graph, create_graph=create_graph,
                        allow_unused=allow_unused, materialize_grads=materialize_grads)
        return self.grad_function()(outputs, inputs, **kwargs)  # each as the case writes it: tensor, list or tuple

    def register_node_prehook(self, tensor, hook):
        return tensor.grad_fn.register_prehook(hook)

    def saved_tensor_hooks(self, pack, unpack):
        return self.saved_tensors_hooks_class()(pack, unpack)

    def saved_tensors_hooks_class(self):
        """The engine's saved_tensors_hooks context manager (torch.autograd.graph's, for PyTorch)."""
        return self.grad_modes().autograd.graph.saved_tensors_hooks

    def register_node_hook(self, tensor, hook):
        return tensor.grad_fn.register_hook(hook)

    def read_grad(self, tensor):
        return tensor.grad

    def set_grad(self, tensor, value) -> None:
        tensor.grad = value

    def zero_grad(self, tensor) -> None:
        tensor.grad.zero_()

    def retain_grad(self, tensor) -> None:
        tensor.retain_grad()

    def set_requires_grad(self, tensor, flag: bool | None) -> None:
        if flag is None:
            tensor.requires_grad_()  # the engine's own default (LEAF-5)
        else:
            tensor.requires_grad_(flag)

    def requires_grad(self, tensor) -> bool:
        return tensor.requires_grad

    def is_leaf(self, tensor) -> bool:
        return tensor.is_leaf

    def has_grad_fn(self, tensor) -> bool:
        return tensor.grad_fn is not None

    def is_inference(self, tensor) -> bool:
        return tensor.is_inference()

    def register_hook(self, tensor, hook):
        return tensor.register_hook(hook)

    def register_post_accumulate_grad_hook(self, tensor, hook):
        return tensor.register_post_accumulate_grad_hook(hook)

    def remove_hook(self, handle) -> None:
        handle.remove()


def _given(**kwargs: Any) -> dict[str, Any]:
    """Only the arguments the case gave, so that the engine's own defaults are what is tested."""
    return {key: value for key, value in kwargs.items() if value is not None}
