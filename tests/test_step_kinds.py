"""One description of step kinds (harness/language/step_kinds.py) for the loader, the interpreter and the fuzzer: a
kind or option the language gains is drawn by the sequence property, or the property says why not (issue 26)."""

from __future__ import annotations

from pathlib import Path

from gradspec import contracts
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.fuzz import sequences
from gradspec.language import loader
from gradspec.language.step_kinds import needs, step_keys, step_kinds
from gradspec.running.interpreter import GRAD_MODE_BLOCKS, _Run
from hypothesis import HealthCheck, given, settings

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- step-kinds:begin -->\n", "<!-- step-kinds:end -->"


def every_key() -> set[str]:
    keys = {key for name, kind in step_kinds().items() for key in (name, *(f"{name}.{o}" for o in kind.options))}
    return keys | {"functions", *(f"functions.{option}" for option in sequences.function_options())}


def test_the_description_is_the_schemas_and_every_kind_runs():
    assert list(step_kinds()) == list(contracts.case_schema()["$defs"]["steps"])
    assert set(loader.BLOCK_STEPS) == {"no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "repeat",
                                       "saved_tensor_hooks"}
    assert set(loader.NESTED_UNDER_STEPS) == {"set_grad_enabled", "repeat", "saved_tensor_hooks"}
    assert GRAD_MODE_BLOCKS == {"no_grad", "enable_grad", "set_grad_enabled", "inference_mode"}
    dispatched = {"repeat", "threads", "barrier", "saved_tensor_hooks", *GRAD_MODE_BLOCKS}  # run by _Run.dispatch
    assert not [kind for kind in step_kinds() if kind not in dispatched and not hasattr(_Run, f"do_{kind}")]


def test_step_keys_name_what_the_capabilities_file_implies():
    steps = ["y = x * 2", "y += 1", {"backward": ["a", "b"], "retain_graph": True, "create_graph": False},
             {"no_grad": [{"grad": {"outputs": "l", "inputs": ["x"], "allow_unused": True}}]},
             {"register_hook": "x", "as": "h", "raises": "hook_error"}]
    assert list(step_keys(steps)) == ["compute", "op:mul", "compute", "inplace", "backward", "backward.retain_graph",
                                      "several_roots", "no_grad", "grad", "grad.allow_unused", "register_hook",
                                      "raises:hook_error"]
    assert needs(step_keys(steps)) == {"backward", "graph_lifetime", "several_roots", "inplace", "grad_mode", "grad",
                                       "allow_unused", "tensor_hooks"}


def test_every_kind_and_option_is_drawn_or_has_a_written_reason():
    assert set(sequences.DRAWN) | set(sequences.NOT_DRAWN) == every_key()
    assert not set(sequences.DRAWN) & set(sequences.NOT_DRAWN)
    assert all(reason.strip() for reason in sequences.NOT_DRAWN.values())


def test_the_sequence_property_really_draws_every_kind_and_option_it_says_it_draws():
    """Drawn for an engine with every capability of the reference engine: each key of DRAWN turns up in 600 draws
    (derandomized, so the test is the same on every run)."""
    everything = frozenset(ReferenceAdapter.capabilities)
    conventions = frozenset(name for name, entry in contracts.capabilities().items() if not entry.get("implied_by"))
    seen: set[str] = set()

    @settings(max_examples=600, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sequences.sequences(extras=everything, agreed=conventions))
    def draw(sequence):
        data = sequence.data
        seen.update(step_keys(data["steps"], frozenset(data.get("functions", {}))))
        seen.update({"functions", *(f"functions.{key}" for f in data.get("functions", {}).values() for key in f)})

    draw()
    assert sorted(set(sequences.DRAWN) - seen) == []


def test_the_readme_table_is_the_property_s_own():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "README.md lost its step-kinds table markers"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert table == sequences.coverage_markdown(), (
        "README.md's table of drawn step kinds is stale: paste `python -c 'from gradspec.fuzz.sequences import "
        "coverage_markdown; print(coverage_markdown(), end=\"\")'` between its markers")
