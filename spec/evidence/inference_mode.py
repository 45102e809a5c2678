"""MODE-9 to MODE-13: inference_mode, the tensors it makes (inference tensors) and what may be done with them.

Each experiment tries to break one rule at its edges: operands that require grad, grad modes nested inside the
mode, views and `detach` made inside of tensors made outside and the other way round, in-place operations inside
and outside, and an inference tensor used outside by a recorded operation that saves it and by one that does not.
"""

from __future__ import annotations

from gradspec.spec.evidence import experiment


def _error(run) -> str | None:
    """The message of the RuntimeError run() raises, None if it completes."""
    try:
        run()
    except RuntimeError as exc:
        return str(exc)
    return None


def _says(run, words: str) -> bool:
    message = _error(run)
    return message is not None and words in message


SAVED = "Inference tensors cannot be saved for backward"  # inference_tensor_saved
INPLACE = "Inplace update to inference tensor outside InferenceMode"  # inference_tensor_inplace
VIEW = "A view was created in inference mode and is being modified inplace"  # no_grad_view_inplace (MODE-13)


def _leaves():
    import torch
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([4.0, 5.0, 6.0], dtype=torch.float64)
    return torch, x, c


@experiment("MODE-9", claim="results made under inference_mode are inference tensors that do not require grad, have "
                            "no grad_fn and are leaves, even from operands that require grad")
def results_are_unrecorded_inference_tensors():
    torch, x, c = _leaves()
    with torch.inference_mode():
        a = x * 2
        b = c * 2
        e = torch.exp(x)
        cl = c.clone()
    return [("x * 2 (x requires grad) is_inference", a.is_inference(), True),
            ("... requires_grad", a.requires_grad, False),
            ("... has a grad_fn", a.grad_fn is not None, False),
            ("... is a leaf", a.is_leaf, True),
            ("c * 2 is_inference", b.is_inference(), True),
            ("exp(x) requires_grad", e.requires_grad, False),
            ("c.clone() is_inference (a copy, not a view)", cl.is_inference(), True),
            ("x made outside stays a non-inference leaf that requires grad",
             (x.is_inference(), x.requires_grad, x.is_leaf), (False, True, True)),
            ("c made outside stays a non-inference tensor", c.is_inference(), False)]


@experiment("MODE-9", claim="enable_grad, set_grad_enabled(True) or no_grad nested inside inference_mode record nothing")
def nested_grad_modes_record_nothing():
    torch, x, c = _leaves()
    with torch.inference_mode():
        with torch.enable_grad():
            f = x * 3
        with torch.set_grad_enabled(True):
            q = x * 4
        with torch.no_grad():
            g = c * 3
        after = x * 5
    return [("x * 3 under enable_grad inside: requires_grad, is_inference", (f.requires_grad, f.is_inference()),
             (False, True)),
            ("... has a grad_fn", f.grad_fn is not None, False),
            ("x * 4 under set_grad_enabled(True) inside", (q.requires_grad, q.is_inference()), (False, True)),
            ("c * 3 under no_grad inside is_inference", g.is_inference(), True),
            ("x * 5 after the nested blocks", (after.requires_grad, after.is_inference()), (False, True))]


@experiment("MODE-9", claim="leaving inference_mode restores the grad mode that held before it")
def leaving_restores_the_mode():
    torch, x, c = _leaves()
    with torch.no_grad():
        with torch.inference_mode():
            pass
        inner_off = torch.is_grad_enabled()
        a = x * 2
    with torch.inference_mode():
        pass
    on = torch.is_grad_enabled()
    b = x * 2
    with torch.enable_grad():
        with torch.inference_mode():
            pass
        d = x * 2
    return [("grad mode after inference_mode inside no_grad", inner_off, False),
            ("x * 2 there requires_grad, is_inference", (a.requires_grad, a.is_inference()), (False, False)),
            ("grad mode after inference_mode at the top", on, True),
            ("x * 2 there requires_grad, is_inference", (b.requires_grad, b.is_inference()), (True, False)),
            ("x * 2 after inference_mode inside enable_grad requires_grad", d.requires_grad, True),
            ("inference mode is off afterwards", torch.is_inference_mode_enabled(), False)]


@experiment("MODE-10", claim="a recorded operation outside that would save an inference tensor raises; one that records "
                             "without saving it runs, and gradients reach the other operands as usual")
