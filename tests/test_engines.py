"""The optional engines' adapters, the cross-engine matrix, and an adapter package from outside gradspec."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gradspec import contracts
from gradspec.reports import tables
from gradspec.running.expectations import Expectation
from gradspec.running.registry import load_adapter, registered

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = {  # engine name: (adapter module, the module-level name that holds the engine, pip extra)
    "jax": ("gradspec.adapters.jax_adapter", "jax", "gradspec[jax]"),
    "autograd": ("gradspec.adapters.autograd_adapter", "autograd", "gradspec[autograd]"),
    "tensorflow": ("gradspec.adapters.tensorflow_adapter", "tf", "gradspec[tensorflow]"),
    "tinygrad": ("gradspec.adapters.tinygrad_adapter", "tinygrad", "gradspec[tinygrad]"),
}


def test_every_built_in_engine_is_registered_and_declares_only_known_capabilities():
    for name in ("reference", "torch", "torch-func", *OPTIONAL):
        adapter = load_adapter(name)
        assert name in registered() and adapter.name == name
        assert adapter.capabilities <= set(contracts.capabilities()), name


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_a_missing_engine_is_unavailable_with_the_install_command_never_an_import_error(name, monkeypatch):
    module_name, engine_global, extra = OPTIONAL[name]
    module = importlib.import_module(module_name)  # imports cleanly whether or not the engine is installed
    monkeypatch.setattr(module, engine_global, None)
    reason = load_adapter(name).unavailable_reason()
    assert reason is not None and extra in reason


def test_the_matrix_counts_engines_by_area_and_lists_each_disagreement_once_per_case():
    def result(engine, case, outcome, dtype="float64", message=""):
        return {"engine": engine, "case": case, "area": case.split("/")[0], "device": "cpu", "dtype": dtype,
                "outcome": outcome, "title": case, "message": message, "rules": [], "capabilities": []}

    report = {"results": [
        result("a", "vjp/x.yaml", "passed"), result("b", "vjp/x.yaml", "failed", message="got 2\nmore"),
        result("b", "vjp/x.yaml", "failed", "float32", "got 2"), result("a", "hooks/y.yaml", "not_applicable"),
        result("b", "hooks/y.yaml", "expected_failure", message="known reason"),
    ]}
    header, rows = tables.engine_matrix(report)
    assert header[1:] == ["a", "b"]
    assert rows == [["hooks", "0 / 0 / 1", "0 / 1 / 0"], ["vjp", "1 / 0 / 0", "0 / 2 / 0"],
                    ["all areas", "1 / 0 / 1", "0 / 3 / 0"]]
    found = tables.disagreements(report)
    assert [(d["engine"], d["case"], d["known"], d["runs"], d["why"]) for d in found] == [
        ("b", "hooks/y.yaml", True, ["cpu-float64"], ["known reason"]),
        ("b", "vjp/x.yaml", False, ["cpu-float64", "cpu-float32"], ["got 2"]),
    ]


def test_an_expectation_may_name_one_engine_for_every_device_and_dtype():
    known = Expectation("vjp/x.yaml::jax", "reason", "f:1")
    assert known.matches("vjp/x.yaml", "jax-cpu-float32", "jax")
    assert not known.matches("vjp/x.yaml", "torch-cpu-float32", "torch")
    assert not known.matches("vjp/y.yaml", "jax-cpu-float32", "jax")


def test_every_expectation_file_names_its_own_engine_and_existing_cases():
    for path in sorted((ROOT / "expectations").glob("*.txt")):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                case, _, scope = line.split()[0].partition("::")  # the engine, or one of its runs
                assert scope == path.stem or scope.startswith(f"{path.stem}-"), \
                    f"{path.name}: {line.split()[0]} is not scoped to {path.stem}"
                assert (ROOT / "cases" / case).is_file(), f"{path.name}: no case {case}"


def test_an_adapter_package_from_outside_plugs_in_by_entry_point_alone(tmp_path):
    """tests/third_party_adapter is installed into a folder of its own; gradspec is not touched."""
    target = tmp_path / "site"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation, "--target",
                    str(target), str(ROOT / "tests" / "third_party_adapter")], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-m", "pytest", "cases/derivatives", "cases/lifetime", "--engine",
                          "finite-differences", "-p", "no:cacheprovider", "-q"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    # The first-derivative cases of the ops its table maps pass; higher order, the view ops, every lifetime
    # case and the ops added to the vocabulary after it was written are not applicable, never errors.
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|error)", run.stdout)}
    assert counts.get("passed", 0) >= 7 and "failed" not in counts and "error" not in counts, run.stdout[-1500:]
    assert "not applicable: finite-differences lacks op:" in run.stdout
    assert "not applicable: finite-differences lacks create_graph" in run.stdout


def _op_table(adapter) -> set[str]:
    """The ops an adapter instance can apply: its own table, or for PyTorch-like ones the shared one."""
    from gradspec.adapters.torch_like import FUNCTIONAL_OPS, NAMESPACE_OPS, OPS, TorchLikeAdapter
    if isinstance(adapter, TorchLikeAdapter):
        return set(OPS) | set(FUNCTIONAL_OPS) | set(NAMESPACE_OPS)
    table = getattr(adapter, "ops", None)
    return set(table) | {"detach"} if table is not None else set(contracts.ops())


@pytest.mark.parametrize("name", ["reference", "torch", "torch-func", *sorted(OPTIONAL)])
def test_every_engine_maps_every_op_it_does_not_declare_absent(name):
    """`lacks_ops` and the op families of capabilities it lacks (view_ops, index_ops, data_alias) are the only gaps."""
    cls = load_adapter(name)
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    lacked_families = {token[3:] for capability, entry in contracts.capabilities().items()
                       if capability not in cls.capabilities for token in entry.get("implied_by", ())
                       if token.startswith("op:")}
    if "data_alias" not in cls.capabilities:
        lacked_families.add("data")  # the op of the capability, which its cases declare themselves
    expected = set(contracts.ops()) - set(cls.lacks_ops) - lacked_families
    missing = expected - _op_table(cls("cpu", "float64"))
    assert not missing, f"{name} neither maps nor declares absent: {sorted(missing)}"
