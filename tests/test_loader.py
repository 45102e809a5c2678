"""The loader accepts the corpus and rejects broken files with one precise error: file, line, column, expectation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import build_case, load_case

from .conftest import CASES, VALID_CASE


def broken(text: str, old: str, new: str) -> str:
    assert old in text, f"test bug: {old!r} not in the valid case"
    return text.replace(old, new, 1)


def test_valid_case_loads_into_an_immutable_case(write_case):
    case = load_case(write_case(VALID_CASE))
    assert case.id == "case.yaml"
    assert case.rules == ("ACC-1",)
    assert case.capabilities == frozenset({"backward"})
    assert [s.kind for s in case.steps] == ["compute", "backward", "expect"]
    assert np.array_equal(case.tensors[0].value, [3.0])
    with pytest.raises(TypeError):
        case.steps[2].args["expect"]["grad"]["x"] = [7.0]  # read-only mappings


def test_case_id_is_the_path_below_cases(write_case):
    case = load_case(write_case(VALID_CASE, "area/sub/thing.yaml"))
    assert case.id == "area/sub/thing.yaml"
    assert case.area == "area"


@pytest.mark.parametrize("path", sorted(CASES.rglob("*.yaml")), ids=lambda p: p.relative_to(CASES).as_posix())
def test_every_case_in_the_corpus_loads(path):
    case = load_case(path)
    assert case.derivation.strip(), "every case says how its expected values were derived"


BROKEN = [
    # (what is broken, old text, new text, expected line:col, message pattern)
    ("bad YAML", "title: y = x^2 at 3 has gradient 6", "title: [unclosed", r"3:\d+",
     r"not valid YAML: while parsing a flow sequence \(which starts at line 2, column 8\)"),
    ("duplicate key", "rules: [ACC-1]", "rules: [ACC-1]\nrules: [ACC-2]", r"4:1", r"duplicate key 'rules'"),
    ("unknown top-level key", "source:", "sauce: x\nsource:", r"4:1", r"unknown key 'sauce' \(did you mean 'source'\?\)"),
    ("missing required key", "derivation: dy/dx = 2x = 6 at x = 3\n", "", r"1:1", r"missing required key: 'derivation'"),
    ("unknown step key", "  - backward: y", "  - backwards: y", r"11:5", r"no step key .* \(did you mean 'backward'\?\)"),
    ("unknown step option", "  - backward: y", "  - backward: y\n    retain_grpah: true", r"12:5",
     r"unknown key 'retain_grpah' \(did you mean 'retain_graph'\?\)"),
    ("unknown op", "  - y = sum(x ** 2)", "  - y = summ(x ** 2)", r"10:9", r"unknown op 'summ' \(did you mean 'sum'\?\)"),
    ("op outside the whitelist", "  - y = sum(x ** 2)", "  - y = __import__('os')", r"10:9", r"unknown op '__import__'"),
    ("syntax outside the whitelist", "  - y = sum(x ** 2)", "  - y = x < 0", r"10:9", r"Compare is not allowed"),
    ("ragged array (wrong shape)", "x: {value: [3.0]", "x: {value: [[3.0], [1.0, 2.0]]", r"8:\d+", r"rectangular array"),
    ("name not defined", "  - backward: y", "  - backward: z", r"11:\d+", r"name 'z' is not defined"),
    ("unknown rule", "rules: [ACC-1]", "rules: [ACC-99]", r"3:9", r"unknown rule 'ACC-99'"),
    ("unknown error kind", "  - backward: y", "  - backward: y\n    raises: freed_grahp", r"12:5",
     r"unknown error kind 'freed_grahp' \(did you mean 'freed_graph'\?\)"),
    ("incomplete capabilities", "capabilities: [backward]", "capabilities: [grad]", r"6:\d+",
     r"the steps need capabilities \['backward'\]"),
    ("unknown capability", "capabilities: [backward]", "capabilities: [backward, hookz]", r"6:\d+",
     r"unknown capability 'hookz'"),
    ("wrong value type", "requires_grad: true}", "requires_grad: yes please}", r"8:\d+", r"expected boolean"),
    ("wrong schema version", "schema_version: 1", "schema_version: 2", r"1:\d+", r"expected 1, got 2"),
    # Static checks: shapes worked out from the declared values before any engine runs.
    ("expected value of the wrong shape", "grad: {x: [6.0]}", "grad: {x: [[6.0]]}", r"12",
     r"expected \.grad of x has shape \[1, 1\], but the tensor it stands for has shape \[1\]"),
    ("reduction over a dim the tensor lacks", "  - y = sum(x ** 2)", "  - y = sum(x ** 2, dim=3)", r"10",
     r"sum cannot take operands of shape \[1\], dim=3: .*out of bounds"),
    ("operands that do not multiply", "  - y = sum(x ** 2)", "  - y = sum(x @ x ** 2)\n  - z = x @ y", r"11",
     r"matmul cannot take operands of shape \[1\], \[\]"),
    ("output gradient of the wrong shape", "  - backward: y", "  - backward: y\n    gradient: [1.0, 2.0]", r"11",
     r"gradient has shape \[2\], but the tensor it stands for has shape \[\]"),
]


@pytest.mark.parametrize("what, old, new, where, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_case_gives_one_precise_error(write_case, what, old, new, where, message):
    path = write_case(broken(VALID_CASE, old, new))
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    text = str(info.value)
    assert text.startswith(f"{path}:"), text
    assert re.match(rf"{re.escape(str(path))}:{where}: ", text), text
    assert re.search(message, text), text


def test_every_problem_in_a_file_is_reported_at_once(write_case):
    text = broken(broken(broken(VALID_CASE, "rules: [ACC-1]", "rules: [ACC-1, NOPE-1]"),
                         "  - backward: y", "  - backwards: y"), "grad: {x: [6.0]}", "grad: {q: [6.0]}")
    with pytest.raises(CaseFileError) as info:
        load_case(write_case(text))
    lines = str(info.value).splitlines()
    assert len(lines) == 3, lines
    assert "unknown rule 'NOPE-1'" in lines[0] and "no step key" in lines[1] and "name 'q'" in lines[2]


def test_validate_advises_on_unneeded_capabilities_and_cases_that_check_nothing(write_case, capsys):
    from gradspec.cli import main
    write_case(VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward, tensor_hooks]"), "a.yaml")
    write_case(VALID_CASE.replace("  - expect:\n      grad: {x: [6.0]}\n", ""), "b.yaml")
    assert main(["validate", str(write_case(VALID_CASE, "c.yaml").parent)]) == 0  # advice, not errors
    err = capsys.readouterr().err
    assert "a.yaml: warning: declares capability 'tensor_hooks', which no step needs" in err
    assert "b.yaml: warning: checks nothing" in err
    assert "c.yaml" not in err


def test_hook_labels_must_be_registered_before_use(write_case):
    text = broken(VALID_CASE, "  - backward: y", "  - remove_hook: hx\n  - backward: y")
    with pytest.raises(CaseFileError, match=r"no hook registered as 'hx'"):
        load_case(write_case(text))


def test_grad_as_must_bind_one_name_per_input(write_case):
    text = broken(VALID_CASE, "  - backward: y", "  - grad: {outputs: y, inputs: x, as: [a, b]}")
    text = text.replace("capabilities: [backward]", "capabilities: [backward, grad]")
    with pytest.raises(CaseFileError, match=r"`as` binds 2 name\(s\) but `inputs` has 1"):
        load_case(write_case(text))


def test_a_case_can_be_built_from_plain_data_without_positions():
    """The fuzzer builds Cases from dicts; errors then name the source without a line."""
    import yaml

    data = yaml.safe_load(VALID_CASE)
    assert build_case(data, "<fuzz>", "fuzz/1").id == "fuzz/1"
    data["steps"][1] = {"backward": "nope"}
    with pytest.raises(CaseFileError, match=r"^<fuzz>: name 'nope'"):
        build_case(data, "<fuzz>", "fuzz/1")


def test_unreadable_file_is_reported(tmp_path):
    with pytest.raises(CaseFileError, match="cannot read the file"):
        load_case(tmp_path / "missing.yaml")


def test_code_built_data_may_skip_the_schema_but_never_the_checks_of_meaning():
    """schema=False is for the fuzzer's draws: structure is vouched for by tests, meaning is still checked."""
    import yaml

    data = yaml.safe_load(VALID_CASE)
    data["title"] = 7  # the schema wants a string
    with pytest.raises(CaseFileError, match="expected string, got 7"):
        build_case(data, "<fuzz>", "fuzz/1")
    assert build_case(data, "<fuzz>", "fuzz/1", schema=False).title == 7
    data["steps"][1] = {"backward": "nope"}
    with pytest.raises(CaseFileError, match=r"^<fuzz>: name 'nope'"):
        build_case(data, "<fuzz>", "fuzz/1", schema=False)


