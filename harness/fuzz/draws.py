"""Each draw a fuzz property is about to judge, told to whoever watches, so that a draw that kills its process can be
staged all the same.

In a fuzz worker (gradspec.fuzz.isolated) the watch sends every draw, pickled, to pytest's process before the engine
sees it: when the engine then segfaults, calls `os._exit` or hangs, that process knows the draw and has a fresh worker
stage it (`replay`), as the property's own writer stages a failure, without judging it again. Without a worker
(`--gradspec-isolation none`, or a property called directly) nobody watches and this costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler

import gradspec.running.isolation  # noqa: F401 - registers how to pickle a Case's read-only mappings


class DrawCrashed(Exception):
    """The engine's process died or hung in a draw: no verdict on that draw, which is staged as a case to replay."""

    def __init__(self, message: str, what: str = ""):
        super().__init__(message)
        self.what = what or message  # how the process ended, for the staged case's title


@dataclass
class Replay:
    """A draw to stage rather than judge: the one its process died in, and what happened."""

    example: object
    crash: DrawCrashed


class Watch:
    """Tells `send` of every draw before it is judged, and of the staging of a failure (which may take a while)."""

    def __init__(self, send: Callable[[tuple], None], replay: Replay | None = None):
        self.send, self.replay, self.draws = send, replay, 0

    def drawing(self, noun: str, example: object) -> None:
        self.draws += 1
        try:
            recorded, why = bytes(ForkingPickler.dumps(example)), None
        except Exception as exc:  # noqa: BLE001 - a draw that cannot be pickled is reported, never staged
            recorded, why = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        self.send(("draw", self.draws, noun, recorded, why))

    def staging(self) -> None:
        self.send(("staging", self.draws))


current: Watch | None = None  # set by the fuzz worker around one property
