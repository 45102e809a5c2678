"""Load YAML into plain Python objects while remembering where each value came from.

jsonschema and the loader report errors by path (('steps', 3, 'backward')); this
module maps every such path to the line and column of the node in the file. It also
rejects duplicate mapping keys, which PyYAML would silently overwrite.
"""

from __future__ import annotations

from typing import Any

import yaml
from gradspec.language.limits import limit

try:  # The C parser is several times faster; the constructor stays PyYAML's safe one.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader

Path = tuple  # a tuple of str keys and int indexes
Position = tuple[int, int]  # 1-based line and column


class YamlError(Exception):
    """The text is not YAML, or has a duplicate key; carries a 1-based position."""

    def __init__(self, message: str, line: int | None, column: int | None):
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def load_with_positions(text: str) -> tuple[Any, dict[Path, Position]]:
    """Parse one YAML document; return the data and a map from path to position (a mapping entry's is its key's)."""
    _check_events(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        positions: dict[Path, Position] = {}
        return _build(loader, node, (), positions), positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context or ""
        if exc.context_mark is not None and exc.problem_mark is not None and exc.context:
            line, column = _one_based(exc.context_mark)
            context = f"{exc.context} (which starts at line {line}, column {column}),"
        problem = " ".join(p for p in (context, exc.problem) if p)
        raise YamlError(f"not valid YAML: {problem}", *_one_based(mark)) from None
    finally:
        loader.dispose()


def _check_events(text: str) -> None:
    """Refuse, before anything is composed, what could make composing unbounded.

    Aliases (`*name`) are refused outright: case files never need them, and a few hundred
    bytes of nested aliases expand into billions of nodes. Nesting is bounded (see limits):
    PyYAML's C composer recurses and crashes the process on deep enough input. The event
    stream is produced without recursion, so this pass itself is safe.
    """
    depth, deepest = 0, limit("GRADSPEC_MAX_DEPTH")
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise YamlError("YAML aliases (*name) are not allowed in case files: they can expand without bound",
                                *_one_based(event.start_mark))
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > deepest:
                    raise YamlError(f"collections nested deeper than {deepest} levels (GRADSPEC_MAX_DEPTH)",
                                    *_one_based(event.start_mark))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError:
        return  # composing reports the same problem with its context


def _one_based(mark) -> tuple[int | None, int | None]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def _build(loader, node, path: Path, positions: dict[Path, Position]) -> Any:
    positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise YamlError("a mapping key must be a plain value (a name or a number), not a collection",
                                *_one_based(key_node.start_mark))
            if key in result:
                raise YamlError(f"duplicate key {key!r}", *_one_based(key_node.start_mark))
            # A mapping entry is located at its key: that is where an author looks first.
            positions[path + (key,)] = _one_based(key_node.start_mark)
            result[key] = _build(loader, value_node, path + (key,), positions)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), positions) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def position_of(positions: dict[Path, Position], path: Path) -> Position | tuple[None, None]:
    """The position of the deepest known node on `path` (a missing key points at its parent)."""
    path = tuple(path)
    while path not in positions and path:
        path = path[:-1]
    return positions.get(path, (None, None))