VIEW_PROBLEMS = [
    # (new steps in place of `y = sum(x ** 2)`, expected line, message pattern)
    ("  - a, b = unbind(x)\n  - y = sum(x ** 2)", r"10", r"unbind gives 1 output\(s\) here, but the step unpacks 2: a, b"),
    ("  - y = sum(x ** 2)\n  - x[0:1] = y * x * [1.0]", r"11", r"not allowed here|the constant"),
    ("  - c = x * 1\n  - c[0:1] = x * x + c[[0, 0]]\n  - y = sum(x ** 2)", r"11",
     r"a value of shape \[2\] cannot be assigned to c\[...\] of shape \[1\]"),
    ("  - v = select(x, dim=0, index=5)\n  - y = sum(x ** 2)", r"10", r"select cannot take operands of shape \[1\]"),
]


@pytest.mark.parametrize("steps, where, message", VIEW_PROBLEMS, ids=[p[0].strip() for p in VIEW_PROBLEMS])
def test_views_and_assignments_are_checked_before_any_engine_runs(write_case, steps, where, message):
    text = broken(broken(VALID_CASE, "  - y = sum(x ** 2)", steps), "capabilities: [backward]",
                  "capabilities: [backward, view_ops, setitem]")
    with pytest.raises(CaseFileError) as info:
        load_case(write_case(text))
    assert re.search(rf":{where}:(\d+:)? .*({message})", str(info.value)), str(info.value)


