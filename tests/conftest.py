"""Shared fixtures for gradspec's own tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "cases"

# A small valid case reused by tests that break one thing at a time.
VALID_CASE = textwrap.dedent("""\
    schema_version: 1
    title: y = x^2 at 3 has gradient 6
    rules: [ACC-1]
    source: written for gradspec's own tests
    derivation: dy/dx = 2x = 6 at x = 3
    capabilities: [backward]
    tensors:
      x: {value: [3.0], requires_grad: true}
    steps:
      - y = sum(x ** 2)
      - backward: y
      - expect:
          grad: {x: [6.0]}
    """)


@pytest.fixture
def write_case(tmp_path):
    """Write YAML text under tmp_path/cases/ and return its path."""

    def write(text: str, name: str = "case.yaml") -> Path:
        path = tmp_path / "cases" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cases(pytester):
    """Write case files under pytester's cases/ folder: cases(name=text, ...)."""

    def write(**files: str):
        for name, text in files.items():
            path = pytester.path / "cases" / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    return write


@pytest.fixture(autouse=True)
def grad_mode_left_on():
    """Fail the test that leaves the reference engine's grad mode off in this thread: every later test in the same
    process would run without recording (properties then find nothing, or reject every draw)."""
    from gradspec.reference_engine import grad_mode
    yield
    if not grad_mode.is_grad_enabled() or grad_mode.is_inference_mode_enabled():
        grad_mode._state.enabled, grad_mode._state.inference = True, False
        pytest.fail("this test left the reference engine's grad mode off (or inference mode on) behind it")
