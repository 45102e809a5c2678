# Which ops of gradspec's vocabulary have a second derivative in Paddle: each op through the adapter's own
# spelling, a gradient under create_graph, then the gradient of its sum (what the second-order fuzz property does).
import numpy as np
from common import paddle  # noqa: F401 - quiet import first
from gradspec.adapters.paddle_adapter import OPS, PaddleAdapter
from gradspec import contracts

adapter = PaddleAdapter("cpu", "float64")
rng = np.random.default_rng(0)
def leaf(shape, low=0.3, high=0.9):
    return adapter.tensor(rng.uniform(low, high, shape), True, "float64")
results = {}
for op, entry in contracts.ops().items():
    if op not in OPS or op in adapter.lacking_ops() or entry.get("differentiable") is False:
        continue
    arity = entry.get("arity")
    attrs = {k: v for k, v in {"lerp": {"weight": 0.3}, "masked_fill": {"value": 2.0}, "logsumexp": {"dim": 0},
                                  "softmax": {"dim": 0}, "log_softmax": {"dim": 0}, "cumsum": {"dim": 0},
                                  "cumprod": {"dim": 0}, "reshape": {"shape": [4]}, "view": {"shape": [4]},
                                  "getitem": {"index": (0,)}, "select": {"dim": 0, "index": 1},
                                  "narrow": {"dim": 0, "start": 0, "length": 1}, "unsqueeze": {"dim": 0},
                                  "expand": {"shape": [2, 2, 2]}, "permute": {"dims": [1, 0]},
                                  "broadcast_to": {"shape": [2, 2, 2]}, "flip": {"dims": [0]},
                                  "roll": {"shifts": 1, "dims": 0}, "repeat": {"repeats": [2, 1]},
                                  "tile": {"reps": [2, 1]}, "split": {"split_size": 1}, "chunk": {"chunks": 2},
                                  }.get(op, {}).items()}
    a = leaf([2, 2])
    index = adapter.tensor(np.array([[0, 1], [1, 0]]), False, "int64")
    if op in ("where", "masked_fill"):
        args = [adapter.tensor(np.array([[1, 0], [0, 1]]), False, "int64"), a, leaf([2, 2])] if op == "where" else \
            [a, adapter.tensor(np.array([[1, 0], [0, 1]]), False, "int64")]
    elif op in ("gather", "take", "index_select"):
        args = [a, index if op != "index_select" else adapter.tensor(np.array([1, 0]), False, "int64")]
    elif op in ("scatter", "scatter_add", "index_add"):
        args = [a, index if op != "index_add" else adapter.tensor(np.array([1, 0]), False, "int64"), leaf([2, 2])]
    elif op in ("outer", "dot"):
        args = [leaf([2]), leaf([2])]
    elif op in ("cat", "stack"):
        args = [a, leaf([2, 2])]
    elif arity == 2:
        args = [a, leaf([2, 2], 1.0, 1.5)]
    elif op == "acosh":
        args = [leaf([2, 2], 1.3, 1.9)]
    elif op in ("inv", "det"):
        args = [adapter.tensor(np.array([[2.0, 0.5], [0.3, 1.5]]), True, "float64")]
    elif op == "solve":
        args = [adapter.tensor(np.array([[2.0, 0.5], [0.3, 1.5]]), True, "float64"), leaf([2, 2])]
    else:
        args = [a]
    inputs = [t for t in args if isinstance(t, paddle.Tensor) and t.requires_grad]
    try:
        out = adapter.apply(op, args, attrs)
        out = out[0] if isinstance(out, (list, tuple)) else out
        total = (out * out).sum()  # squared, so that a linear op's gradient depends on its input
        grads = paddle.grad(total, inputs, create_graph=True, allow_unused=True)
        second = sum(g.sum() for g in grads if g is not None)
        paddle.grad(second, inputs, allow_unused=True)
        results[op] = "ok"
    except Exception as e:  # noqa: BLE001
        message = str(e).splitlines()[0]
        results[op] = message[message.find("The Op"):][:60] if "grad op" in message else f"{type(e).__name__}: {message[:80]}"
lacking = {op: r for op, r in results.items() if r != "ok"}
print(f"{len(results)} ops tried, {len(lacking)} without a second derivative:")
for op, r in lacking.items():
    print(f"  {op:12} {r}")