def saving_an_inference_tensor_raises():
    torch, x, c = _leaves()
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    with torch.inference_mode():
        b = c * 2
    added = w + b
    (added * 1).sum().backward()
    after_add = w.grad.tolist()
    w.grad = None
    subtracted = (w - b).sum()
    subtracted.backward()
    after_sub = w.grad.tolist()
    w.grad = None
    with torch.no_grad():
        under_no_grad = w * b
    free = b * c
    return [("w * b (saves b for w's gradient) raises", _says(lambda: w * b, SAVED), True),
            ("b * w raises", _says(lambda: b * w, SAVED), True),
            ("w[0:2] * b[0:2] (a view of b, saved) raises", _says(lambda: w[0:2] * b[0:2], SAVED), True),
            ("w @ b raises", _says(lambda: w @ b, SAVED), True),
            ("w + b records (requires grad, has a grad_fn)", (added.requires_grad, added.grad_fn is not None),
             (True, True)),
            ("... and is not an inference tensor", added.is_inference(), False),
            ("backward through w + b fills w.grad", after_add, [1.0, 1.0, 1.0]),
            ("backward through sum(w - b) fills w.grad", after_sub, [1.0, 1.0, 1.0]),
            ("w * b under no_grad runs (nothing recorded)", under_no_grad.requires_grad, False),
            ("b * c (nothing requires grad) runs", free.tolist(), [32.0, 50.0, 72.0]),
            ("exp(b) * w runs (exp(b) is an ordinary tensor: it saves nothing of b)",
             _error(lambda: torch.exp(b) * w), None)]


@experiment("MODE-11", claim="in-place on an inference tensor, or on a view of one, outside inference_mode raises, grad "
                             "mode on or off")
def inplace_outside_raises():
    torch, x, c = _leaves()
    with torch.inference_mode():
        b = c * 2
        inner_view = b[0:2]
    outer_view = b[1:3]

    def under_no_grad(run):
        with torch.no_grad():
            run()

    return [("b.add_(1) outside", _says(lambda: b.add_(1), INPLACE), True),
            ("b.add_(1) under no_grad outside", _says(lambda: under_no_grad(lambda: b.add_(1)), INPLACE), True),
            ("b[0:2] made inside, .mul_(2) outside", _says(lambda: inner_view.mul_(2), INPLACE), True),
            ("b[1:3] made outside, .mul_(2) outside", _says(lambda: outer_view.mul_(2), INPLACE), True),
            ("b[1:3].mul_(2) under no_grad", _says(lambda: under_no_grad(lambda: outer_view.mul_(2)), INPLACE), True)]


@experiment("MODE-13", claim="an in-place operation refused on an inference tensor outside inference_mode has changed its "
                             "values nonetheless")
def refused_inplace_still_writes():
    torch, x, c = _leaves()
    with torch.inference_mode():
        b = c * 2
    refused = _says(lambda: b.add_(1), INPLACE)
    return [("b.add_(1) outside raises", refused, True),
            ("... and b holds b + 1 all the same", b.tolist(), [9.0, 11.0, 13.0])]


@experiment("MODE-11", claim="inside inference_mode in-place is allowed on any tensor, is not recorded, and moves the "
                             "version counter of a tensor made outside so a node that saved it raises")
def inplace_inside_is_allowed_and_unrecorded():
    torch, x, c = _leaves()
    y = x * 2
    s = x * 1
    t = s * s  # saves s
    before = (c._version, y._version)
    with torch.inference_mode():
        b = c * 2
        b.add_(1)
        b[0:2].mul_(10)  # through a view of an inference tensor
        c.add_(1)
        x.add_(1)  # a leaf that requires grad
        y.mul_(10)
        s.add_(1)
    y.sum().backward()
    return [("b after in-place inside", b.tolist(), [90.0, 110.0, 13.0]),
            ("c after in-place inside", c.tolist(), [5.0, 6.0, 7.0]),
            ("c's version moved", c._version > before[0], True),
            ("x: still a leaf that requires grad, not inference", (x.is_leaf, x.requires_grad, x.is_inference()),
             (True, True, False)),
            ("x's values", x.tolist(), [2.0, 3.0, 4.0]),
            ("y keeps its MulBackward grad_fn", type(y.grad_fn).__name__, "MulBackward0"),
            ("y's version moved", y._version > before[1], True),
            ("backward through y gives 2 (the unrecorded mul_ by 10 is not in the graph)", x.grad.tolist(),
             [2.0, 2.0, 2.0]),
            ("t's backward, s modified inside, raises inplace_modified",
             _says(lambda: t.sum().backward(), "modified by an inplace operation"), True)]


@experiment("MODE-12", "MODE-13", claim="a view or detach made inside of a tensor made outside is no inference tensor, "
                                       "shares values and carries no gradient to its base; in-place on it outside "
                                       "follows VIEW-8")
