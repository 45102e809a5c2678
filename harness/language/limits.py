"""How much a case file may ask of gradspec, so that a hostile or mistaken file costs one error, not the run.

Each limit has a default and an environment variable that changes it (the same for the CLI,
pytest and its xdist workers):

    GRADSPEC_MAX_FILE_BYTES   size of a case file (default 1,000,000 bytes)
    GRADSPEC_MAX_DEPTH        nesting of YAML collections (default 64)
    GRADSPEC_MAX_ELEMENTS     elements of a declared value, and of any tensor a step computes,
                              worked out from the shapes before anything is allocated (default 1,000,000)
    GRADSPEC_MAX_STEPS        steps the case runs in all, each pass of a repeat counted (default 1,000,000)
    GRADSPEC_MAX_COMPUTED     elements the case computes in all, over every step and pass: what a graph
                              built in a repeat keeps alive (default 50,000,000)
    GRADSPEC_MAX_THREADS      threads the case starts in all, a threads block inside a repeat once per pass
                              (default 10,000)
"""

from __future__ import annotations

import os

DEFAULTS = {"GRADSPEC_MAX_FILE_BYTES": 1_000_000, "GRADSPEC_MAX_DEPTH": 64, "GRADSPEC_MAX_ELEMENTS": 1_000_000,
            "GRADSPEC_MAX_STEPS": 1_000_000, "GRADSPEC_MAX_COMPUTED": 50_000_000, "GRADSPEC_MAX_THREADS": 10_000}


def limit(name: str) -> int:
    """The limit in force: the environment's value where it is a positive integer, else the default."""
    raw = os.environ.get(name, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULTS[name]
