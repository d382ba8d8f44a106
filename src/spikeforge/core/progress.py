"""Progress of long jobs: a line in the rule's log and on the console (the logger
`spikeforge.progress`, which the job runner passes to the console at INFO) with the share
done, the rate and the time left, at most every `every` seconds, so jobs shorter than that
print nothing."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

log = logging.getLogger("spikeforge.progress")


class Progress:
    def __init__(self, total: float, what: str, unit: str = "", every: float = 10.0) -> None:
        self.total, self.what, self.unit, self.every = float(total), what, unit, every
        self.started = self.last = time.monotonic()
        self.done = 0.0

    def advance(self, amount: float = 1.0) -> None:
        self.update(self.done + amount)

    def update(self, done: float) -> None:
        self.done = float(done)
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last, elapsed = now, now - self.started
        share = self.done / self.total if self.total else 1.0
        left = elapsed * (1.0 - share) / share if share > 0 else float("nan")
        rate = self.done / elapsed if elapsed > 0 else 0.0
        log.info(
            "%s: %.0f%% (%g of %g%s, %.3g%s per s), about %.0f s left", self.what,
            100.0 * share, self.done, self.total, self.unit, rate, self.unit, left,
        )  # fmt: skip


@contextlib.contextmanager
def watching(count: Callable[[], float], total: float, what: str, unit: str = "",
             every: float = 10.0, poll: float = 1.0) -> Iterator[Progress]:  # fmt: skip
    """Progress of work done elsewhere (worker processes), polled from a thread: `count()`
    says how much is done, e.g. the files written so far."""
    bar = Progress(total, what, unit, every)
    stop = threading.Event()

    def poll_loop() -> None:
        while not stop.wait(poll):
            with contextlib.suppress(OSError):
                bar.update(count())

    thread = threading.Thread(target=poll_loop, daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
