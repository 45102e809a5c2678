"""gradspec: a conformance suite for automatic-differentiation semantics.

The folder ``harness/`` of the repository is this package. It loads and validates
case files, runs them on engines through adapters, compares and reports.
"""

__version__ = "0.1.0"
