"""What a case may ask of a run, checked from its shapes before anything is allocated (issue 24, items 6 and 7).

Each test builds a small file that asked gradspec for gigabytes, unbounded work, or forms that one engine reads
differently from another, and that the loader accepted. CI runs this file under the 4 GB memory cap with
tests/test_hostile.py: what is refused here must be refused without allocating what it asks for.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from gradspec import contracts
from gradspec.adapters.reference_adapter import ReferenceAdapter
from gradspec.cli import main as cli
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import is_case_file, load_case
from gradspec.language.sizes import result_size
from gradspec.running.interpreter import ERROR, FAILED, run_case

from .conftest import VALID_CASE
from .test_numpy_style import samples

N = 3000  # a vector of 3,000 numbers is 15 KB of text; many of its ops make N * N = 9,000,000 elements


def case(steps: str, tensors: str = "", capabilities: str = "backward") -> str:
    """VALID_CASE with more tensors and steps (indented by two spaces) before its own."""
    text = VALID_CASE.replace("capabilities: [backward]", f"capabilities: [{capabilities}]")
    text = text.replace("  x: {value: [3.0], requires_grad: true}\n", f"  x: {{value: [3.0], requires_grad: true}}\n{tensors}")
    return text.replace("  - y = sum(x ** 2)\n", f"{steps}  - y = sum(x ** 2)\n")


def refused(path, pattern: str, peak_bytes: int = 16_000_000, seconds: float = 10.0) -> str:
    """Loading fails with a CaseFileError matching `pattern`, quickly and without allocating `peak_bytes`."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(CaseFileError, match=pattern) as info:
            load_case(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < peak_bytes, f"loading allocated {peak} bytes at its peak before refusing"
    assert time.monotonic() - start < seconds, "refusing took too long"
    return str(info.value)


def vector(n: int, value: str = "1.0") -> str:
    return "[" + ", ".join([value] * n) + "]"


VECTOR = f"  v: {{value: {vector(N)}}}\n"
ROW = f"  m: {{value: [{vector(N)}]}}\n"  # 1 x N
ZEROS = f"  i: {{value: {vector(N, '0')}, dtype: int64}}\n"
LIST = "[" + ", ".join(["0"] * N) + "]"

# (step, tensors, op named in the message): each result is N * N elements; each file is under 20 KB.
GROWING = [
    ("  - big = outer(v, v)\n", VECTOR, "outer"),
    ("  - big = diag(v)\n", VECTOR, "diag"),
    ("  - big = tile(v, reps=[3000])\n", VECTOR, "tile"),
    ("  - big = repeat(v, repeats=[3000])\n", VECTOR, "repeat"),
    (f"  - big = cat({', '.join(['v'] * N)})\n", VECTOR, "cat"),
    (f"  - big = stack({', '.join(['v'] * N)})\n", VECTOR, "stack"),
    (f"  - big = m[{LIST}]\n", ROW, "getitem"),
    ("  - big = index_select(m, i, dim=0)\n", ROW + ZEROS, "index_select"),
    ("  - big = expand(v, shape=[3000, 3000])\n", VECTOR, "expand"),
    ("  - big = broadcast_to(v, shape=[3000, 3000])\n", VECTOR, "broadcast_to"),
    (f"  - c = m * 1\n  - c[{LIST}] = v\n", ROW + VECTOR, r"c\[\.\.\.\]"),
]


@pytest.mark.parametrize(("steps", "tensors", "op"), GROWING,
                         ids=[g[2].replace("\\", "") for g in GROWING])
def test_ops_that_grow_are_bounded_from_their_shapes_before_numpy_allocates(write_case, steps, tensors, op):
    """outer, diag, tile, repeat, cat and list indexing allocated 3-6 GB from files under 460 KB before the element
    limit fired; here each asks for 72 MB, and is refused having allocated a fraction of that."""
    path = write_case(case(steps, tensors, "backward, view_ops, index_ops, setitem"))
    refused(path, rf"{op} would make a tensor of 9000000 elements, more than the limit of 1000000")


def test_a_step_that_expects_an_error_is_still_bounded(write_case):
    """The shapes of a step that expects an error were never looked at: the engines then allocated what it asked."""
    steps = "  - compute: big = outer(v, v)\n    raises: invalid_argument\n"
    refused(write_case(case(steps, VECTOR)), r":11: outer would make a tensor of 9000000 elements")


@pytest.mark.parametrize("op", sorted(contracts.ops()))
def test_every_ops_size_bound_holds_on_its_samples(op):
    """The bound is never below what numpy allocates, for every op of the vocabulary (a new op that grows its
    operands needs a rule in sizes.py)."""
    from gradspec.language.forwards import numpy_forward
    for operands, kwargs in samples(op):
        result = numpy_forward(op, list(operands), dict(kwargs))
        largest = max((np.size(r) for r in result), default=0) if isinstance(result, tuple) else np.size(result)
        assert result_size(op, [np.shape(o) for o in operands], dict(kwargs)) >= largest, (op, kwargs)


def test_size_bounds_are_exact_where_a_result_grows():
    assert result_size("outer", [(3,), (4,)], {}) == 12
    assert result_size("diag", [(3,)], {"diagonal": -2}) == 25  # a 5 x 5 matrix
    assert result_size("tile", [(2, 3)], {"reps": [4]}) == 24
    assert result_size("cat", [(2, 3), (5, 3)], {"dim": 0}) == 21
    assert result_size("index_select", [(4, 5), (7,)], {"dim": 1}) == 28
    assert result_size("getitem", [(4, 5, 6)], {"index": (("slice", 1, 3, None), ("list", (0, 0, 1)))}) == 2 * 3 * 6
    assert result_size("getitem", [(4, 5, 6)], {"index": ("...", 0, None)}) == 4 * 5
    assert result_size("expand", [(1, 3)], {"shape": [10**9, -1]}) == 3 * 10**9


REPEATED = "  - h = {start} * 1\n  - repeat: {count}\n    steps:\n{body}"


@pytest.mark.parametrize(("body", "count", "pattern"), [
    # 1,000 elements per pass, 100,000 passes: every pass's result stays alive in the graph (0.8 GB)
    ("      - h = h * v\n", 100_000, r":12: with its 100000 passes, this repeat would compute 100001000 elements in "
                                     r"all, more than the limit of 50000000 \(GRADSPEC_MAX_COMPUTED\)"),
    # a million passes of a million passes: 10^12 steps
    ("      - repeat: 1000000\n        steps:\n          - h = h + x\n", 1_000_000,
     r"this repeat would run \d+ steps in all, more than the limit of 1000000 \(GRADSPEC_MAX_STEPS\)"),
    # each pass doubles h: 2^40 elements after 40 passes, though the first pass alone looks small
    ("      - h = cat(h, h)\n", 40, r":12: the steps of a repeat change the shape of h from \[1\] to \[2\] in one pass"),
])
def test_repeats_are_bounded_by_what_all_their_passes_run(write_case, body, count, pattern):
    tensors = f"  v: {{value: {vector(1000)}}}\n"
    start = "v" if "v" in body else "x"
    refused(write_case(case(REPEATED.format(start=start, count=count, body=body), tensors)), pattern)


def test_threads_cannot_nest_and_are_counted_over_every_pass(write_case):
    """Nested blocks started 8^5 = 32,768 threads, and barriers that match across levels deadlocked; a threads
    block in a repeat starts its threads on every pass."""
    nested = ("  - threads:\n"
              "      - - barrier: all\n"
              "        - threads:\n"
              "            - - barrier: all\n"
              "            - - barrier: all\n"
              "      - - barrier: all\n"
              "        - y2 = x * 3\n")
    text = refused(write_case(case(nested, capabilities="backward, threads"), "nested.yaml"),
                   r"a threads block inside a body of `threads` is refused")
    assert ":12:" in text  # the inner block's line
    looped = "  - repeat: 100000\n    steps:\n      - threads:\n          - [y1 = x * 2]\n          - [y2 = x * 3]\n"
    refused(write_case(case(looped, capabilities="backward, threads"), "looped.yaml"),
            r"this repeat would start 200000 threads in all, more than the limit of 10000 \(GRADSPEC_MAX_THREADS\)")


def test_the_limits_of_a_whole_run_can_be_changed(write_case, monkeypatch):
    path = write_case(case(REPEATED.format(start="x", count=5, body="      - h = h + x\n")))
    load_case(path)
    monkeypatch.setenv("GRADSPEC_MAX_STEPS", "5")
    refused(path, r":11: with its 5 passes, this repeat would run 7 steps in all, more than the limit of 5 "
                  r"\(GRADSPEC_MAX_STEPS\)")


def test_the_shipped_deep_chain_stays_within_the_limits():
    from gradspec.corpus import cases_folder
    load_case(cases_folder() / "backward_pass" / "hundred-thousand-deep-chain.yaml")


class OutOfMemoryInRepeat(ReferenceAdapter):
    """An engine whose op runs out of memory on the third pass of a repeat."""

    name = "out-of-memory"

    def __init__(self, device, dtype):
        super().__init__(device, dtype)
        self.calls = 0

    def apply(self, op, args, kwargs):
        self.calls += op == "add"
        if self.calls == 3:
            raise MemoryError("cannot allocate 7.3 GiB")
        return super().apply(op, args, kwargs)


def test_running_out_of_memory_inside_a_repeat_is_no_verdict_on_the_engine(write_case):
    outcome = run_case(load_case(write_case(case(REPEATED.format(start="x", count=5, body="      - h = h + x\n")))),
                       OutOfMemoryInRepeat("cpu", "float64"))
    assert outcome.status == ERROR and "ran out of memory" in outcome.message, outcome.report()
    assert "repeat" in outcome.step


# -- item 7: what the loader accepted that an engine then tripped on ------------------------------------------------


def test_a_case_whose_steps_come_late_is_collected_and_validated_alike(write_case, pytester, capsys):
    """Only the first 64 KiB were searched for `steps:`: validate loaded such a file by name, pytest never saw it."""
    long = "derivation: |\n" + "".join(f"  line {i} of a long derivation, dy/dx = 2x = 6 at x = 3\n" for i in range(2000))
    text = VALID_CASE.replace("derivation: dy/dx = 2x = 6 at x = 3\n", long)
    assert text.index("\nsteps:") > 65536
    folder = pytester.path / "cases"
    folder.mkdir()
    (folder / "late.yaml").write_text(text)
    assert is_case_file(folder / "late.yaml")
    assert cli(["validate", str(folder)]) == 0 and "1 valid, 0 invalid" in capsys.readouterr().out
    result = pytester.runpytest("cases", "--engine", "reference", "--dtype", "float64", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["cases/late.yaml::reference-cpu-float64", "1 test collected*"])


@pytest.mark.parametrize(("subscript", "pattern"), [
    ("x[::-1]", r":11:\d+: in 'big = x\[::-1\]': a slice's step is a positive integer"),
    ("x[0:1:0]", r"a slice's step is a positive integer"),
    ("x[..., ...]", r"a subscript holds `...` at most once"),
    ("m[0, :, [0]]", r"its integers and integer lists stand side by side"),
    ("m[[0], None, [0]]", r"its integers and integer lists stand side by side"),
])
def test_subscripts_that_numpy_and_pytorch_read_differently_are_refused(write_case, subscript, pattern):
    """numpy took these and PyTorch raised (negative steps) or returned another shape (`x[0, :, [0, 1]]` is 2 x 3
    in numpy, 3 x 2 in PyTorch): the reference engine and the static checks agreed with each other, not with torch."""
    tensors = "  m: {value: [[[1.0, 2.0], [3.0, 4.0]]]}\n"
    refused(write_case(case(f"  - big = {subscript}\n", tensors, "backward, view_ops, index_ops")), pattern)


def test_subscripts_the_language_documents_still_load(write_case):
    tensors = "  m: {value: [[[1.0, 2.0], [3.0, 4.0]]]}\n"
    steps = "".join(f"  - s{i} = {s}\n" for i, s in enumerate(
        ["m[None]", "m[..., 0]", "m[0, 1:2]", "m[:, [1, 0]]", "m[:, 0, [1, 0]]", "m[0, [1, 1], [0, 1]]", "m[::2]"]))
    assert len(load_case(write_case(case(steps, tensors, "backward, view_ops, index_ops"))).steps) == 10


@pytest.mark.parametrize(("change", "pattern"), [
    (("  - backward: y", "  - register_node_prehook: x\n    as: before\n  - backward: y"),
     r":11:\d+: 'x' is a declared tensor, a leaf: it has no node \(grad_fn\) to hook"),
    (("  - backward: y", "  - register_node_hook: x\n    as: after\n  - backward: y"), r"'x' is a declared tensor"),
])
def test_node_hooks_on_a_leaf_are_refused(write_case, change, pattern):
    """Both engines failed in the adapter (`None.register_prehook`): an error blamed on nobody, from a broken case."""
    text = VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward, node_hooks]").replace(*change)
    refused(write_case(text), pattern)


