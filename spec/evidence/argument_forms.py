"""GRAD-1, GRAD-2, GRAD-9, VJP-2..VJP-5: how PyTorch's autograd calls accept their tensor arguments. grad's outputs,
inputs and grad_outputs, Tensor.backward's inputs, and autograd.backward's tensors and grad_tensors are each "a
tensor or a sequence of tensors", and a bare tensor stands for one tensor (it is never iterated over its first
dimension); a list and a tuple mean the same. A gradient is a tensor of its output's shape (a 0-d tensor for a 0-d
output only), never a Python number. Two things PyTorch accepts beyond that are not forms of the case language:
Tensor.backward's `gradient` given as a list of one tensor (undocumented), and more output gradients than outputs,
the extras ignored: `torch.autograd.grad(y, x, (g, 5 * g))` and `torch.autograd.backward([y], [g, 5 * g])` use g
alone (torch 2.13.0), where VJP-4's sentence asks for grad_count_mismatch and the reference engine raises it; which
of the two the rule means is for the rule book to decide, so no experiment here asserts either."""

from __future__ import annotations

from gradspec.spec.evidence import experiment, f64


@experiment("GRAD-1", claim="grad's outputs and inputs as a bare tensor, a list or a tuple give the same gradients, "
            "and a bare tensor of several rows is one input")
def grad_outputs_and_inputs_forms():
    import torch
    x, w = f64([[1.0, 2.0], [3.0, 4.0]], True), f64([5.0, 6.0], True)
    y = (x * w).sum()
    forms = {"bare": torch.autograd.grad(y, x, retain_graph=True),
             "list": torch.autograd.grad([y], [x], retain_graph=True),
             "tuple": torch.autograd.grad((y,), (x,), retain_graph=True)}
    several = torch.autograd.grad((y,), (x, w))
    return [("results for a bare 2x2 input", len(forms["bare"]), 1),
            ("bare equals list", bool(torch.equal(forms["bare"][0], forms["list"][0])), True),
            ("tuple equals list", bool(torch.equal(forms["tuple"][0], forms["list"][0])), True),
            ("results for a tuple of two inputs", len(several), 2),
            ("grad returns a tuple", type(several).__name__, "tuple")]


@experiment("VJP-2", claim="grad_outputs as a bare tensor, a list or a tuple give the same product; "
            "a Python number is refused with TypeError")
def grad_outputs_forms():
    import torch
    x = f64([1.0, 2.0], True)
    y = x * 3
    v = f64([1.0, 10.0])
    bare, = torch.autograd.grad(y, x, v, retain_graph=True)
    listed, = torch.autograd.grad(y, x, [v], retain_graph=True)
    tupled, = torch.autograd.grad(y, x, (v,), retain_graph=True)
    s = (x * 3).sum()
    refused = []
    for number in (2.0, [2.0]):
        try:
            torch.autograd.grad(s, x, number, retain_graph=True)
            refused.append(None)
        except TypeError:
            refused.append("TypeError")
    return [("bare", bare.tolist(), [3.0, 30.0]), ("list", listed.tolist(), [3.0, 30.0]),
            ("tuple", tupled.tolist(), [3.0, 30.0]),
            ("grad_outputs=2.0", refused[0], "TypeError"), ("grad_outputs=[2.0]", refused[1], "TypeError")]


@experiment("VJP-3", claim="a 0-d gradient fits a 0-d output only: for a [1]-shaped output it is a shape mismatch, "
            "and so is a [1]-shaped gradient for a 0-d output")
def zero_d_gradient_shapes():
    p = f64([3.0], True)
    s = f64(2.0, True)
    outcomes = []
    for output, gradient in ((p * 3, f64(1.0)), (s * 3, f64([1.0]))):
        try:
            output.backward(gradient)
            outcomes.append("no error")
        except RuntimeError as error:
            outcomes.append("Mismatch in shape" if "Mismatch in shape" in str(error) else str(error))
    zero_d = s * 3
    zero_d.backward(f64(2.0))
    return [("[1] output, 0-d gradient", outcomes[0], "Mismatch in shape"),
            ("0-d output, [1] gradient", outcomes[1], "Mismatch in shape"),
            ("0-d output, 0-d gradient 2: s.grad", s.grad.item(), 6.0)]


@experiment("VJP-2", claim="Tensor.backward refuses a Python number as its gradient, and (undocumented) accepts a "
            "list of one tensor")
def backward_gradient_forms():
    x = f64(2.0, True)
    y = x ** 3
    try:
        y.backward(2.0, retain_graph=True)
        number = "accepted"
    except TypeError:
        number = "TypeError"
    y.backward([f64(2.0)])
    return [("y.backward(2.0)", number, "TypeError"), ("y.backward([g]) accumulates 2 * 3x^2", x.grad.item(), 24.0)]


@experiment("PASS-6", claim="autograd.backward takes tensors and grad_tensors as a bare tensor, a list or a tuple, "
            "a bare gradient standing for one")
def autograd_backward_forms():
    import torch
    a = f64([1.0, 2.0], True)
    y = a * 3
    v = f64([1.0, 10.0])
    observed = []
    for tensors, grads in ((y, v), ([y], v), ([y], [v]), ((y,), (v,))):
        a.grad = None
        torch.autograd.backward(tensors, grads, retain_graph=True)
        observed.append(a.grad.tolist())
    return [(f"form {index}", value, [3.0, 30.0]) for index, value in enumerate(observed)]


@experiment("GRAD-9", claim="Tensor.backward's inputs as a bare tensor or a tuple restrict accumulation alike")
def backward_inputs_forms():
    a, b = f64([1.0, 2.0], True), f64([3.0, 4.0], True)
    y = (a * b).sum()
    y.backward(inputs=a, retain_graph=True)
    bare = (a.grad.tolist(), b.grad)
    a.grad = None
    y.backward(inputs=(b,))
    return [("inputs=a: a.grad", bare[0], [3.0, 4.0]), ("inputs=a: b.grad", bare[1], None),
            ("inputs=(b,): a.grad", a.grad, None), ("inputs=(b,): b.grad", b.grad.tolist(), [1.0, 2.0])]


@experiment("VJP-4", claim="one output gradient too few raises grad_count_mismatch whatever the forms")
def too_few_output_gradients():
    import torch
    x = f64([1.0, 2.0], True)
    y = x * 2
    g = f64([1.0, 1.0])
    outcomes = []
    for outputs, grads in (((y, y * 1), (g,)), ([y, y * 1], g)):
        try:
            torch.autograd.grad(outputs, x, grads, retain_graph=True)
            outcomes.append("no error")
        except RuntimeError as error:
            outcomes.append("count mismatch" if "got 2 tensors and 1 gradients" in str(error) else str(error))
    extra = torch.autograd.grad(y, x, (g, 5 * g), retain_graph=True)[0].tolist()  # VJP-4 leaves this open
    return [("two outputs in a tuple, one gradient in a tuple", outcomes[0], "count mismatch"),
            ("two outputs in a list, one bare gradient", outcomes[1], "count mismatch"),
            ("one output, two gradients: the extra one ignored without an error", extra, [2.0, 2.0])]
