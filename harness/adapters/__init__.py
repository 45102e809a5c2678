"""Adapters shipped with gradspec, one module per engine."""
