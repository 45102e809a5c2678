"""A case file that forgot schema_version is an error, not skipped; a cited rule the steps cannot touch is a warning
(issue 25, item 11)."""

from __future__ import annotations

import textwrap

import pytest
from gradspec.cli import main
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import find_case_files, is_case_file, load_case

from .conftest import VALID_CASE

NO_VERSION = VALID_CASE.replace("schema_version: 1\n", "")


def test_a_case_without_schema_version_under_a_cases_folder_is_an_error_at_its_line(write_case, capsys):
    good, forgot = write_case(VALID_CASE, "good.yaml"), write_case(NO_VERSION, "area/forgot.yaml")
    assert is_case_file(forgot) and find_case_files(good.parent) == [forgot, good]
    with pytest.raises(CaseFileError, match=r"forgot\.yaml:1:1: missing required key: 'schema_version'"):
        load_case(forgot)
    assert main(["validate", str(good.parent)]) == 1
    assert "area/forgot.yaml:1:1: missing required key: 'schema_version'" in capsys.readouterr().err


def test_a_case_without_schema_version_rules_or_tensors_is_still_found(write_case):
    """Only `rules:` or `tensors:` beside `steps:` marked a case that forgot its version; one with a title, a
    derivation and capabilities but neither was skipped without a word."""
    text = "title: t\nderivation: d\ncapabilities: [backward]\nsteps:\n  - backward: y\n"
    forgot = write_case(text, "area/nover-norules.yaml")
    assert is_case_file(forgot)
    with pytest.raises(CaseFileError, match=r"missing required key: 'schema_version'"):
        load_case(forgot)


def test_other_yaml_files_with_steps_are_still_none_of_gradspecs_business(tmp_path):
    for name, text in {"ci/pipeline.yaml": NO_VERSION, "tests/cases/data.yaml": "shape: [2, 3]\nsteps: 4\n"}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True)
        path.write_text(text)
        assert not is_case_file(path), name  # outside a cases folder; another project's data in one


def test_the_plugin_reports_a_case_without_schema_version_as_a_collection_error(pytester, cases):
    cases(good=VALID_CASE, forgot=NO_VERSION)
    result = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cases/forgot.yaml:1:1: missing required key: 'schema_version'"])


HOOKLESS = VALID_CASE.replace("title: y = x^2 at 3 has gradient 6", "title: cites a hook rule, registers no hook") \
    .replace("rules: [ACC-1]", "rules: [HOOK-1]")


@pytest.mark.parametrize("rules, warning", [
    ("[HOOK-1]", "cites HOOK-1, but the case registers no hook"),
    ("[VIEW-1]", "cites VIEW-1, but the case uses no view, indexing or scatter op"),
    ("[RETAIN-2]", "cites RETAIN-2, but the case neither calls retain_grad nor lists a backward's inputs"),
    ("[MODE-5]", "cites MODE-5, but the case has no grad-mode block and no detach"),
    ("[SAVED-1]", "cites SAVED-1, but the case has no saved_tensor_hooks block"),
    ("[CUSTOM-2]", "cites CUSTOM-2, but the case defines no function under `functions:`"),
    ("[HIGHER-1]", "cites HIGHER-1, but the case never sets create_graph"),
    ("[GRAD-2]", "cites GRAD-2, but the case has no grad step and no backward with inputs"),
    ("[INPLACE-2]", "cites INPLACE-2, but the case has no in-place operation"),
    ("[LIFE-1]", "cites LIFE-1, but the case neither retains nor frees a graph"),
    ("[PASS-9]", "cites PASS-9, which is about 'threads', but no step uses it"),
])
def test_validate_warns_when_the_steps_cannot_touch_the_cited_rule(write_case, capsys, rules, warning):
    path = write_case(HOOKLESS.replace("[HOOK-1]", rules))
    assert any(note.startswith(warning) for note in load_case(path).advice), load_case(path).advice
    assert main(["validate", str(path)]) == 0  # a warning, not an error
    assert f"{path}: warning: {warning}" in capsys.readouterr().err


@pytest.mark.parametrize("rules", ["[ACC-1]", "[HIGHER-7]", "[RETAIN-1]", "[LEAF-1]", "[DERIV-1]"])
def test_no_warning_where_the_steps_can_check_the_rule(write_case, rules):
    """HIGHER-7 is about a gradient computed without create_graph, RETAIN-1 about a .grad nothing retained."""
    assert not [note for note in load_case(write_case(HOOKLESS.replace("[HOOK-1]", rules))).advice if "cites" in note]


def test_no_rule_of_the_corpus_is_out_of_its_cases_reach(capsys):
    assert main(["validate"]) == 0
    assert " cites " not in capsys.readouterr().err


def test_materialize_grads_false_needs_its_capability(write_case):
    """It was never implied (a false option was skipped), so a case could leave custom_materialize_grads out."""
    text = textwrap.dedent("""\
        schema_version: 1
        title: a lazy pair
        rules: [CUSTOM-8]
        source: written for gradspec's own tests
        derivation: grad_a is None, 3 grad_b = [3]
        capabilities: [grad, custom_function, custom_multiple_outputs]
        functions:
          LazyPair:
            inputs: [x]
            forward: ["a = x * 2", "b = x * 3"]
            outputs: [a, b]
            materialize_grads: false
            backward: ["gx = grad_b * 3"]
            returns: [gx]
        tensors:
          x: {value: [1.0], requires_grad: true}
        steps:
          - a, b = LazyPair(x)
          - grad: {outputs: b, inputs: x, as: g}
          - expect:
              value: {g: [3.0]}
        """)
    with pytest.raises(CaseFileError, match=r"the steps need capabilities \['custom_materialize_grads'\]"):
        load_case(write_case(text))
