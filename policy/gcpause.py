"""Pausing Python's cyclic garbage collector around bulk work, and freezing what it built.

Loading and analysing allocate millions of small objects that all survive; the cyclic
collector would scan them again and again (a third of the load time at 10,000 pods, and
seconds of the analysis at 150,000). Nothing they build needs it: it holds no reference
cycles. On the way out the survivors are frozen (`gc.freeze`), so that no later collection
scans them either: at 150,000 pods one full collection over a loaded cluster and its analysis
costs about 4.5 s, which the first sync of a node would otherwise pay. Frozen objects are still
freed as soon as nothing refers to them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