CUBE_CASE = """\
schema_version: 1
title: a case function
rules: [CUSTOM-2]
source: test
derivation: by hand
capabilities: [grad, custom_function]
functions:
  Cube:
    inputs: [x]
    forward: ["y = x * x * x"]
    outputs: [y]
    save: [x]
    backward: ["gx = grad_y * 3 * x * x"]
    returns: [gx]
tensors:
  x: {value: [1.0], requires_grad: true}
steps:
  - y = Cube(x)
  - grad: {outputs: y, inputs: x, as: g}
  - expect:
      value: {g: [3.0]}
"""


@pytest.mark.parametrize(("old", "new", "where", "message"), [
    ("save: [x]", "save: [z]", ":12:", r"'z' in the function's save is neither an input nor a value its forward"),
    ("grad_y * 3", "grad_q * 3", ":13:", r"name 'grad_q' .* is not defined before this step \(did you mean 'grad_y'"),
    ("- y = Cube(x)", "- y = Cube(x, x)", ":19:", r"Cube takes 1 input\(s\) \(x\), got 2"),
    ("- y = Cube(x)", "- y, z = Cube(x)", ":19:", r"Cube has 1 output\(s\); the step binds 2"),
    ("dirty: []", "dirty: [q]", ":", r"'q' is not one of the function's inputs"),
    ("capabilities: [grad, custom_function]", "capabilities: [grad]", ":6:", r"custom_function"),
], ids=["save", "backward names", "input count", "output count", "dirty", "capability"])
def test_case_functions_are_checked_at_their_line(write_case, old, new, where, message):
    text = CUBE_CASE.replace("    returns: [gx]", "    returns: [gx]\n    dirty: []")
    assert old in text
    with pytest.raises(CaseFileError, match=message) as info:
        load_case(write_case(text.replace(old, new)))
    assert where in str(info.value)


def test_a_case_function_loads_with_its_options(write_case):
    case = load_case(write_case(CUBE_CASE))
    function = case.functions["Cube"]
    assert (function.inputs, function.outputs, function.save, function.returns) == (("x",), ("y",), ("x",), ("gx",))
    assert function.materialize_grads and not function.once_differentiable


THREADS_CASE = """\
schema_version: 1
title: threads and saved-tensor hooks
rules: [PASS-10]
source: test
derivation: by hand
capabilities: [grad_mode, threads, introspection, saved_tensor_hooks]
tensors:
  x: {value: [1.0], requires_grad: true}
steps:
  - threads:
      - - no_grad:
            - barrier: all
            - a = x * 3
      - - barrier: all
        - b = x * 2
  - saved_tensor_hooks: log
    steps:
      - c = x * x
  - expect:
      requires_grad: {a: false, b: true}
      saved_hook_calls:
        - {pack: log, value: [1.0]}
"""


