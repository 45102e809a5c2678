"""Fuzzing: random graphs in the case language, judged by finite differences and by the reference engine.

Run the properties with `pytest --pyargs gradspec.fuzz --engine NAME --fuzz-examples N`.
"""
