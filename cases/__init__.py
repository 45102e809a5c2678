"""gradspec's corpus of case files, shipped inside the package as gradspec.cases.

Run it with `gradspec run --engine NAME` (or `pytest --pyargs gradspec.cases --engine NAME`).
"""
