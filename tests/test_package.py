"""The wheel is the product: it carries the corpus, the expectation files, the fuzzer and the reference engine."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile

import pytest

from .conftest import CASES, REPO


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("dist")
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation, str(REPO),
                    "-w", str(folder)], check=True, capture_output=True, timeout=300)
    (wheel,) = folder.glob("gradspec-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_the_wheel_ships_the_whole_corpus_and_the_expectation_files(wheel_names):
    shipped = {name.removeprefix("gradspec/cases/") for name in wheel_names
               if name.startswith("gradspec/cases/") and name.endswith(".yaml")}
    assert shipped == {path.relative_to(CASES).as_posix() for path in CASES.rglob("*.yaml")}
    assert {f"gradspec/expectations/{p.name}" for p in (REPO / "expectations").glob("*.txt")} <= set(wheel_names)


def test_the_wheel_ships_the_fuzzer_and_every_sub_package(wheel_names):
    for module in ("fuzz/test_properties.py", "fuzz/oracle.py", "language/loader.py", "running/interpreter.py",
                   "reports/report.py", "faults.py", "corpus.py", "spec/semantics.md", "spec/versions.yaml"):
        assert f"gradspec/{module}" in wheel_names, module


def test_the_reference_engine_lives_inside_the_gradspec_namespace(wheel_names):
    assert "gradspec/reference_engine/engine.py" in wheel_names
    assert not [name for name in wheel_names if name.startswith("reference_engine/")]
