"""Run the bodies of a `threads` step in Python threads of their own, and bring their failures home.

All threads start together and meet at each `barrier: all`. The first thread that fails
breaks the barrier, so the others stop waiting for it instead of hanging; the step then
fails with that first failure (a thread that stopped only because the barrier broke is not
a finding). An engine that deadlocks is the worker process's time limit's business.

While the bodies run, Python switches threads every SWITCH_INTERVAL seconds instead of its default 5 ms (restored
afterwards): at the default, a thread of pure-Python engine code runs a hundred passes or more before another gets
the interpreter, so the threads take turns instead of interleaving, and a lost update between reading `.grad` and
writing it back (PASS-9) is never given the chance to happen. Switching often makes races in any engine that holds
the GIL visible, and changes nothing for a correct engine; bench/bench_thread_race.py measures the effect.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

SWITCH_INTERVAL = 5e-5  # seconds (sys.setswitchinterval) while a block's threads run: a pass or so of engine code


class BarrierBroken(BaseException):
    """Raised in a thread whose partners failed before meeting it. A BaseException, so that the step's judging of
    engine errors (which catches Exception) lets it through: it says nothing about the engine."""


class Threads:
    """One `threads` step: call run_body(index) in a thread per body, then re-raise the first real failure."""

    def __init__(self, count: int):
        self.count = count
        self.barrier = threading.Barrier(count)
        self.failures: list[BaseException] = []  # in the order they happened

    def run(self, run_body: Callable[[int], None], local: threading.local) -> None:
        threads = [threading.Thread(target=self.body, args=(run_body, local, index), name=f"gradspec-thread-{index + 1}",
                                    daemon=True) for index in range(self.count)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
        real = [failure for failure in self.failures if not isinstance(failure, BarrierBroken)]
        if real:
            raise real[0]

    def body(self, run_body: Callable[[int], None], local: threading.local, index: int) -> None:
        local.threads = self
        try:
            run_body(index)
        except BaseException as failure:  # noqa: BLE001 - carried to the thread that started the block
            self.failures.append(failure)
            self.barrier.abort()

    def wait(self) -> None:
        """A `barrier: all` step."""
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            raise BarrierBroken("another thread of this block failed before reaching the barrier") from None
