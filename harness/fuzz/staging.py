"""Write a shrunk failing draw as a YAML case file that the ordinary loader reads and that reproduces the failure.

Files go to a staging folder, outside the main corpus (`cases/`), because their expected
values come from judges other than a person: finite differences or the reference engine.
A person derives them by hand before moving a case into cases/.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import yaml
from gradspec.fuzz import definition
from gradspec.fuzz.draws import DrawCrashed
from gradspec.language.expressions import names_used
from gradspec.language.loader import load_case


def write_case(data: dict, folder: Path, stem: str, failure: BaseException | None = None) -> Path:
    """Write the case dict to folder/cases/<stem>-<hash>.yaml, check that it loads, and return the path.

    A draw whose process died or hung (`failure` a draws.DrawCrashed) is titled by what happened: its expected values
    are what the property would have checked, and replaying it on that engine shows the crash."""
    if isinstance(failure, DrawCrashed):
        data = {**data, "title": f"fuzz: {failure.what} in this draw (its expected values are the property's)"}
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    path = Path(folder) / "cases" / f"{stem}-{digest}.yaml"  # a `cases` folder, so pytest collects it
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    load_case(path)  # a written case must load like any other; a failure here is a fuzzer bug
    return path


def with_gradient_expectation(draw, expected: dict, adapter, derivation: str, rules: list[str]) -> dict:
    """The drawn forward steps, then one grad call whose results must equal `expected`.

    Only the leaves the output depends on are differentiated (the others' gradient is None and
    would need allow_unused, which the failing engine may lack), so that the case declares
    nothing beyond what the failing engine has and replays on it.
    """
    case = copy.deepcopy(draw.data)
    leaves = [leaf for leaf in draw.leaves if leaf in _dependencies(draw.case, draw.output)]
    names = [f"grad_{leaf}" for leaf in leaves]
    if "grad" in adapter.capabilities:
        step = {"grad": {"outputs": draw.output, "inputs": list(leaves), "as": names}}
        if draw.grad_output is not None:
            step["grad"]["grad_outputs"] = [plain(draw.grad_output)]
    else:  # an engine without grad: backward into .grad, as the oracle differentiated it
        step = {"derivative": {"of": draw.output, "wrt": list(leaves), "gradient": _output_gradient(draw),
                               "as": names}}
    case.update(
        title=f"fuzz: gradient of a random graph disagrees with finite differences on {adapter.name}",
        rules=rules,
        derivation=derivation,
        capabilities=sorted({"grad" if "grad" in step else "derivatives", *_forward_capabilities(draw)}),
        tolerance={"rtol": 1e-6, "atol": 1e-9, "reason": "expected values are finite-difference estimates"},
    )
    case["steps"] = list(case["steps"]) + [
        step,
        {"expect": {"value": {n: plain(expected[leaf]) for n, leaf in zip(names, leaves, strict=True)}}},
    ]
    return case


def _forward_capabilities(draw) -> set[str]:
    """What the drawn forward steps need (a draw declares grad too, for the engines that have it)."""
    return set(draw.data["capabilities"]) - {"grad"}


def _output_gradient(draw) -> list:
    """The draw's output gradient, or ones of the output's shape where it has one element: always explicit, so that
    a backward needs no implicit gradient of a non-scalar one-element output (VJP-6)."""
    if draw.grad_output is not None:
        return plain(draw.grad_output)
    point = {t.name: t.value.astype(np.float64) for t in draw.case.tensors}
    return plain(np.ones(np.shape(definition.numpy_function(draw.case, draw.output)(point))))


def with_hessian_vector_expectation(draw, u: list, expected: dict, adapter, derivation: str,
                                    gradient: dict | None = None) -> dict:
    """The drawn forward steps, the gradient with create_graph, and the gradient of its product with u.

    Leaves the output does not depend on are left out of both calls: their gradient is None,
    which cannot be multiplied, and their row of the Hessian is zero anyway. An engine without
    grad gets backward steps instead (_hessian_vector_by_backward); `gradient`, the first
    derivatives, is what its .grad holds besides where it cannot clear .grad.
    """
    if "grad" not in adapter.capabilities:
        return _hessian_vector_by_backward(draw, u, expected, adapter, derivation, gradient)
    case = copy.deepcopy(draw.data)
    used = [leaf for leaf in draw.leaves if leaf in _dependencies(draw.case, draw.output)]
    first = {"outputs": draw.output, "inputs": used, "create_graph": True, "as": [f"g_{leaf}" for leaf in used]}
    if draw.grad_output is not None:
        first["grad_outputs"] = [plain(draw.grad_output)]
    directions = dict(zip(draw.leaves, u, strict=True))
    products = " + ".join(f"sum(g_{leaf} * u_{leaf})" for leaf in used)
    # A gradient linear in some leaf does not depend on it: allow_unused, where the failing engine has it.
    unused = {"allow_unused": True} if "allow_unused" in adapter.capabilities else {}
    second = {"outputs": "along_u", "inputs": list(used), **unused, "as": [f"h_{leaf}" for leaf in used]}
    case.update(
        title=f"fuzz: a Hessian-vector product of a random graph disagrees with finite differences on {adapter.name}",
        rules=["DERIV-2", "HIGHER-1"], derivation=derivation,
        capabilities=sorted({"grad", "create_graph", *unused, *draw.data["capabilities"]}),
        tolerance={"rtol": 1e-4, "atol": 1e-6, "reason": "expected values are nested finite-difference estimates"},
    )
    case["tensors"] = {**case["tensors"], **{f"u_{leaf}": {"value": plain(directions[leaf])} for leaf in used}}
    case["steps"] = list(case["steps"]) + [
        {"grad": first}, f"along_u = {products}", {"grad": second},
        {"expect": {"value": {f"h_{leaf}": plain(expected[leaf]) for leaf in used}}},
    ] if used else list(case["steps"])
    return case


def _hessian_vector_by_backward(draw, u: list, expected: dict, adapter, derivation: str,
                                gradient: dict | None) -> dict:
    """backward with create_graph, each leaf's .grad times u summed, and a second backward of that sum: the leaves'
    .grad is then H·u, after clearing it (grad_assignment), or the first gradient plus H·u (an accumulating engine)."""
    case = copy.deepcopy(draw.data)
    used = [leaf for leaf in draw.leaves if leaf in _dependencies(draw.case, draw.output)]
    clears = "grad_assignment" in adapter.capabilities
    if not clears and gradient is None:
        raise ValueError("an engine without grad_assignment keeps the first gradient in .grad: pass `gradient`")
    directions = dict(zip(draw.leaves, u, strict=True))
    case.update(
        title=f"fuzz: a Hessian-vector product of a random graph disagrees with finite differences on {adapter.name}",
        rules=["DERIV-2", "HIGHER-4"], derivation=derivation,
        capabilities=sorted({"backward", "create_graph", "backward_create_graph", *(["grad_assignment"] if clears else []),
                             *_forward_capabilities(draw)}),
        tolerance={"rtol": 1e-4, "atol": 1e-6, "reason": "expected values are nested finite-difference estimates"},
    )
    case["tensors"] = {**case["tensors"], **{f"u_{leaf}": {"value": plain(directions[leaf])} for leaf in used}}
    want = {leaf: expected[leaf] if clears else np.asarray(expected[leaf]) + np.asarray(gradient[leaf])
            for leaf in used}
    case["steps"] = list(case["steps"]) + [
        {"backward": draw.output, "gradient": _output_gradient(draw), "create_graph": True},
        *(f"g_{leaf} = {leaf}.grad" for leaf in used),
        f"along_u = {' + '.join(f'sum(g_{leaf} * u_{leaf})' for leaf in used)}",
        *([{"set_grad": {leaf: None for leaf in used}}] if clears else []),
        {"backward": "along_u"},
        {"expect": {"grad": {leaf: plain(want[leaf]) for leaf in used}}},
    ] if used else list(case["steps"])
    return case


def _dependencies(case, name: str) -> set[str]:
    """Every tensor name that `name` is computed from, itself included (forward steps only)."""
    made = {bound: step.statement.expr for step in case.steps if step.statement is not None
            for bound in step.statement.names_bound}  # `a, b = split(x)` makes both from x
    found, stack = set(), [name]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        if current in made:
            stack.extend(names_used(made[current]))
    return found


def plain(value):
    """numpy arrays and tuples to nested lists of floats (None stays None), for YAML."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return float(value)
