"""Load and validate case files into Cases; every problem names file, line, column and what was expected.

Validation has three layers: the YAML itself (yaml_positions), the JSON Schema in
spec/case.schema.json (structure, one step kind at a time so messages stay precise),
and meaning that a schema cannot express (names defined before use, known ops,
rules, error kinds and capabilities, complete capability lists).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import numpy as np
from gradspec import contracts
from gradspec.language.case import NO_WARNING, Case, ErrorExpectation, FunctionDef, Step, TensorDecl, as_list, frozen
from gradspec.language.errors import CaseFileError, CaseFileErrors, did_you_mean
from gradspec.language.expressions import (
    Apply,
    Call,
    ExpressionError,
    Num,
    Statement,
    functions_used,
    names_used,
    ops_used,
    parse_statement,
    reads_grad,
)
from gradspec.language.limits import limit
from gradspec.language.static_checks import advice, shape_problems
from gradspec.language.step_kinds import block_kinds, step_kinds
from gradspec.language.yaml_positions import YamlError, load_with_positions, position_of

BLOCK_STEPS = block_kinds()  # no_grad, enable_grad, set_grad_enabled, inference_mode, repeat, saved_tensor_hooks
NESTED_UNDER_STEPS = tuple(k for k in BLOCK_STEPS if step_kinds()[k].body == "steps")  # others: under their own key
# What a `functions:` entry implies (capabilities.yaml's implied_by): each option an engine may lack.
FUNCTION_OPTIONS = {"non_differentiable": "custom_non_differentiable", "dirty": "custom_dirty",
                    "materialize_grads": "custom_materialize_grads", "once_differentiable": "custom_once_differentiable"}
FUNCTION_TOKENS = frozenset({"custom_function", "custom_multiple_outputs", *FUNCTION_OPTIONS.values()})
# Other implied tokens that are neither a step kind nor an option: a backward of several outputs at once.
EXTRA_TOKENS = FUNCTION_TOKENS | {"several_roots", "reentrant_backward"}


def case_id(path: Path, root: Path | None = None) -> str:
    """The stable id of a case: its path below the nearest folder named `cases`, or below root."""
    path = Path(path).resolve()
    if root is not None:
        return path.relative_to(Path(root).resolve()).as_posix()
    for parent in path.parents:
        if parent.name == "cases":
            return path.relative_to(parent).as_posix()
    return path.name


CASE_MARKERS = (re.compile(r"^schema_version\s*:", re.M), re.compile(r"^steps\s*:", re.M))
# Top-level keys that, with `steps:`, make a file under a `cases` folder a case that forgot its schema_version.
CASE_KEYS = re.compile(r"^(rules|tensors|title|derivation|capabilities|source|functions)\s*:", re.M)


def is_case_file(path: str | Path) -> bool:
    """Whether a YAML file is a gradspec case file: its top level has `schema_version:` and `steps:` keys,
    or it lies under a folder named `cases` and has `steps:` with another key of a case (`rules:`, `tensors:`,
    `title:`, `derivation:`, `capabilities:`, `source:`, `functions:`).

    Both keys are required by spec/case.schema.json, so a case file missing either is broken anyway;
    any other YAML file (a CI workflow, another project's test data) is none of gradspec's business.
    A file under a `cases` folder that has steps and another case key but no `schema_version` is a case
    that forgot it: it is collected, so that loading it says so at its line, instead of being skipped
    without a word (another project's data in a folder named `cases`, `steps: 4`, is still left alone).
    Only a regular file is read, and of it no more than a case file may hold (GRADSPEC_MAX_FILE_BYTES): its keys
    may come in any order, so a valid case whose `steps:` comes late is still found (`validate` and pytest agree),
    and a larger file with those keys early is collected, to be refused by loading, not skipped.
    """
    path = Path(path)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(limit("GRADSPEC_MAX_FILE_BYTES"))
    except OSError:
        return False
    version, steps = (bool(marker.search(head)) for marker in CASE_MARKERS)
    if not steps or version:
        return steps
    return bool(CASE_KEYS.search(head)) and any(parent.name == "cases" for parent in path.resolve().parents)


def loops_back(folder: Path) -> bool:
    """Whether a folder is a symbolic link to itself or to a folder around it (`.`, `..`): walking it never ends."""
    if not folder.is_symlink():
        return False
    target, parent = folder.resolve(), folder.parent.resolve()
    return target == parent or target in parent.parents


def find_case_files(folder: Path) -> list[Path]:
    """The case files under a folder, each file once (by its resolved path), never walking a looping link."""
    found: dict[Path, Path] = {}
    for current, folders, files in os.walk(folder, followlinks=True):
        folders[:] = [name for name in folders if not loops_back(Path(current) / name)]
        for name in files:
            path = Path(current) / name
            if is_case_file(path):
                found.setdefault(path.resolve(), path)
    return sorted(found.values())


def load_case(path: str | Path, root: Path | None = None) -> Case:
    """Read, validate and build one case file; raise CaseFileError for every problem found.

    Whatever goes wrong while loading is this file's error: a limit (see limits), a regular
    file that cannot be read, or anything the YAML and numeric layers raise on hostile input.
    """
    path = Path(path)
    text = _read(path)
    try:
        data, positions = load_with_positions(text)
        return build_case(data, str(path), case_id(path, root), positions)
    except YamlError as exc:
        raise CaseFileError(str(path), exc.line, exc.column, exc.message) from None
    except CaseFileError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        raise CaseFileError(str(path), None, None, f"could not be loaded ({type(exc).__name__}: "
                                                   f"{str(exc)[:200]})") from None


def _read(path: Path) -> str:
    """The text of a regular file no larger than the limit (a FIFO or /dev/zero would never end)."""
    try:
        if not path.exists():
            raise CaseFileError(str(path), None, None, "cannot read the file: there is no such file")
        if not path.is_file():
            raise CaseFileError(str(path), None, None, "not a regular file (a case file must be one)")
        size, most = path.stat().st_size, limit("GRADSPEC_MAX_FILE_BYTES")
        if size > most:
            raise CaseFileError(str(path), None, None, f"{size} bytes, more than the limit of {most} "
                                                       "(GRADSPEC_MAX_FILE_BYTES)")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(str(path), None, None, f"cannot read the file: {exc}") from None


def build_case(data: Any, path: str, identifier: str, positions: dict | None = None, *, schema: bool = True) -> Case:
    """Validate plain data (as YAML gives it) and build the Case. Positions may be empty.

    schema=False skips the JSON Schema layer (the costliest, there to give a person precise
    messages) for data that code builds in a shape tests vouch for: the fuzzer's draws, built
    thousands of times a minute. The checks of meaning still run.
    """
    return _Builder(path, positions or {}, schema).build(data, identifier)


def needed_capabilities(data: dict) -> frozenset[str]:
    """The capabilities a case's steps, functions and expectations need (what its `capabilities` must list), for code
    that writes cases: the fuzzer's draws and staged cases."""
    builder = _Builder("<needed capabilities>", {}, schema=False)
    builder.build({**data, "capabilities": sorted(contracts.capabilities())}, "<needed capabilities>")
    return frozenset(name for name, entry in contracts.capabilities().items()
                     if builder.implied & set(entry.get("implied_by", [])))


@cache
def _validator(kind: str | None) -> jsonschema.protocols.Validator:
    """A validator for one step kind, or for the file around its steps (kind None).

    Steps are validated one at a time by their kind, which gives precise messages, so the
    file-level validator leaves step items alone instead of trying every step shape.
    """
    schema = contracts.case_schema()
    if kind is None:
        steps = dict(schema["properties"]["steps"], items={})
        schema = dict(schema, properties=dict(schema["properties"], steps=steps))
    else:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/steps/{kind}"}
    return jsonschema.validators.validator_for(schema)(schema)


class _Builder:
    def __init__(self, path: str, positions: dict, schema: bool = True):
        self.path, self.positions, self.schema = path, positions, schema
        self.defined: set[str] = set()
        self.leaves: set[str] = set()  # declared tensors no step has rebound or updated yet: they have no node
        self.hooks: set[str] = set()
        self.saved_hook_labels: set[str] = set()
        self.blocks: list[str] = []  # the kinds of the blocks around the step being read, outermost first
        self.implied: set[str] = set()
        self.problems: list[CaseFileError] = []  # every problem, so that an author sees them all at once
        self.mentioned: set[str] = set()
        self.functions: dict[str, FunctionDef] = {}
        self.function_names: frozenset[str] = frozenset()  # callable in steps once every function is read

    # -- reporting ---------------------------------------------------------

    def fail(self, where: tuple, message: str, column_shift: int = 0) -> None:
        line, column = position_of(self.positions, where)
        if column is not None:
            column += column_shift
        raise CaseFileError(self.path, line, column, message)

    def check_schema(self, validator, instance: Any, base: tuple) -> None:
        if not self.schema:
            return
        errors = list(validator.iter_errors(instance))
        if errors:
            error = jsonschema.exceptions.best_match(errors)
            where, message = _describe(error)
            self.fail(base + where, message)

    # -- building ----------------------------------------------------------

    def build(self, data: Any, identifier: str) -> Case:
        if not isinstance(data, dict):
            self.fail((), f"expected a mapping of case keys at the top of the file, got {type(data).__name__}")
        self.check_schema(_validator(None), data, ())  # without the file's shape, nothing else can be checked
        self.collect(self.check_rules, data["rules"])
        tensors = tuple(t for name, decl in data["tensors"].items() if (t := self.collect(self.tensor, name, decl)))
        self.functions = {name: f for name, raw in data.get("functions", {}).items()
                          if (f := self.collect(self.function, name, raw))}
        self.function_names = frozenset(data.get("functions", {}))  # a broken one is still a name, not an unknown op
        steps = tuple(self.steps(data["steps"], ("steps",)))
        self.collect(self.check_capabilities, data["capabilities"])
        if self.problems:
            raise self.problems[0] if len(self.problems) == 1 else CaseFileErrors(self.problems)
        tolerance = {k: v for k, v in data.get("tolerance", {}).items() if k != "reason"}
        case = Case(
            id=identifier, path=self.path, title=data["title"], rules=tuple(data["rules"]),
            source=data["source"], derivation=data["derivation"],
            capabilities=frozenset(data["capabilities"]), tensors=tensors, steps=steps,
            dtypes=tuple(data["dtypes"]) if "dtypes" in data else None, tolerance=frozen(tolerance),
            ops=frozenset(token[3:] for token in self.implied if token.startswith("op:")),
            functions=MappingProxyType(self.functions),
        )
        if not self.schema:  # the fuzzer's draws: consistent by construction, and built by the thousand
            return case
        problems = [CaseFileError(self.path, p.line, None, p.message) for p in shape_problems(case)]
        if problems:
            raise problems[0] if len(problems) == 1 else CaseFileErrors(problems)
        return dataclasses.replace(case, advice=tuple(advice(case, self.implied | self.mentioned)))

    def function(self, name: str, raw: dict) -> FunctionDef:
        """A case function: its forward over its inputs, its backward over what it saved and grad_<output>."""
        base = ("functions", name)
        if name in contracts.ops():
            self.fail(base, f"function {name!r} has the name of a vocabulary op")
        inputs, outputs = list(raw["inputs"]), list(raw["outputs"])
        for key, names in (("inputs", inputs), ("outputs", outputs)):
            if len(set(names)) != len(names):
                self.fail(base + (key,), f"each of the function's {key} is named once")
        outer, self.defined = self.defined, set(inputs)  # the forward sees its inputs only
        leaves, self.leaves = self.leaves, set()  # and its names are its own
        try:
            forward = tuple(self.statement(text, base + ("forward", i)) for i, text in enumerate(raw["forward"]))
            for key in ("outputs", "save"):
                for index, value in enumerate(raw.get(key, [])):
                    if value not in self.defined:
                        self.fail(base + (key, index), f"{value!r} in the function's {key} is neither an input nor a "
                                                       f"value its forward computes{did_you_mean(value, self.defined)}")
            grads = {f"grad_{output}" for output in outputs}
            self.defined = set(raw.get("save", [])) | grads  # the backward sees what was saved and the gradients
            backward = tuple(self.statement(text, base + ("backward", i)) for i, text in enumerate(raw["backward"]))
            for index, value in enumerate(raw["returns"]):
                if value is not None:
                    self.require_defined(value, base + ("returns", index), "what backward returns")
        finally:
            self.defined, self.leaves = outer, leaves
        for key, statements in (("forward", forward), ("backward", backward)):
            for index, statement in enumerate(statements):
                if reads_grad(statement.expr):
                    self.fail(base + (key, index), f"a function's {key} computes from plain values (the engine runs "
                                                   "it outside autograd): reading a `.grad` has no meaning there")
                if statement.inplace_op == "setitem":
                    self.fail(base + (key, index), f"a function's {key} updates whole names (`o += 1`), never a "
                                                   "subscript (`o[0] = v`): write the value out of place")
        for key, among, what in (("non_differentiable", outputs, "outputs"), ("dirty", inputs, "inputs")):
            for index, value in enumerate(raw.get(key, [])):
                if value not in among:
                    self.fail(base + (key, index), f"{value!r} is not one of the function's {what} {among}")
        for index, value in enumerate(raw.get("dirty", [])):
            if value not in outputs:
                self.fail(base + ("dirty", index), f"a dirty input is returned among the outputs: add {value!r} there")
        self.implied.add("custom_function")
        for key, token in FUNCTION_OPTIONS.items():
            if (raw.get(key) is False) if key == "materialize_grads" else raw.get(key) not in (None, False, []):
                self.implied.add(token)  # materialized gradients are the default: only false needs the option
        if len(outputs) > 1:
            self.implied.add("custom_multiple_outputs")
        return FunctionDef(name, tuple(inputs), forward, tuple(outputs), tuple(raw.get("save", [])), backward,
                           tuple(raw["returns"]), tuple(raw.get("non_differentiable", [])), tuple(raw.get("dirty", [])),
                           raw.get("materialize_grads", True), raw.get("once_differentiable", False),
                           raw.get("reads_saved", 1))

    def check_rules(self, cited: list[str]) -> None:
        known = contracts.rules()
        for index, rule in enumerate(cited):
            if rule not in known:
                hint = did_you_mean(rule, known)
                self.fail(("rules", index), f"unknown rule {rule!r}{hint}; rules are defined in spec/semantics.md")

    def tensor(self, name: str, decl: dict) -> TensorDecl:
        where = ("tensors", name, "value")
        value = self.array(decl["value"], where)
        dtype = decl.get("dtype")
        if dtype == "int64":
            if not (np.all(np.isfinite(value)) and np.all(value == np.round(value))):
                self.fail(where, "an int64 tensor needs whole, finite numbers")
            value = value.astype(np.int64)
        self.defined.add(name)
        self.leaves.add(name)
        return TensorDecl(name, value, bool(decl.get("requires_grad", False)), dtype)

    def array(self, value: Any, where: tuple) -> np.ndarray:
        try:
            array = np.array(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            self.fail(where, "expected a number or nested lists of equal length (a rectangular array)")
        if array.size > limit("GRADSPEC_MAX_ELEMENTS"):
            self.fail(where, f"{array.size} elements, more than the limit of {limit('GRADSPEC_MAX_ELEMENTS')} "
                             "(GRADSPEC_MAX_ELEMENTS)")
        array.setflags(write=False)  # shared by every engine and item: an adapter must not change it
        return array

    def collect(self, check, *args):
        """Run one check; a problem is recorded and the others still run. None where the check failed."""
        try:
            return check(*args)
        except CaseFileError as problem:
            self.problems.append(problem)
            return None

    def steps(self, raw_steps: list, base: tuple) -> Iterable[Step]:
        for index, raw in enumerate(raw_steps):
            step = self.collect(self.step, raw, base + (index,))
            if step is None:
                self.define_anyway(raw)
            else:
                yield step

    def define_anyway(self, raw: Any) -> None:
        """The names a broken step meant to define, so that later steps are not blamed for its problem."""
        text = raw if isinstance(raw, str) else raw.get("compute") if isinstance(raw, dict) else None
        if isinstance(text, str) and "=" in text:
            target = text.split("=", 1)[0].strip().rstrip("+-*/").strip()
            if target.isidentifier():
                self.bind([target])
        if isinstance(raw, dict):
            for call in (raw.get("grad"), raw.get("derivative")):
                if isinstance(call, dict) and "as" in call:
                    self.defined.update(n for n in as_list(call["as"]) if isinstance(n, str))
            if "as" in raw and isinstance(raw["as"], str):
                self.hooks.add(raw["as"])

    def step(self, raw: Any, where: tuple) -> Step:
        if isinstance(raw, str):
            raw = {"compute": raw}
            where_text = where
        else:
            where_text = where + ("compute",)
        kind = self.step_kind(raw, where)
        self.check_schema(_validator(kind), raw, where)
        line = position_of(self.positions, where)[0]
        raises = self.error_expectation(raw.get("raises"), where + ("raises",))
        warns = self.warnings(raw.get("warns"), where + ("warns",))
        if raises:
            self.implied.add(f"raises:{raises.kind}")
        if warns:
            self.implied.add("warns")
            if "threads" in self.blocks:
                self.fail(where + ("warns",), "Python's warnings cannot be told apart between threads: expect "
                                              "warnings outside the threads block")
        statement, body = None, ()
        if kind == "compute":
            statement = self.statement(raw["compute"], where_text)
            kind = {None: "compute", "setitem": "setitem"}.get(statement.inplace_op, "inplace")
        elif kind in BLOCK_STEPS:
            nested_where = where + (("steps",) if kind in NESTED_UNDER_STEPS else (kind,))
            if kind == "saved_tensor_hooks":
                self.saved_hook_labels.add(raw[kind])
            body = self.block(kind, raw["steps"] if kind in NESTED_UNDER_STEPS else raw[kind], nested_where)
            if kind == "repeat" and any(inner.raises or inner.warns for inner in body):
                self.fail(nested_where, "the steps of a repeat expect no error or warning: expect those outside it")
        elif kind == "threads":
            if "threads" in self.blocks:
                self.fail(where, "a threads block inside a body of `threads` is refused: its barriers could not be told "
                                 "from the outer block's, and nested blocks multiply their threads; run the blocks one "
                                 "after another")
            body = self.threads(raw["threads"], where + ("threads",))
        elif kind == "barrier":
            if "threads" not in self.blocks:
                self.fail(where, "a barrier belongs inside a body of `threads`: the threads of that block meet there")
            if "repeat" in self.blocks[self.blocks.index("threads"):]:
                self.fail(where, "a barrier inside a repeat cannot be matched across threads: put it outside the repeat")
        else:
            self.check_names(kind, raw, where)
        self.note_capabilities(kind, raw)
        return Step(kind, frozen(raw), line, statement, body, raises, warns)

    def block(self, kind: str, nested: list, where: tuple) -> tuple[Step, ...]:
        self.blocks.append(kind)
        try:
            return tuple(self.steps(nested, where))
        finally:
            self.blocks.pop()

    def threads(self, bodies: list, where: tuple) -> tuple[Step, ...]:
        """One `thread` step per body. Each body sees the names defined before the block and its own (another
        thread's may not exist yet when it runs); after the block, every body's names are defined."""
        before, after, threads = set(self.defined), set(self.defined), []
        for index, body in enumerate(bodies):
            self.defined = set(before)
            steps = self.block("threads", body, where + (index,))
            threads.append(Step("thread", frozen({"thread": index}), position_of(self.positions, where + (index,))[0],
                                body=steps))
            after |= self.defined
        self.defined = after
        counts = [_barriers(thread.body) for thread in threads]
        if len(set(counts)) > 1:
            self.fail(where, f"every thread needs the same number of barriers to meet at, got {counts}")
        return tuple(threads)

    def step_kind(self, raw: Any, where: tuple) -> str:
        if not isinstance(raw, dict):
            self.fail(where, f"expected a step: a compute string or a mapping with one step key, got {type(raw).__name__}")
        kinds = step_kinds()
        present = [key for key in raw if key in kinds]
        if len(present) > 1:
            self.fail(where, f"a step has exactly one step key, found {present}")
        if not present:
            unknown = [key for key in raw if key not in ("raises", "warns", "as", "steps")]
            hint = did_you_mean(unknown[0], kinds) if unknown else ""
            self.fail(where, f"no step key in {sorted(raw)}{hint}; step keys are: {', '.join(kinds)}")
        return present[0]

    def statement(self, text: str, where: tuple) -> Statement:
        try:
            statement = parse_statement(text, self.function_names)
        except ExpressionError as exc:
            self.fail(where, f"in {text!r}: {exc.message}", exc.column)
        if isinstance(statement.expr, Num) and not statement.inplace_op:
            self.fail(where, f"in {text!r}: a compute step must produce a tensor; declare constants under `tensors:`")
        used = names_used(statement.expr) + ([statement.target] if statement.inplace_op else [])
        for name in used:
            self.require_defined(name, where, text)
        for op in ops_used(statement.expr):
            self.implied.add(f"op:{op}")
        self.check_function_calls(statement, where, text)
        if reads_grad(statement.expr):
            self.implied.add("read_grad")
        self.bind(statement.names_bound)
        return statement

    def bind(self, names: Iterable[str]) -> None:
        """Names a step (re)binds or updates in place: defined from here on, and no longer surely leaves."""
        names = set(names)
        self.defined |= names
        self.leaves -= names

    def check_function_calls(self, statement, where: tuple, text: str) -> None:
        """A call of a case function gives it one tensor per input; several outputs are unpacked, each once."""
        for name in functions_used(statement.expr):
            if name not in self.functions:
                self.fail(where, f"in {text!r}: function {name!r} could not be defined (see its own error)")
        expr = statement.expr
        for call in _applies(expr):
            function = self.functions[call.function]
            if len(call.args) != len(function.inputs):
                self.fail(where, f"in {text!r}: {call.function} takes {len(function.inputs)} input(s) "
                                 f"({', '.join(function.inputs)}), got {len(call.args)}")
            if call is not expr and len(function.outputs) > 1:
                self.fail(where, f"in {text!r}: {call.function} has {len(function.outputs)} outputs: unpack them in a "
                                 "step of their own, as in `a, b = ...`")
        if isinstance(expr, Apply):
            count, wanted = len(self.functions[expr.function].outputs), len(statement.targets) or 1
            if count != wanted:
                self.fail(where, f"in {text!r}: {expr.function} has {count} output(s); the step binds {wanted}")

    def require_defined(self, name: str, where: tuple, context: str = "") -> None:
        if name not in self.defined:
            inside = f" in {context!r}" if context else ""
            self.fail(where, f"name {name!r}{inside} is not defined before this step{did_you_mean(name, self.defined)}")

    def check_names(self, kind: str, raw: dict, where: tuple) -> None:
        """Tensor names must be defined before use; hook labels must be registered before removal."""
        value = raw[kind]
        if kind == "backward" and isinstance(value, list):
            for index, name in enumerate(value):
                self.require_defined(name, where + (kind, index))
            if "gradient" in raw:
                self.fail(where + ("gradient",), "several outputs take `gradients`, one per output")
            if "gradients" in raw and len(raw["gradients"]) != len(value):
                self.fail(where + ("gradients",), f"{len(value)} outputs take {len(value)} gradients, one each")
        elif kind == "backward" and "gradients" in raw:
            self.fail(where + ("gradients",), "one output takes `gradient`; `gradients` is for a list of outputs")
        elif kind in ("backward", "retain_grad", "register_hook", "register_post_accumulate_grad_hook", "detach_",
                      "register_node_prehook", "register_node_hook"):
            self.require_defined(value, where + (kind,))
            if kind.startswith("register_node") and value in self.leaves:
                self.fail(where + (kind,), f"{value!r} is a declared tensor, a leaf: it has no node (grad_fn) to hook; "
                                           "register node hooks on a value a step computes from it")
            returns = raw.get("returns")
            if kind == "register_hook" and isinstance(returns, dict) and "backward" in returns:
                self.require_defined(returns["backward"], where + ("returns", "backward"))
                self.implied.add("reentrant_backward")
        elif kind in ("set_grad", "requires_grad_"):
            for name in value:
                self.require_defined(name, where + (kind, name))
        elif kind == "zero_grad":
            for name in as_list(value):
                self.require_defined(name, where + (kind,))
        elif kind == "remove_hook":
            if value not in self.hooks:
                self.fail(where + (kind,), f"no hook registered as {value!r} before this step{did_you_mean(value, self.hooks)}")
        elif kind == "grad":
            self.check_grad_call(value, where + ("grad",))
        elif kind == "derivative":
            self.check_derivative(value, where + ("derivative",))
        elif kind == "expect":
            self.check_expect(value, where + ("expect",))
        if kind == "backward":
            for name in as_list(raw.get("inputs", [])):
                self.require_defined(name, where + ("inputs",))
            self.check_forms(raw, where, {"backward": raw["backward"], "inputs": raw.get("inputs"),
                                          "gradient": None if "gradient" not in raw else [raw["gradient"]],
                                          "gradients": raw.get("gradients")})
            if isinstance(raw.get("gradient"), str):
                self.require_defined(raw["gradient"], where + ("gradient",))
        if kind in ("register_hook", "register_post_accumulate_grad_hook", "register_node_prehook", "register_node_hook"):
            self.hooks.add(raw["as"])

    def check_grad_call(self, call: dict, where: tuple) -> None:
        for key in ("outputs", "inputs"):
            for name in as_list(call[key]):
                self.require_defined(name, where + (key,))
        self.check_forms(call, where, {key: call.get(key) for key in ("outputs", "inputs", "grad_outputs")})
        for index, item in enumerate(call.get("grad_outputs", [])):
            if isinstance(item, str):
                self.require_defined(item, where + ("grad_outputs", index))
        if "as" in call:
            bound = as_list(call["as"])
            if len(bound) != len(as_list(call["inputs"])):
                self.fail(where + ("as",), f"`as` binds {len(bound)} name(s) but `inputs` has {len(as_list(call['inputs']))}")
            self.bind(bound)

    def check_forms(self, raw: dict, where: tuple, arguments: dict) -> None:
        """`forms`: each names an argument the call has, and a bare tensor stands for one tensor only."""
        for key, form in raw.get("forms", {}).items():
            if key not in arguments or arguments[key] is None:
                self.fail(where + ("forms", key), f"`forms` gives the form of {key!r}, which this call does not pass")
            count = len(as_list(arguments[key]))
            if form == "tensor" and count != 1:
                self.fail(where + ("forms", key), f"{key!r} holds {count} tensors: a bare tensor stands for exactly "
                                                  "one; write it as a list or a tuple")
        if raw.get("forms", {}).get("gradient") in ("list", "tuple") and raw.get("forms", {}).get("backward") in \
                (None, "tensor") and not isinstance(raw.get("backward"), list):
            self.fail(where + ("forms", "gradient"), "tensor.backward takes its gradient as a bare tensor; a list or a "
                                                     "tuple of gradients is autograd.backward's (forms: {backward: list})")

    def check_derivative(self, call: dict, where: tuple) -> None:
        self.require_defined(call["of"], where + ("of",))
        for name in as_list(call["wrt"]):
            self.require_defined(name, where + ("wrt",))
        if isinstance(call.get("gradient"), str):
            self.require_defined(call["gradient"], where + ("gradient",))
        bound = as_list(call["as"])
        if len(bound) != len(as_list(call["wrt"])):
            self.fail(where + ("as",), f"`as` binds {len(bound)} name(s) but `wrt` has {len(as_list(call['wrt']))}")
        self.bind(bound)

    def check_expect(self, expect: dict, where: tuple) -> None:
        for key in ("value", "grad", "requires_grad", "is_leaf", "has_grad_fn", "is_inference", "grad_dtype"):
            for name in expect.get(key, {}):
                self.require_defined(name, where + (key, name))
        labels = [(("hook_calls", i, "hook"), call["hook"]) for i, call in enumerate(expect.get("hook_calls", []))]
        labels += [(("hook_grads", label), label) for label in expect.get("hook_grads", {})]
        for path, label in labels:
            if label not in self.hooks:
                self.fail(where + path, f"no hook registered as {label!r}{did_you_mean(label, self.hooks)}")
        if "hook_calls" in expect and "hook_grads" in expect:
            self.fail(where, "use either hook_calls (in order) or hook_grads (per hook), not both in one expect")
        for index, call in enumerate(expect.get("saved_hook_calls", [])):
            which = "pack" if "pack" in call else "unpack"
            if which not in call:
                self.fail(where + ("saved_hook_calls", index), "each saved-hook call names `pack: label` or "
                                                              "`unpack: label`, and its `value`")
            if call[which] not in self.saved_hook_labels:
                self.fail(where + ("saved_hook_calls", index, which), f"no saved_tensor_hooks block labelled "
                          f"{call[which]!r} before this step{did_you_mean(call[which], self.saved_hook_labels)}")

    def error_expectation(self, raw: Any, where: tuple) -> ErrorExpectation | None:
        if raw is None:
            return None
        kind, match = (raw, None) if isinstance(raw, str) else (raw["kind"], raw.get("match"))
        known = contracts.error_kinds()
        if kind not in known:
            self.fail(where, f"unknown error kind {kind!r}{did_you_mean(kind, known)}; kinds are listed in spec/errors.yaml")
        return ErrorExpectation(kind, match)

    def warnings(self, raw: Any, where: tuple) -> tuple[str, ...]:
        if raw is None:
            return ()
        if raw == NO_WARNING:  # `warns: none`: the step must not warn any kind of errors.yaml
            return (NO_WARNING,)
        known = contracts.warning_kinds()
        for kind in as_list(raw):
            if kind not in known:
                hint = did_you_mean(kind, known)
                self.fail(where, f"unknown warning kind {kind!r}{hint}; kinds are listed in spec/errors.yaml")
        return tuple(as_list(raw))

    def note_capabilities(self, kind: str, raw: dict) -> None:
        self.implied.add(kind)
        if kind == "backward" and (isinstance(raw["backward"], list)
                                   or (raw.get("forms") or {}).get("backward") in ("list", "tuple")):
            self.implied.add("several_roots")  # autograd.backward(outputs, ...), one output in a list included
        options = raw.get(kind) if kind == "grad" else raw
        if isinstance(options, dict):
            self.implied.update(f"{kind}.{key}" for key, value in options.items() if value not in (False, None))
            # An option given as false is not needed to run the step, but it is used: advice() counts it.
            self.mentioned.update(f"{kind}.{key}" for key, value in options.items() if value is False)
        if kind == "expect":
            self.implied.update(f"expect.{key}" for key in raw["expect"])
            for key in ("backward_calls", "hook_calls"):
                if any("grad_mode" in call for call in raw["expect"].get(key, ()) if isinstance(call, dict)):
                    self.implied.add(f"expect.{key}.grad_mode")

    def check_capabilities(self, declared: list[str]) -> None:
        known = contracts.capabilities()
        for index, name in enumerate(declared):
            if name not in known:
                hint = did_you_mean(name, known)
                self.fail(("capabilities", index),
                          f"unknown capability {name!r}{hint}; capabilities are listed in spec/capabilities.yaml")
        needed = {name for name, entry in known.items() if self.implied & set(entry.get("implied_by", []))}
        missing = sorted(needed - set(declared))
        if missing:
            self.fail(("capabilities",), f"the steps need capabilities {missing} that `capabilities` does not list")


def _barriers(steps: tuple[Step, ...]) -> int:
    """The barriers a thread's body reaches, in nested blocks too (never in a repeat: the loader refuses that)."""
    return sum(1 if step.kind == "barrier" else _barriers(step.body) for step in steps)


def _applies(expr) -> list[Apply]:
    """Every call of a case function in an expression, outermost first."""
    if isinstance(expr, Apply):
        return [expr] + [inner for arg in expr.args for inner in _applies(arg)]
    if isinstance(expr, Call):
        return [inner for arg in expr.args for inner in _applies(arg)]
    return []


def _describe(error: jsonschema.ValidationError) -> tuple[tuple, str]:
    """Turn a jsonschema error into (path, message) a case author can act on."""
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        extra = sorted(key for key in error.instance if key not in allowed)
        if extra and allowed:
            key = extra[0]
            expected = ", ".join(sorted(allowed))
            return path + (key,), f"unknown key {key!r}{did_you_mean(key, allowed)}; expected one of: {expected}"
    if error.validator == "required":
        return path, f"missing required key: {error.message.split(' is a required')[0]}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(error.absolute_path):
            return _describe(deepest)
    if error.validator == "const":
        return path, f"expected {error.validator_value!r}, got {error.instance!r}"
    if error.validator == "enum":
        return path, f"expected one of {error.validator_value}, got {error.instance!r}"
    if error.validator == "type":
        return path, f"expected {error.validator_value}, got {error.instance!r}"
    if error.validator == "pattern":
        return path, f"{error.instance!r} does not have the expected form ({error.validator_value})"
    description = schema.get("description")
    hint = f"; expected: {description}" if description else ""
    return path, f"{error.message}{hint}"
