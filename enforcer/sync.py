"""Keeping a node's kernel in step with its rulesets: full replace or delta, atomically.

The syncer remembers the ruleset it last committed. The first sync, a periodic resync and any
sync after a failure replace the table whole; the others send only the delta against the
remembered state. A transaction the kernel refuses leaves the previous ruleset in force; the
syncer then retries once with a full replace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from enforcer.dataplane import Dataplane, DataplaneError
from enforcer.delta import delta
from enforcer.render import full_replace
from enforcer.ruleset import NodeRuleset


@dataclass(frozen=True)
class SyncResult:
    kind: str  # "full", "delta" or "none"
    commands: int
    seconds: float


class Syncer:
    def __init__(self, dataplane: Dataplane) -> None:
        self._dataplane = dataplane
        self._committed: NodeRuleset | None = None

    @property
    def committed(self) -> NodeRuleset | None:
        return self._committed

    def sync(self, ruleset: NodeRuleset, full: bool = False) -> SyncResult:
        start = time.perf_counter()
        if full or self._committed is None:
            cmds = full_replace(ruleset)
            kind = "full"
        else:
            cmds = delta(self._committed, ruleset)
            kind = "delta" if cmds else "none"
        try:
            self._dataplane.apply(cmds)
        except DataplaneError:
            # The refused transaction changed nothing, but the kernel no longer matches what
            # the delta assumed: start over, whole. If that fails too, the error goes up and
            # the previous ruleset stays in force (and remembered).
            if kind == "full":
                raise
            cmds = full_replace(ruleset)
            kind = "full"
            self._dataplane.apply(cmds)
        self._committed = ruleset
        return SyncResult(kind, len(cmds), time.perf_counter() - start)