def test_node_hooks_on_a_computed_value_and_on_a_declared_name_rebound_still_load(write_case):
    text = VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward, node_hooks]").replace(
        "  - backward: y", "  - register_node_prehook: y\n    as: before\n  - x = x * 2\n"
                           "  - register_node_hook: x\n    as: after\n  - backward: y")
    assert load_case(write_case(text)).steps[1].kind == "register_node_prehook"


FUNCTION = """functions:
  F:
    inputs: [a]
    forward: [{forward}]
    outputs: [o]
    save: []
    backward: ['ga = grad_o * 1']
    returns: [ga]
"""


@pytest.mark.parametrize(("forward", "pattern"), [
    ("'o = a * 1', 'p = a.grad'", r":12:\d+: a function's forward computes from plain values .*reading a `\.grad`"),
    ("'o = a * 1', 'o[0] = a'", r":12:\d+: a function's forward updates whole names .* never a subscript"),
])
def test_what_a_functions_forward_cannot_do_is_refused(write_case, forward, pattern):
    """Both engines' runs crashed inside gradspec (an AssertionError, a KeyError): errors, for a case's mistake."""
    text = VALID_CASE.replace("capabilities: [backward]", "capabilities: [backward, custom_function, setitem, read_grad]")
    text = text.replace("steps:\n", FUNCTION.format(forward=forward) + "steps:\n").replace("sum(x ** 2)", "sum(F(x))")
    refused(write_case(text), pattern)


