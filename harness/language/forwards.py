"""The vocabulary's ops on numpy values, spelled as the case language spells them.

The reference engine's op table holds each op's numpy forward, but in the engine's own
terms: an index operand is an attribute, a subscript a Python index, unbind/split/chunk
several view ops. Static checks and the fuzzer's finite-difference oracle evaluate cases
in numpy through this one translation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradspec import contracts
from gradspec.language.expressions import python_index
from gradspec.reference_engine import views
from gradspec.reference_engine.ops import OPS


def numpy_forward(op: str, operands: list, kwargs: dict) -> Any:
    """The value of vocabulary op `op` on numpy operands (a tuple for an op with several outputs)."""
    entry = contracts.ops()[op]
    if op in ("detach", "data"):
        return operands[0]
    if op == "getitem":
        return views.getitem(operands[0], python_index(kwargs["index"]))
    kwargs = {key: spec.get("default") for key, spec in entry.get("attributes", {}).items()} | kwargs
    if op in ("cat", "stack"):  # the reference engine composes these; numpy has them whole
        return (np.concatenate if op == "cat" else np.stack)(operands, axis=kwargs["dim"])
    if entry.get("outputs") == "many":
        return tuple(OPS[name].forward(operands[0], **attrs)
                     for name, attrs in views.pieces(op, np.shape(operands[0]), kwargs))
    if "condition_operand" in entry:
        operands = list(operands)
        condition = np.asarray(operands.pop(entry["condition_operand"])) != 0
        return OPS[op].forward(*operands, condition=condition, **kwargs)
    if "index_operand" in entry:
        operands = list(operands)
        index = np.asarray(operands.pop(entry["index_operand"]), dtype=np.int64)
        return OPS[op].forward(*operands, index=index, **kwargs)
    return OPS[op].forward(*operands, **kwargs)
