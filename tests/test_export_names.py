"""Exported scripts whatever the case's names: a name that is no Python name, or one the script binds itself.

Issue 24, item 7: a tensor named `torch` (or `check_close`, `len`) replaced what the script calls, a name ending in
a newline broke the script's syntax, and a tensor named `nan` turned every expected NaN into that tensor, a false
failure.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from gradspec.cli import main as cli
from gradspec.language.loader import load_case
from gradspec.reports.export import script_names, to_torch_script

pytest.importorskip("torch")

SHADOWING = """\
schema_version: 1
title: names the exported script binds itself
rules: [ACC-1]
source: written for gradspec's own tests (issue 24)
derivation: y = sum(torch^2 * len * check_close) at torch = 3, len = 1, check_close = 2 gives dy/dtorch = 2*3*2 = 12;
  sqrt(-1) is NaN
capabilities: [backward]
tensors:
  torch: {value: [3.0], requires_grad: true}
  len: {value: [1.0]}
  check_close: {value: [2.0]}
  nan: {value: [-1.0]}
steps:
  - z = sqrt(nan)
  - thread_1 = torch * len
  - y = sum(thread_1 * torch * check_close)
  - backward: y
  - expect:
      value: {z: [.nan], nan: [-1.0]}
      grad: {torch: [GRAD]}
"""

NEWLINE_NAME = """\
schema_version: 1
title: a tensor name ending in a newline
rules: [ACC-1]
source: written for gradspec's own tests (issue 24)
derivation: backward of x itself with gradient 1 gives .grad 1
capabilities: [backward]
tensors:
  "x\\n": {value: [3.0], requires_grad: true}
steps:
  - backward: "x\\n"
    gradient: [1.0]
  - expect:
      grad: {"x\\n": [GRAD]}
"""


def exported(write_case, text: str, grad: str) -> tuple[object, subprocess.CompletedProcess]:
    case = load_case(write_case(text.replace("GRAD", grad)))
    run = subprocess.run([sys.executable, "-c", to_torch_script(case)], capture_output=True, text=True, timeout=300)
    return case, run


@pytest.mark.parametrize(("text", "grad"), [(SHADOWING, "12.0"), (NEWLINE_NAME, "1.0")], ids=["shadowing", "newline"])
def test_a_case_whose_names_the_script_cannot_use_as_they_are_still_conforms(write_case, text, grad):
    case, run = exported(write_case, text, grad)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == f"conforms: {case.id}\n"


@pytest.mark.parametrize(("text", "grad", "message"), [
    (SHADOWING, "13.0", ".grad of torch: expected [13.0], got [12.0]"),
    (NEWLINE_NAME, "2.0", ".grad of x\n: expected [2.0], got [1.0]"),  # the name as the case writes it
], ids=["shadowing", "newline"])
def test_a_wrong_expectation_still_fails_under_the_cases_own_name(write_case, text, grad, message):
    _, run = exported(write_case, text, grad)
    assert run.returncode == 1 and message in run.stderr, run.stderr[-2000:]


def test_only_names_that_need_it_are_renamed(write_case):
    case = load_case(write_case(SHADOWING.replace("GRAD", "12.0")))
    assert script_names(case) == {"torch": "torch_", "len": "len_", "check_close": "check_close_", "nan": "nan_",
                                  "thread_1": "t_thread_1"}


def test_export_to_a_folder_or_a_device_is_a_clear_error(write_case, tmp_path, capsys):
    path = write_case(SHADOWING.replace("GRAD", "12.0"))
    assert cli(["export", str(path), "-o", str(tmp_path)]) == 2
    assert cli(["export", str(path), "-o", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert f"gradspec: -o {tmp_path}: the script must be written to a regular file, not a folder" in err
    assert "Traceback" not in err and "/dev/full" in err
