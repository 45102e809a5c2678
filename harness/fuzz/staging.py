"""Write a shrunk failing draw as a YAML case file that the ordinary loader reads and that reproduces the failure.

Files go to a staging folder, outside the main corpus (`cases/`), because their expected
values come from judges other than a person: finite differences or the reference engine.
A person derives them by hand before moving a case into cases/.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import yaml
from gradspec.language.expressions import names_used
from gradspec.language.loader import load_case


def write_case(data: dict, folder: Path, stem: str) -> Path:
    """Write the case dict to folder/cases/<stem>-<hash>.yaml, check that it loads, and return the path."""
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
    call = {"outputs": draw.output, "inputs": list(leaves), "as": names}
    if draw.grad_output is not None:
        call["grad_outputs"] = [plain(draw.grad_output)]
    case.update(
        title=f"fuzz: gradient of a random graph disagrees with finite differences on {adapter.name}",
        rules=rules,
        derivation=derivation,
        capabilities=sorted({"grad", *draw.data["capabilities"]}),
        tolerance={"rtol": 1e-6, "atol": 1e-9, "reason": "expected values are finite-difference estimates"},
    )
    case["steps"] = list(case["steps"]) + [
        {"grad": call},
        {"expect": {"value": {n: plain(expected[leaf]) for n, leaf in zip(names, leaves, strict=True)}}},
    ]
    return case


def with_hessian_vector_expectation(draw, u: list, expected: dict, adapter, derivation: str) -> dict:
    """The drawn forward steps, the gradient with create_graph, and the gradient of its product with u.

    Leaves the output does not depend on are left out of both calls: their gradient is None,
    which cannot be multiplied, and their row of the Hessian is zero anyway.
    """
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


def _dependencies(case, name: str) -> set[str]:
    """Every tensor name that `name` is computed from, itself included (forward steps only)."""
    made = {step.statement.target: step.statement.expr for step in case.steps if step.statement is not None}
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
