"""Hostile and broken inputs: each costs one clean error naming its file, and everything else still runs.

Large inputs are generated here rather than stored. Each test reproduces an item of the
review that found crashes, hangs and memory blow-ups in the loader (issue 14).
"""

from __future__ import annotations

import os
import time

import pytest
from gradspec.cli import main as cli
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import load_case

from .conftest import VALID_CASE


def refused(path, pattern: str, seconds: float = 5.0) -> str:
    """Loading `path` fails quickly with one CaseFileError whose text matches `pattern`."""
    start = time.monotonic()
    with pytest.raises(CaseFileError, match=pattern) as info:
        load_case(path)
    assert time.monotonic() - start < seconds, "refusing took too long"
    return str(info.value)


def test_deep_nesting_is_refused_before_the_c_composer_can_crash(write_case):
    depth = 20_000  # about 40 KB; PyYAML's C composer segfaulted on such files
    path = write_case(VALID_CASE.replace("value: [3.0]", "value: " + "[" * depth + "3.0" + "]" * depth))
    refused(path, r"nested deeper than 64 levels")


def test_alias_bombs_are_refused(write_case):
    laughs = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    path = write_case("l0: &l0 [lol]\n" + laughs + VALID_CASE)
    refused(path, r"YAML aliases \(\*name\) are not allowed")


@pytest.mark.parametrize(("change", "pattern"), [
    (("  - y = sum(x ** 2)", "  - y = sum(" + " + ".join(["x"] * 4000) + ")"), r"could not be loaded \(RecursionError"),
    (("x: {value: [3.0]", "? [a, b]\n  : 1\n  x: {value: [3.0]"), r"a mapping key must be a plain value"),
    (("value: [3.0]", "value: [" + "9" * 400 + "]"), r"rectangular array|could not be loaded"),
])
def test_every_failure_to_load_is_that_files_error(write_case, change, pattern):
    refused(write_case(VALID_CASE.replace(*change)), pattern)


def test_validate_goes_on_past_every_broken_file(write_case, capsys):
    write_case(VALID_CASE.replace("  - y = sum(x ** 2)", "  - y = sum(" + " + ".join(["x"] * 4000) + ")"), "a.yaml")
    write_case(VALID_CASE.replace("value: [3.0]", "value: " + "[" * 5000 + "3.0" + "]" * 5000), "b.yaml")
    good = write_case(VALID_CASE, "c.yaml")
    assert cli(["validate", str(good.parent)]) == 1
    captured = capsys.readouterr()
    assert "1 valid, 2 invalid case file(s)" in captured.out
    assert "Traceback" not in captured.err and captured.err.count("\n") == 2


def test_files_beyond_the_size_limit_are_refused_unread(write_case):
    big = "[" + ", ".join(["1.0"] * 400_000) + "]"  # about 2 MB; validating such a value took 91 s
    refused(write_case(VALID_CASE.replace("value: [3.0]", f"value: {big}")), r"more than the limit of 1000000")


def test_the_limits_can_be_changed(write_case, monkeypatch):
    monkeypatch.setenv("GRADSPEC_MAX_ELEMENTS", "2")
    refused(write_case(VALID_CASE.replace("value: [3.0]", "value: [1.0, 2.0, 3.0]")), r"3 elements, more than .* 2")


def test_a_step_that_would_allocate_gigabytes_is_refused_from_its_shapes(write_case):
    column = "[" + ", ".join(["[1.0]"] * 2000) + "]"  # 2,000 x 1
    row = "[" + ", ".join(["1.0"] * 2000) + "]"  # 2,000: broadcast together, 4,000,000 elements
    text = VALID_CASE.replace("x: {value: [3.0], requires_grad: true}",
                              f"x: {{value: [3.0], requires_grad: true}}\n  a: {{value: {column}}}\n  b: {{value: {row}}}")
    text = text.replace("  - y = sum(x ** 2)", "  - big = a * b\n  - y = sum(x ** 2)")
    refused(write_case(text), r":12: mul would make a tensor of 4000000 elements, more than the limit of 1000000")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_special_files_are_never_read(write_case, tmp_path):
    link = write_case(VALID_CASE).parent / "zero.yaml"
    link.symlink_to("/dev/zero")
    refused(link, r"not a regular file")
    fifo = link.parent / "pipe.yaml"
    os.mkfifo(fifo)
    refused(fifo, r"not a regular file")
