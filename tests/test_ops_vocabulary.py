"""spec/ops.yaml parses into the shape spec/ops.schema.json says, field by field.

DERIV-1 points at each op's `derivative` field, so a field YAML reads differently from what was
written is a rule-book defect: an unquoted flow mapping splits at every comma (hypot's rule once
read {a: "g * a / hypot(a", "b)": None, ...}). The schema says which fields an op has and their
types; the checks below say what a schema cannot: derivative and fuzz keys are the op's operands,
and every formula parses.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from importlib import resources

import jsonschema
import pytest
import yaml

SPEC = resources.files("gradspec.spec")  # the files the package ships, which a clone's spec/ is
OPS_FILE = yaml.safe_load(SPEC.joinpath("ops.yaml").read_text(encoding="utf-8"))
OPS = OPS_FILE["ops"]
SCHEMA = json.loads(SPEC.joinpath("ops.schema.json").read_text(encoding="utf-8"))
DEFAULT_NAMES = ("a", "b", "c")
# Names a formula may use besides the op's operands and attributes and the ops themselves (spec/ops.yaml's header).
COMMON_NAMES = {"g", "out", "pi", "mT", "none"}
WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def operands(entry: dict) -> list[str]:
    """The op's operand names in order: `operands` where given, else a, b, c."""
    if entry["arity"] == "many":
        return []
    return list(entry.get("operands") or DEFAULT_NAMES[:entry["arity"]])


def gradient_operands(entry: dict) -> list[str]:
    """The operands that get a gradient: all but an index or condition operand; `each operand` for arity many."""
    if entry["arity"] == "many":
        return ["each operand"]
    skipped = {entry.get("index_operand"), entry.get("condition_operand")}
    return [name for position, name in enumerate(operands(entry)) if position not in skipped]


def balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char in "([{") - (char in ")]}")
        if depth < 0:
            return False
    return depth == 0


def cuts(text: str) -> Iterator[int]:
    """Where a formula may end and its note begin: before a top-level ", ", "; ", ": " or " (", and at the end."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([{":
            if depth == 0 and char == "(" and text[i - 1:i] == " ":
                yield i - 1
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith((", ", "; ", ": "), i):
            yield i
    yield len(text)


def split_formula(text: str) -> tuple[ast.Expression | None, str]:
    """The first prefix of `text` that parses as a Python expression, and the note after it; None if none does."""
    for cut in cuts(text):
        try:
            return ast.parse(text[:cut].strip(), mode="eval"), text[cut:]
        except SyntaxError:
            continue
    return None, text


def piecewise(text: str) -> bool:
    """Whether text is a formula by cases, "g where a > b, g / 2 where a == b": each value and condition parses."""
    start, pieces = 0, []
    for cut in cuts(text):
        if text.startswith((", ", "; "), cut) or cut == len(text):
            pieces.append(text[start:cut])
            start = cut + 2
    try:
        for piece in pieces:
            for part in piece.split(" where ", 1):
                ast.parse(part.strip(), mode="eval")
    except SyntaxError:
        return False
    return True


def problems_of_rule(text: str, names: set[str]) -> list[str]:
    """What is wrong with a derivative rule or a kink: a formula (optionally with a note), or words."""
    if not balanced(text):
        return [f"unbalanced brackets in {text!r}"]
    formula, note = split_formula(text)
    if formula is None:
        words = set(WORD.findall(text)) - names - set(OPS)
        return [] if words or piecewise(text) else [
            f"{text!r} is neither a formula nor words (a formula that does not parse?)"]
    unknown = {node.id for node in ast.walk(formula) if isinstance(node, ast.Name)} - names - set(OPS)
    unknown -= set(WORD.findall(note))  # a note may name what the formula uses: ", n the elements reduced"
    return [f"{text!r} uses {sorted(unknown)}, which is no operand, attribute, op or name the note gives"] \
        if unknown else []


def names_of(entry: dict) -> set[str]:
    return set(operands(entry)) | set(entry.get("attributes") or {}) | COMMON_NAMES


def test_the_schema_is_a_valid_json_schema_and_ships_with_the_package():
    jsonschema.validators.validator_for(SCHEMA).check_schema(SCHEMA)
    assert SPEC.joinpath("ops.schema.json").is_file()


def test_ops_yaml_follows_its_schema():
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(OPS_FILE)]
    assert errors == []


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_names_its_operands_and_gives_each_one_rule(name):
    entry = OPS[name]
    if entry["arity"] != "many":
        assert len(operands(entry)) == entry["arity"], f"{name}: one name per operand"
        for field in ("index_operand", "condition_operand"):
            assert entry.get(field, 0) < entry["arity"], f"{name}: {field} is no operand's position"
    assert list(entry["derivative"]) == gradient_operands(entry), (
        f"{name}: derivative keys {list(entry['derivative'])}, operands that get a gradient {gradient_operands(entry)}")
    fuzz = entry.get("fuzz")
    if isinstance(fuzz, dict):  # keys are operands and attributes, each given a word the fuzzer knows for it
        from gradspec.fuzz.strategies import problems_of_fuzz
        assert problems_of_fuzz(name, entry, fuzz) == []
    else:
        assert fuzz is None or entry.get("fuzz_reason"), f"{name}: fuzz: false without a fuzz_reason"


def test_the_schema_refuses_fuzz_false_without_a_reason_and_a_reason_without_fuzz_false():
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    entry = dict(OPS["sin"])

    def errors(**fields):
        return list(validator.iter_errors({"schema_version": 1, "ops": {"sin": {**entry, **fields}}}))
    assert errors(fuzz=False)
    assert errors(fuzz={}, fuzz_reason="no reason needed")
    assert errors(fuzz=False, fuzz_reason="random graphs cannot feed it") == []
    assert errors(fuzz={"a": "no_such_word"})


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_derivative_rule_and_kink_is_a_formula_or_words(name):
    entry = OPS[name]
    names = names_of(entry)
    found = [problem for text in entry["derivative"].values() for problem in problems_of_rule(text, names)]
    found += [problem for point in entry.get("kinks") or {} for problem in problems_of_rule(point, names)]
    assert found == []


def test_the_checks_catch_an_unquoted_rule_split_at_its_commas():
    """What hypot's field read as before it was quoted: the keys, the brackets and the parse all object."""
    entry = dict(OPS["hypot"], derivative=yaml.safe_load("{a: g * a / hypot(a, b), b: g * b / hypot(a, b)}"))
    assert list(entry["derivative"]) != gradient_operands(entry)
    assert problems_of_rule(entry["derivative"]["a"], names_of(entry))
    assert problems_of_rule("g * a / hypot(a b)", names_of(entry))  # balanced, but no formula and no words
    assert problems_of_rule("g * a / hypot(a, c)", names_of(entry))  # c is no operand of hypot
    assert problems_of_rule("g * (1 - tanh(a) ** 2), out = tanh(a)", names_of(OPS["tanh"])) == []
