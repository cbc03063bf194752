"""The progress bar on stderr: how `policy`'s progress callbacks are shown to a person.

Drawn only when stderr is a terminal (never into a CI log or a pipe), only once a run has
lasted half a second (short runs stay quiet), at most ten times a second, and erased when the
run ends, so nothing of it is left in the terminal's scrollback.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30
DELAY = 0.5  # seconds before the first draw
INTERVAL = 0.1  # seconds between draws


class StderrBar:
    """A `policy.progress.Progress` callback that draws `stage [#####-----]  50%`."""

    def __init__(self, stream: TextIO, enabled: bool, delay: float = DELAY) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self.start = time.monotonic()
        self.last = 0.0
        self.drawn = False

    @classmethod
    def for_stream(cls, stream: TextIO, mode: str) -> StderrBar:
        """`mode` is auto (a terminal only), always or never."""
        isatty = getattr(stream, "isatty", lambda: False)
        return cls(stream, mode == "always" or (mode == "auto" and isatty()), DELAY)

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.last < INTERVAL and fraction < 1.0):
            return
        self.last = now
        self.stream.write(render(stage, fraction))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """Erase the bar (if one was drawn), leaving the cursor at the start of the line."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


def render(stage: str, fraction: float) -> str:
    """One frame: a carriage return, the stage, the bar and the percentage."""
    fraction = min(1.0, max(0.0, fraction))
    filled = int(fraction * WIDTH)
    return f"\r{stage:<10} [{'#' * filled}{'-' * (WIDTH - filled)}] {fraction * 100:3.0f}%"