def views_made_inside_of_outside_tensors():
    torch, x, c = _leaves()
    w = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    with torch.inference_mode():
        vx = x[0:2]
        vc = c[0:2]
        vc2 = c[1:3]
        dx = x.detach()
        dc = c.detach()
        vy = x[1:3]
    observed = [("x[0:2] inside is_inference", vx.is_inference(), False),
                ("c[0:2] inside is_inference", vc.is_inference(), False),
                ("x.detach() inside is_inference", dx.is_inference(), False),
                ("c.detach() inside is_inference", dc.is_inference(), False),
                ("x[0:2] inside has no grad_fn", vx.grad_fn, None),
                ("MODE-13: x[0:2] made inside reports requires_grad", vx.requires_grad, True)]
    loss = (vx * w).sum()
    loss.backward()
    c.mul_(2)  # shares values: the views read it
    observed += [("backward through x[0:2] * w: x.grad stays None", x.grad, None),
                 ("... w.grad is x[0:2]'s values", w.grad.tolist(), [1.0, 2.0]),
                 ("c[0:2] reads c's in-place update", vc.tolist(), [8.0, 10.0]),
                 ("c.detach() reads c's in-place update", dc.tolist(), [8.0, 10.0, 12.0]),
                 ("x[0:2] made inside, .add_(1) outside (base requires grad)", _says(lambda: vx.add_(1), VIEW), True),
                 ("c[0:2] made inside, .add_(w) outside (operand requires grad)", _says(lambda: vc.add_(w), VIEW), True),
                 ("c[1:3] made inside, .mul_(2) outside (nothing requires grad) is allowed",
                  _error(lambda: vc2.mul_(2)), None)]
    observed.append(("... and writes c", c.tolist(), [8.0, 20.0, 24.0]))
    with torch.no_grad():
        allowed = _error(lambda: vy.add_(1))
    observed.append(("x[1:3] made inside, .add_(1) under no_grad outside is allowed", allowed, None))
    observed.append(("MODE-13: then reading x[0:2]'s grad_fn (its base changed outside) raises",
                     _says(lambda: vx.grad_fn, "its base or another view of its base has been modified"), True))
    return observed


@experiment("MODE-12", claim="a view or detach of an inference tensor, made inside or outside, is an inference tensor")
def views_of_inference_tensors():
    torch, x, c = _leaves()
    with torch.inference_mode():
        b = c * 2
        inside_view = b[0:2]
        inside_detach = b.detach()
    outside_view = b[1:3]
    outside_detach = b.detach()
    outside_clone = b.clone()
    return [("b[0:2] made inside", inside_view.is_inference(), True),
            ("b.detach() made inside", inside_detach.is_inference(), True),
            ("b[1:3] made outside", outside_view.is_inference(), True),
            ("b.detach() made outside", outside_detach.is_inference(), True),
            ("b.clone() made outside (a copy) is not one", outside_clone.is_inference(), False)]


@experiment("MODE-13", claim="PyTorch's details: is_grad_enabled under nested enable_grad, requires_grad_ on inference "
                             "tensors, backward and grad inside inference_mode")
def pytorch_details():
    torch, x, c = _leaves()
    with torch.inference_mode():
        off = torch.is_grad_enabled()
        with torch.enable_grad():
            on_nested = torch.is_grad_enabled()
        with torch.set_grad_enabled(True):
            on_set = torch.is_grad_enabled()
        b = c * 2
        allowed_inside = _error(lambda: b.requires_grad_()) is None
    with torch.inference_mode():
        b2 = c * 2
    refused_outside = _says(lambda: b2.requires_grad_(), "Setting requires_grad=True on inference tensor outside")
    z = (x * x).sum()
    with torch.inference_mode():
        z.backward(retain_graph=True)
        grad_is_inference, grad_inside = x.grad.is_inference(), x.grad.tolist()
        (g,) = torch.autograd.grad(z, x, retain_graph=True)
    again = _says(lambda: z.backward(), INPLACE)
    return [("is_grad_enabled under inference_mode", off, False),
            ("... under enable_grad nested inside", on_nested, True),
            ("... under set_grad_enabled(True) nested inside", on_set, True),
            ("requires_grad_() on an inference tensor inside", allowed_inside, True),
            ("requires_grad_() on an inference tensor outside refused", refused_outside, True),
            ("backward inside: x.grad values", grad_inside, [2.0, 4.0, 6.0]),
            ("backward inside: x.grad is an inference tensor", grad_is_inference, True),
            ("grad inside returns an inference tensor", g.is_inference(), True),
            ("a later backward outside adding into that .grad raises", again, True)]
