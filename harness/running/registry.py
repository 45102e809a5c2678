"""Find engine adapters: by entry point name (group `gradspec.adapters`) or as `package.module:Class`."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points

from gradspec import contracts
from gradspec.adapter import Adapter
from gradspec.language.errors import did_you_mean

ENTRY_POINT_GROUP = "gradspec.adapters"
DEFAULT_ENGINES = ("reference", "torch")  # the built-in engines `pytest cases` runs when --engine is absent


class EngineNotFound(LookupError):
    """No adapter answers to that name; the message lists the ones that do."""


def registered() -> dict[str, object]:
    """Entry points of every installed adapter, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def default_engines() -> list[str]:
    """The built-in engines that are registered in this installation."""
    names = registered()
    return [name for name in DEFAULT_ENGINES if name in names]


def load_adapter(name: str) -> type[Adapter]:
    """The adapter class for an engine name or a `package.module:Class` reference."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            hint = ""
            missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
            if missing and (module_name == missing or module_name.startswith(f"{missing}.")):  # the module itself
                top = module_name.split(".")[0]
                hint = (f"; a module of no installed package is found through PYTHONPATH (PYTHONPATH=FOLDER gradspec "
                        f"run --engine {name}, where FOLDER holds {top}.py or the package {top}/), or install its "
                        "package (and register the class as a gradspec.adapters entry point)")
            raise EngineNotFound(f"cannot load adapter {name!r}: {exc}{hint}") from None
        except (Exception, SystemExit) as exc:  # the adapter's own module broke at import: a usage error, with why
            raise EngineNotFound(f"cannot load adapter {name!r}: importing {module_name} raised "
                                 f"{_one_line(exc)}") from None
    else:
        names = registered()
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise EngineNotFound(f"unknown engine {name!r}{did_you_mean(name, names)}; registered engines: {known}; "
                                 "or give an adapter class as package.module:Class")
        try:
            cls = names[name].load()
        except (Exception, SystemExit) as exc:
            raise EngineNotFound(f"cannot load engine {name!r}: importing its adapter {names[name].value} raised "
                                 f"{_one_line(exc)}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise EngineNotFound(f"{name!r} is not a subclass of gradspec.adapter.Adapter")
    problems = adapter_problems(cls)
    if problems:
        raise EngineNotFound(f"adapter {name!r} ({cls.__module__}.{cls.__qualname__}) is not usable: "
                             + "; ".join(problems))
    return cls


def _one_line(exc: BaseException) -> str:
    """`Type: message` on one line (a usage error is one line), at most 300 characters of the message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def adapter_problems(cls: type[Adapter]) -> list[str]:
    """What is wrong with an adapter class as declared, found once at start-up rather than once per case."""
    problems = []
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        problems.append(f"it does not implement {', '.join(missing)} (see gradspec.adapter.Adapter)")
    known = contracts.capabilities()
    for capability in sorted(set(cls.capabilities) - set(known)):
        problems.append(f"unknown capability {capability!r}{did_you_mean(capability, known)} "
                        "(spec/capabilities.yaml lists them)")
    ops = contracts.ops()
    for op in sorted(set(cls.lacks_ops) - set(ops)):
        problems.append(f"`lacks_ops` names {op!r}, which is no op of spec/ops.yaml{did_you_mean(op, ops)}")
    for op in sorted(set(cls.once_differentiable_ops) - set(ops)):
        problems.append(f"`once_differentiable_ops` names {op!r}, which is no op of spec/ops.yaml"
                        f"{did_you_mean(op, ops)}")
    table = getattr(cls, "ops", None)  # an op table made with the class (one made per instance is checked when built)
    for op in sorted(set(table) - set(ops) if isinstance(table, Mapping) else ()):
        problems.append(f"its op table `ops` maps {op!r}, which is no op of spec/ops.yaml{did_you_mean(op, ops)}")
    if not cls.name:
        problems.append("its `name` is empty")
    for what in ("devices", "dtypes"):
        values = getattr(cls, what)
        if isinstance(values, str) or not values or not all(isinstance(v, str) and v for v in values):
            problems.append(f"`{what}` must be a non-empty tuple of names, got {values!r}")
    return problems