OUT_OF_RANGE = case("  - compute: big = x[5]\n    raises: invalid_argument\n", capabilities="backward, view_ops")
PLANTED = '''
import numpy as np
from gradspec.adapters.reference_adapter import ReferenceAdapter


class CompiledIndexing(ReferenceAdapter):
    """Indexes as an engine written in C does: the refusal comes out of a compiled call at the adapter's line."""
    name = "compiled"

    def apply(self, op, args, kwargs):
        if op == "getitem":
            return np.arange(3)[kwargs["index"]]
        return super().apply(op, args, kwargs)


class RaisesItself(ReferenceAdapter):
    name = "raises-itself"

    def apply(self, op, args, kwargs):
        if op == "getitem":
            raise IndexError("the adapter's own bug")
        return super().apply(op, args, kwargs)
'''


def test_the_same_refusal_is_the_same_outcome_whatever_language_the_engine_is_written_in(write_case, tmp_path,
                                                                                         monkeypatch):
    """An index out of range: the reference engine's numpy raised inside the engine (failed); PyTorch's C++ raised at
    the adapter's line, which was taken for the adapter's bug (error). Both are the engine refusing the case."""
    (tmp_path / "planted_engines.py").write_text(PLANTED)
    monkeypatch.syspath_prepend(tmp_path)
    import planted_engines
    loaded = load_case(write_case(OUT_OF_RANGE))
    adapters = [ReferenceAdapter, planted_engines.CompiledIndexing]
    try:
        from gradspec.adapters.torch_adapter import TorchAdapter
        if TorchAdapter.unavailable_reason() is None:
            adapters.append(TorchAdapter)
    except ImportError:
        pass
    for adapter in adapters:
        outcome = run_case(loaded, adapter("cpu", "float64"))
        assert outcome.status == FAILED, (adapter.name, outcome.report())
        assert "expected error 'invalid_argument', got an unclassified error: IndexError" in outcome.message
    outcome = run_case(loaded, planted_engines.RaisesItself("cpu", "float64"))
    assert outcome.status == ERROR and "the adapter's own bug" in outcome.message, outcome.report()
