"""Known differences of the optional engines from the rule book, shipped as gradspec.expectations.

Name one with `--expectations gradspec:jax` (the file expectations/jax.txt).
"""
