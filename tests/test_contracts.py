"""spec/ is the single source of truth: its files are consistent with each other, the corpus and the code."""

from __future__ import annotations

import re
from collections import defaultdict

import jsonschema
import pytest
from gradspec import contracts
from gradspec.adapters import reference_adapter, torch_adapter, torch_like
from gradspec.language.loader import EXTRA_TOKENS, load_case, step_kinds

from .conftest import CASES


@pytest.fixture(scope="module")
def corpus():
    return [load_case(path) for path in sorted(CASES.rglob("*.yaml"))]


def test_every_must_rule_is_cited_by_a_case(corpus):
    cited = {rule for case in corpus for rule in case.rules}
    uncited = [rule for rule, entry in contracts.rules().items() if entry.level == "MUST" and rule not in cited]
    assert uncited == [], f"MUST rules without a case: {uncited}"


def test_cases_declare_the_capabilities_their_rules_need(corpus):
    """A rule marked `MUST [cap]` binds only engines with cap: its cases must be not applicable to the others."""
    rules = contracts.rules()
    for case in corpus:
        for rule in case.rules:
            missing = set(rules[rule].needs) - case.capabilities
            assert not missing, f"{case.id} cites {rule}, which needs {sorted(missing)}, without declaring it"


def test_rule_needs_name_known_capabilities():
    known = set(contracts.capabilities())
    for rule, entry in contracts.rules().items():
        assert set(entry.needs) <= known, f"{rule} needs unknown capabilities {sorted(set(entry.needs) - known)}"


def test_rule_book_has_many_rules_each_with_a_level_and_a_sentence():
    rules = contracts.rules()
    assert len(rules) >= 60
    assert {entry.level for entry in rules.values()} == {"MUST", "ENGINE-SPECIFIC"}
    assert all(entry.text.endswith(".") for entry in rules.values())


def test_rule_ids_are_numbered_within_their_area():
    by_area = defaultdict(list)
    for rule in contracts.rules():
        area, number = rule.split("-")
        by_area[area].append(int(number))
    for area, numbers in by_area.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"{area} ids are not 1..n in order: {numbers}"


def test_cases_citing_only_engine_specific_rules_declare_a_non_implied_capability(corpus):
    """Such cases pin PyTorch's choices; engines that choose otherwise must see them as not applicable."""
    rules = contracts.rules()
    explicit = {name for name, entry in contracts.capabilities().items() if not entry.get("implied_by")}
    for case in corpus:
        if all(rules[rule].level == "ENGINE-SPECIFIC" for rule in case.rules):
            assert case.capabilities & explicit, f"{case.id} pins engine-specific behaviour without a capability"


def test_error_kinds_cite_existing_rules_that_name_them():
    rules = contracts.rules()
    for kind, entry in {**contracts.error_kinds(), **contracts.warning_kinds()}.items():
        for rule in entry["rules"]:
            assert rule in rules, f"{kind} cites unknown rule {rule}"
            assert f"`{kind}`" in rules[rule].text, f"{rule} does not name `{kind}`"


def test_every_error_kind_a_rule_names_exists():
    """Rules name errors as "raises `kind`", "else `kind`", "warns `kind`" or "(`kind`)"."""
    known = set(contracts.error_kinds()) | set(contracts.warning_kinds())
    named = re.compile(r"(?:raises|raise|else|warns) `([a-z_]+)`|\(`([a-z_]+)`\)")
    for rule, entry in contracts.rules().items():
        for match in named.finditer(entry.text):
            kind = match.group(1) or match.group(2)
            assert kind in known, f"{rule} names error `{kind}`, which is not in errors.yaml"


def test_capabilities_are_implied_only_by_real_step_kinds_options_and_ops():
    kinds = set(step_kinds()) | {"inplace", "setitem"}
    schema_steps = contracts.case_schema()["$defs"]["steps"]
    for name, entry in contracts.capabilities().items():
        for source in entry["implied_by"]:
            if source.startswith("op:"):
                assert source[3:] in contracts.ops(), f"{name}: unknown op in {source}"
            elif source.startswith("raises:"):
                assert source[7:] in contracts.error_kinds(), f"{name}: unknown error kind in {source}"
            elif source.startswith("expect."):
                expect = schema_steps["expect"]["properties"]["expect"]["properties"]
                assert source[7:].split(".")[0] in expect, f"{name}: unknown expect key in {source}"
            elif "." in source:
                step, option = source.split(".")
                properties = schema_steps[step]["properties"]
                options = properties[step].get("properties", {}) if step == "grad" else properties
                assert option in options, f"{name}: step {step} has no option {option}"
            else:
                assert source in kinds | {"warns", "read_grad"} | EXTRA_TOKENS, f"{name}: unknown step kind {source}"


def test_case_schema_is_a_valid_json_schema():
    schema = contracts.case_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_torch_like_adapters_implement_every_op_in_the_vocabulary():
    tables = (set(torch_like.OPS), set(torch_like.FUNCTIONAL_OPS), set(torch_like.NAMESPACE_OPS))
    assert set().union(*tables) == set(contracts.ops())
    assert sum(map(len, tables)) == len(contracts.ops()), "each op in one table"


@pytest.mark.parametrize("module", [torch_adapter, reference_adapter], ids=["torch", "reference"])
def test_adapters_only_classify_into_known_kinds(module):
    assert {kind for _, _, kind in module.ERRORS} <= set(contracts.error_kinds())
    assert {kind for _, _, kind in module.WARNINGS} <= set(contracts.warning_kinds())


def test_tolerances_cover_every_run_dtype():
    from gradspec.plugin import ALL_DTYPES
    assert set(ALL_DTYPES) <= set(contracts.tolerances())


def test_the_readme_adapter_guide_lists_every_method_an_adapter_implements():
    import inspect

    from gradspec.adapter import Adapter

    from .conftest import REPO
    guide = (REPO / "README.md").read_text().split("## Adding an adapter")[1].split("\n## ")[0]
    methods = [name for name, value in vars(Adapter).items()
               if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, classmethod))]
    derived = {"why_not_runnable"}  # gradspec works it out from what the adapter declares
    missing = [name for name in methods if f"`{name}(" not in guide and name not in derived]
    assert missing == [], f"README's adapter guide does not mention {missing}"
