"""LEAF-7: requires_grad_(False) on a leaf that a recorded graph already uses (found by the sequence fuzzer)."""

from __future__ import annotations

from gradspec.spec.evidence import experiment, f64


def _outcome(run):
    try:
        return run()
    except RuntimeError as error:
        return "raises: " + str(error).splitlines()[0][:60]


@experiment("LEAF-7", claim="PyTorch reads a leaf's requires_grad when a pass reaches it: after requires_grad_(False), "
                            "a graph recorded before accumulates nothing into its .grad, though its hooks still run, "
                            "and grad with respect to it raises not_requires_grad; turned back on, it accumulates")
def requires_grad_off_after_recording():
    import torch
    x, w = f64([1.0, 2.0], True), f64([3.0, 4.0], True)
    calls, after = [], []
    x.register_hook(lambda g: calls.append(g.tolist()))
    x.register_post_accumulate_grad_hook(lambda t: after.append(t.grad))
    y = (x * w).sum()
    x.requires_grad_(False)
    y.backward(retain_graph=True)
    observations = [(".grad of the leaf turned off", x.grad, None), (".grad of another leaf of the pass", w.grad.tolist(),
                                                                     [1.0, 2.0]),
                    ("its tensor hook still called, with", list(calls), [[3.0, 4.0]]),
                    ("its post-accumulate hook still called, seeing .grad", list(after), [None]),
                    ("grad with respect to it", _outcome(lambda: torch.autograd.grad(y, x, retain_graph=True)),
                     "raises: One of the differentiated Tensors does not require grad")]
    x.requires_grad_(True)
    y.backward()
    observations.append(("turned on again, the same graph accumulates", x.grad.tolist(), [3.0, 4.0]))
    return observations
