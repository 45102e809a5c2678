"""The wheel is the product: it carries the corpus, the expectation files, the fuzzer and the reference engine."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import CASES, REPO


def _setuptools_builds_it() -> bool:
    """Whether the installed setuptools reads pyproject.toml's SPDX license (77 and later); if not, pip builds in an
    isolated environment with the setuptools pyproject.toml asks for (a fresh Python 3.11 venv has 65)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    from importlib.metadata import version

    from packaging.version import Version
    return Version(version("setuptools")) >= Version("77")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    """The wheel of a clean copy of the source tree: setuptools reuses a `build/` folder, whose stale files (a case
    since renamed) would otherwise ship too."""
    folder, source = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("source") / "gradspec"
    outputs = {".git", ".venv", ".versions", "build", "reports", ".whl", "fuzz-staging"}  # at the top only

    def ignored(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == REPO
        return {n for n in names if (top and n in outputs) or n == "__pycache__" or n.endswith(".egg-info")
                or n.startswith(".hypothesis")}
    shutil.copytree(REPO, source, ignore=ignored)
    isolation = ["--no-build-isolation"] if _setuptools_builds_it() else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation, str(source),
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
                   "reports/report.py", "faults.py", "corpus.py", "spec/semantics.md", "spec/versions.yaml",
                   "spec/ops.schema.json", "ci/github-actions.yml"):
        assert f"gradspec/{module}" in wheel_names, module


def test_the_reference_engine_lives_inside_the_gradspec_namespace(wheel_names):
    assert "gradspec/reference_engine/engine.py" in wheel_names
    assert not [name for name in wheel_names if name.startswith("reference_engine/")]
