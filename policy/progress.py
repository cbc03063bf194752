"""Progress of long runs, reported as values: the core calls back, the command line draws.

A `Progress` callback receives a stage name ("loading", "analysing") and the fraction of that
stage done, from 0 to 1, at most once per few thousand items. `policy` never prints; the
command line's `kubefence.progress` turns the calls into a bar on stderr.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]


def no_progress(stage: str, fraction: float) -> None:
    """The default: nobody is watching."""


def span(progress: Progress, stage: str, start: float, end: float) -> Callable[[float], None]:
    """A callback for one step of a stage, mapping its own 0..1 onto start..end."""
    def tick(fraction: float) -> None:
        progress(stage, start + (end - start) * fraction)
    return tick
