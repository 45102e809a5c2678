"""GRAD-9, ACC-5, RETAIN-6, GRAD-2: which tensors a backward writes .grad for, and when reading one warns."""

from __future__ import annotations

import warnings

from gradspec.spec.evidence import experiment


@experiment("GRAD-9", claim="backward(inputs=[x]) fills a retained non-leaf only if it lies on a path to a listed input")
def retained_nonleaf_off_the_listed_path():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)
    on_path = x * 2
    off_path = w * 2
    on_path.retain_grad()
    off_path.retain_grad()
    (on_path * off_path).sum().backward(inputs=[x])
    return [("retained non-leaf on the path to x", on_path.grad.tolist(), [6.0, 10.0]),
            ("retained non-leaf leading only to w (unlisted)", off_path.grad, None),
            ("w.grad", w.grad, None)]


@experiment("ACC-5", claim="a tensor that does not require grad keeps a .grad the user assigned, unchanged by backward")
def assigned_grad_on_a_constant():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([3.0, 5.0], dtype=torch.float64)
    c.grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
    (x * c).sum().backward()
    return [("c.grad after backward", c.grad.tolist(), [0.5, 0.25]), ("x.grad", x.grad.tolist(), [3.0, 5.0])]


@experiment("RETAIN-6", claim="reading .grad of a non-leaf that does not retain it warns, unless a .grad was assigned")
def nonleaf_grad_warning():
    import torch
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = x * 2
    with warnings.catch_warnings(record=True) as unassigned:
        warnings.simplefilter("always")
        _ = y.grad
    z = x * 3
    z.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    with warnings.catch_warnings(record=True) as assigned:
        warnings.simplefilter("always")
        value = z.grad
    return [("warns on an unset non-leaf .grad", len(unassigned) > 0, True),
            ("warns on an assigned non-leaf .grad", len(assigned) > 0, False),
            ("the assigned value is returned", value.tolist(), [1.0, 1.0])]


@experiment("GRAD-2", claim="grad of several inputs is one traversal: a shared tensor's hook fires once")
def several_inputs_one_pass():
    import torch
    a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([3.0, 5.0], dtype=torch.float64, requires_grad=True)
    shared = a * b
    calls = []
    shared.register_hook(lambda grad: calls.append(grad.tolist()))
    ga, gb = torch.autograd.grad((shared * shared).sum(), (a, b))
    return [("hook calls on the shared tensor", len(calls), 1), ("d/da", ga.tolist(), [18.0, 100.0]),
            ("d/db", gb.tolist(), [6.0, 40.0])]