@pytest.mark.parametrize(("old", "new", "where", "message"), [
    ("        - b = x * 2", "        - b = a * 2", ":15:", r"name 'a' .* is not defined before this step"),
    ("      - - barrier: all\n", "      - - b0 = x * 1\n", ":10:", r"same number of barriers to meet at, got \[1, 0\]"),
    ("  - saved_tensor_hooks: log\n    steps:\n      - c = x * x",
     "  - barrier: all\n  - saved_tensor_hooks: log\n    steps:\n      - c = x * x",
     ":16:", r"a barrier belongs inside a body of `threads`"),
    ("        - b = x * 2", "        - compute: b = x * 2\n          warns: nonleaf_grad_access", ":16:",
     r"warnings cannot be told apart between threads"),
    ("{pack: log, value", "{pack: logs, value", ":22:", r"no saved_tensor_hooks block labelled 'logs'.*did you mean 'log'"),
    ("{pack: log, value: [1.0]}", "{value: [1.0], hook: log}", ":22:", r"hook"),
    ("capabilities: [grad_mode, threads, introspection, saved_tensor_hooks]",
     "capabilities: [grad_mode, introspection]", ":6:", r"saved_tensor_hooks', 'threads'"),
], ids=["other thread's name", "barrier counts", "barrier outside", "warns in a thread", "saved hook label",
        "saved hook call shape", "capabilities"])
def test_threads_and_saved_hooks_are_checked_at_their_line(write_case, old, new, where, message):
    assert old in THREADS_CASE
    with pytest.raises(CaseFileError, match=message) as info:
        load_case(write_case(THREADS_CASE.replace(old, new)))
    assert where in str(info.value)


def test_a_barrier_inside_a_repeat_is_refused(write_case):
    text = THREADS_CASE.replace("            - barrier: all\n", "            - repeat: 2\n              steps:\n"
                                "                - barrier: all\n")
    with pytest.raises(CaseFileError, match=r"barrier inside a repeat"):
        load_case(write_case(text))


def test_threads_load_as_one_thread_step_per_body(write_case):
    case = load_case(write_case(THREADS_CASE))
    threads = case.steps[0]
    assert [step.kind for step in threads.body] == ["thread", "thread"]
    assert [step.kind for step in threads.body[1].body] == ["barrier", "compute"]


FORMS_CASE = """\
schema_version: 1
title: argument forms
rules: [GRAD-1]
source: test
derivation: by hand
capabilities: [argument_forms, backward, backward_inputs, grad, graph_lifetime, several_roots]
tensors:
  x: {value: [1.0], requires_grad: true}
  w: {value: [2.0], requires_grad: true}
steps:
  - y = sum(x * w)
  - z = sum(x)
  - grad: {outputs: y, inputs: [x, w], retain_graph: true, forms: {outputs: tensor, inputs: tuple}}
  - backward: [y, z]
    retain_graph: true
    forms: {backward: tuple}
  - backward: y
    gradient: 1.0
    inputs: [x]
    forms: {backward: tensor, gradient: tensor, inputs: tensor}
"""


@pytest.mark.parametrize(("old", "new", "where", "message"), [
    ("inputs: tuple}}", "inputs: tensor}}", ":13:", r"'inputs' holds 2 tensors: a bare tensor stands for exactly one"),
    ("forms: {backward: tuple}", "forms: {backward: tensor}", ":16:", r"'backward' holds 2 tensors"),
    ("backward: tensor, gradient: tensor", "backward: tensor, gradient: list", ":20:",
     r"tensor.backward takes its gradient as a bare tensor"),
    ("outputs: tensor, inputs: tuple", "grad_outputs: tuple, inputs: tuple", ":13:",
     r"the form of 'grad_outputs', which this call does not pass"),
    ("forms: {backward: tuple}", "forms: {backward: set}", ":16:", r"expected one of \['tensor', 'list', 'tuple'\], got 'set'"),
    ("argument_forms, backward,", "backward,", ":6:", r"argument_forms"),
], ids=["bare tensor for two inputs", "bare tensor for two outputs", "a list for tensor.backward's gradient",
        "form of an argument not passed", "unknown form", "capability"])
def test_argument_forms_are_checked_at_their_line(write_case, old, new, where, message):
    load_case(write_case(FORMS_CASE, "good.yaml"))
    with pytest.raises(CaseFileError) as info:
        load_case(write_case(broken(FORMS_CASE, old, new)))
    assert where in str(info.value) and re.search(message, str(info.value)), str(info.value)
