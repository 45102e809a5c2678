"""Where the shipped corpus and expectation files are, and which corpus a run used.

An installed gradspec carries its case files (gradspec.cases) and each optional engine's
known differences (gradspec.expectations), so that `gradspec run` needs no checkout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from gradspec import __version__


def cases_folder() -> Path:
    """The folder of the shipped corpus (cases/ in a checkout)."""
    return Path(str(resources.files("gradspec.cases")))


def expectation_file(name: str) -> Path:
    """The shipped expectation file of an engine: `gradspec:jax` names expectations/jax.txt."""
    return Path(str(resources.files("gradspec.expectations"))) / f"{name}.txt"


def ci_workflow_file() -> Path:
    """The GitHub Actions workflow for an engine's repository that `gradspec ci-workflow` writes out."""
    return Path(str(resources.files("gradspec.ci"))) / "github-actions.yml"


def describe(case_paths: Iterable[str]) -> dict:
    """Which corpus the cases of a run came from, and a digest of their text to tell corpora apart."""
    paths = sorted({Path(p).resolve() for p in case_paths})
    shipped = cases_folder().resolve()
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    everything_shipped = bool(paths) and all(shipped in path.parents for path in paths)
    return {"source": f"gradspec {__version__}" if everything_shipped else "local case files",
            "cases": len(paths), "sha256": digest.hexdigest()}
