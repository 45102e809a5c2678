"""Running cases: the interpreter that drives an adapter, comparison, engine registry and known failures."""
