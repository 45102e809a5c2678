"""The optional engines' adapters, the cross-engine matrix, and an adapter package from outside gradspec."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    "mygrad": ("gradspec.adapters.mygrad_adapter", "mygrad", "gradspec[mygrad]"),
    "paddle": ("gradspec.adapters.paddle_adapter", "PADDLE_SPEC", "gradspec[paddle]"),  # imported on first use
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
    """The ops an adapter instance can apply: its own table (but its `Lacking` entries), or the shared PyTorch one."""
    from gradspec.adapter import Lacking
    from gradspec.adapters.torch_like import FUNCTIONAL_OPS, NAMESPACE_OPS, OPS, TorchLikeAdapter
    if isinstance(adapter, TorchLikeAdapter) and adapter.op_table() is None:  # Paddle's adapter has a table of its own
        return set(OPS) | set(FUNCTIONAL_OPS) | set(NAMESPACE_OPS)
    table = adapter.op_table() if adapter.op_table() is not None else getattr(adapter, "ops", None)
    if table is None:
        return set(contracts.ops())
    return {op for op, entry in table.items() if not isinstance(entry, Lacking)} | {"detach"}


@pytest.mark.parametrize("name", ["reference", "torch", "torch-func", *sorted(OPTIONAL)])
def test_every_engine_maps_every_op_it_does_not_declare_absent(name):
    """Its lacking ops and the op families of capabilities it lacks (view_ops, index_ops, data_alias) are the only
    gaps, and each lacking op has a reason of its own, never the bare "its op table does not map it"."""
    cls = load_adapter(name)
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    lacked_families = {token[3:] for capability, entry in contracts.capabilities().items()
                       if capability not in cls.capabilities for token in entry.get("implied_by", ())
                       if token.startswith("op:")}
    if "data_alias" not in cls.capabilities:
        lacked_families.add("data")  # the op of the capability, which its cases declare themselves
    adapter = cls("cpu", "float64")
    lacking = adapter.lacking_ops()
    missing = set(contracts.ops()) - set(lacking) - lacked_families - _op_table(adapter)
    assert not missing, f"{name} neither maps nor declares absent: {sorted(missing)}"
    unexplained = {op for op, reason in lacking.items() if reason == "its op table does not map it"} - lacked_families
    assert not unexplained, f"{name} lacks {sorted(unexplained)} with no reason but a gap in its op table"


def test_mygrad_lacks_what_its_namespace_lacks_and_differs_only_as_its_expectations_say():
    """The NumPy-style table over `mygrad` leaves exactly the functions mygrad has not, each with its reason, and the
    areas of its known differences (flags, views, in-place updates) run with nothing unexpected."""
    cls = load_adapter("mygrad")
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    lacking = cls("cpu", "float64").lacking_ops()
    assert lacking["erf"] == "mygrad has no function `erf`"
    assert lacking["gelu"] == "it needs erf, and mygrad has no function `erf`"
    assert lacking["inv"] == "mygrad has no function `linalg.inv`"
    assert set(lacking) == {"copysign", "data", "det", "diag", "diagonal", "dot", "erf", "erfc", "flip", "gather",
                            "gelu", "hypot", "index_select", "inv", "outer", "repeat", "round", "solve", "take",
                            "tile", "trace", "tril", "triu",
                            # NumPy's ufuncs on constants only in mygrad: no derivative (declared lacks_ops)
                            "fmod", "remainder", "sign", "floor", "ceil", "trunc"}
    run = subprocess.run([sys.executable, "-m", "pytest", "cases/leaves", "cases/inplace", "cases/retain_grad",
                          "cases/views", "--engine", "mygrad", "--expectations", "expectations/mygrad.txt",
                          "-p", "no:cacheprovider", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|xfailed|failed|error)", run.stdout)}
    assert counts.get("passed", 0) >= 15 and counts.get("xfailed", 0) >= 20, run.stdout[-1500:]


def test_paddle_is_imported_on_first_use_and_differs_only_as_its_expectations_say():
    """Paddle's import takes seconds and prints warnings, so loading and listing the adapter must not import it; its
    own spellings (in-place ops take tensors, torch's split and chunk sizes) and error rows no passing case reaches
    are checked directly, and the areas holding the rest of its error table run with nothing unexpected."""
    cls = load_adapter("paddle")
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    listing = subprocess.run([sys.executable, "-c", "import sys; from gradspec.running.registry import load_adapter; "
                              "cls = load_adapter('paddle'); cls.version(); cls.unavailable_reason(); "
                              "print('paddle' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert listing.stdout.strip() == "False", listing.stdout + listing.stderr[-2000:]
    adapter = cls("cpu", "float64")
    assert set(adapter.lacking_ops()) == {"data", "erfc", "fmod"}
    x = adapter.tensor(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), False, "float64")
    same = adapter.apply_inplace("add", x, 1.5)  # Paddle's add_ takes no number; `x += 1.5` would rebind
    assert same is x and adapter.to_numpy(x).tolist() == [2.5, 3.5, 4.5, 5.5, 6.5] and adapter.dtype_name(x) == "float64"
    assert [adapter.to_numpy(p).tolist() for p in adapter.apply("split", [x, 2], {})] == [[2.5, 3.5], [4.5, 5.5], [6.5]]
    assert [len(adapter.to_numpy(p)) for p in adapter.apply("chunk", [x, 3], {})] == [2, 2, 1]
    leaf = adapter.tensor(np.array([1.0, 2.0, 3.0]), True, "float64")
    with pytest.raises(AssertionError) as shape:  # Tensor.backward's own shape check
        adapter.backward(adapter.apply("mul", [leaf, 2.0], {}), adapter.like(np.ones(2), leaf), None, None, None)
    assert adapter.classify(shape.value) == "grad_shape_mismatch"
    outputs = [adapter.apply("sum", [leaf], {}), adapter.apply("sum", [leaf], {"dim": 0})]
    with pytest.raises(AssertionError) as count:  # paddle.autograd.backward's count check
        adapter.backward(outputs, [adapter.like(np.ones(()), leaf)], None, None, None)
    assert adapter.classify(count.value) == "grad_count_mismatch"
    # Tensor.backward has no create_graph: the cases that call it so are not applicable, never errors
    from gradspec.language.loader import load_case
    from gradspec.running.interpreter import missing_capabilities
    case = load_case(ROOT / "cases" / "higher_order" / "backward-create-graph-leaf-grad.yaml")
    assert missing_capabilities(case, adapter) == ["backward_create_graph"]
    # A second pass through a PyLayer node kills Paddle: in one process (as the fuzzer runs), the adapter refuses it
    rerun = subprocess.run([sys.executable, "-m", "pytest", "cases/custom/saved-values-freed-after-pass.yaml",
                            "--engine", "paddle", "--dtype", "float64", "--gradspec-isolation", "none",
                            "-p", "no:cacheprovider", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1 and "PyLayerRerunRefused" in rerun.stdout, (rerun.returncode, rerun.stdout[-2000:])
    run = subprocess.run([sys.executable, "-m", "pytest", "cases/lifetime", "cases/vjp", "cases/grad_api", "cases/inplace",
                          "cases/hooks", "cases/views/setitem-on-leaf.yaml", "cases/custom/wrong-gradient-count-raises.yaml",
                          "--engine", "paddle", "--dtype", "float64", "--expectations", "expectations/paddle.txt",
                          "-p", "no:cacheprovider", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|xfailed|xpassed|failed|error)", run.stdout)}
    assert counts.get("passed", 0) >= 25 and counts.get("xfailed", 0) >= 12 and "xpassed" not in counts, \
        run.stdout[-1500:]


def test_paddle_runs_in_a_process_that_loaded_tensorflow_first():
    """`--engine all` runs every engine in one worker: libpaddle loaded after TensorFlow's libraries crashed the
    process (SIGSEGV) until the adapter loaded it with its own symbols first (RTLD_DEEPBIND)."""
    cls = load_adapter("paddle")
    if cls.unavailable_reason() or load_adapter("tensorflow").unavailable_reason():
        pytest.skip(cls.unavailable_reason() or load_adapter("tensorflow").unavailable_reason())
    script = ("import numpy as np, tensorflow; from gradspec.running.registry import load_adapter; "
              "a = load_adapter('paddle')('cpu', 'float64'); x = a.tensor(np.array([1.0, 2.0]), True, 'float64'); "
              "a.backward(a.apply('sum', [a.apply('mul', [x, x], {})], {}), None, None, None, None); "
              "print(a.to_numpy(a.read_grad(x)).tolist())")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("[2.0, 4.0]"), (run.returncode, run.stderr[-2000:])
