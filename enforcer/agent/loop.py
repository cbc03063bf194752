"""The sync loop: coalesce the store's changes, compile the node's ruleset, commit it.

Changes are coalesced: a sync starts once no event has come for `quiet` seconds, or `max_delay`
seconds after the first unsynced change, whichever is first (a burst of events — a Deployment
scaled, a namespace of policies applied — becomes one transaction; a steady stream still gets
synced). Nothing is programmed before every kind has been listed once. A sync reads the whole
store (the objects it converted as they came, assembled by `policy.loader.assemble`), analyses
it (a full sync from scratch; a delta incrementally from the
last analysis, `enforcer.compiler.update_analyses`, which is cheap when only policies changed),
compiles the node (`enforcer.compiler.compile_node`: only this node's pods, the whole cluster
as their peers) and hands the ruleset to `enforcer.sync.Syncer`: the
first sync, every `resync` seconds, and any sync after a refused transaction replace the table
whole; the others commit the delta. A sync that fails (input the loader rejects, a node the
compiler cannot enforce, a transaction the kernel refuses) commits nothing, so the last good
ruleset stays in force; it is logged, counted, and tried again after `retry` seconds (doubling,
up to `resync`) or at the next change. With `pod_namespaces` (the lab), each committed sync also
programs the pods' own namespaces for their traffic to themselves (`podns`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from enforcer.agent.health import Status
from enforcer.agent.logs import Log
from enforcer.agent.metrics import Metrics
from enforcer.agent.podns import PodNamespaces
from enforcer.agent.store import Assembler, Stamp, Store
from enforcer.compiler import compile_node, update_analyses
from enforcer.dataplane import DataplaneError
from enforcer.ruleset import NodeRuleset
from enforcer.sync import Syncer
from policy.addresses import Family
from policy.engine import Analysis
from policy.errors import InputError, KubefenceError

HEARTBEAT = 1.0  # the loop wakes at least this often, for /healthz


@dataclass(frozen=True)
class Timing:
    quiet: float = 0.03
    max_delay: float = 0.5
    resync: float = 60.0
    retry: float = 1.0


class SyncLoop:
    def __init__(self, node: str, store: Store, syncer: Syncer, status: Status,
                 metrics: Metrics, log: Log, stopping: threading.Event,
                 timing: Timing = Timing(), pod_namespaces: PodNamespaces | None = None,
                 ) -> None:
        self.node = node
        self._pod_namespaces = pod_namespaces
        self._store = store
        self._syncer = syncer
        self._status = status
        self._metrics = metrics
        self._log = log
        self._stopping = stopping
        self._timing = timing
        self._last_full: float | None = None  # monotonic
        self._retry_at: float | None = None
        self._retry_delay = timing.retry
        self._force_full = False
        self._carried: list[Stamp] = []  # stamps of changes a failed sync did not realize
        self._analyses: dict[Family, Analysis] | None = None  # of the last committed sync
        self._assembler = Assembler()

    def run(self) -> None:
        while not self._stopping.is_set():
            full = self._wait()
            if full is None:
                continue
            self.sync_once(full)

    def _wait(self) -> bool | None:
        """Block until a sync is due: whether it must be full, or None (check again). After a
        failure nothing is tried before `retry_at`, unless a new change comes."""
        t = self._timing
        with self._store.changed:
            self._status.beat()
            now = time.monotonic()
            if not self._store.ready:
                self._store.changed.wait(HEARTBEAT)
                return None
            backing_off = self._retry_at is not None and now < self._retry_at
            full_due = (self._last_full is None or self._force_full
                        or now >= self._last_full + t.resync)
            if (full_due or self._retry_at is not None) and not backing_off:
                return full_due
            due = [now + HEARTBEAT]
            dirty, first, last = self._store.pending()
            if dirty:
                at = min(last + t.quiet, first + t.max_delay)
                if now >= at:
                    return full_due
                due.append(at)
            if self._retry_at is not None:
                due.append(self._retry_at)
            elif self._last_full is not None:
                due.append(self._last_full + t.resync)
            self._store.changed.wait(max(0.0, min(due) - now))
            return None

    def sync_once(self, full: bool) -> bool:
        """One sync; whether it committed."""
        start = time.perf_counter()
        snap = self._store.snapshot(self.node)
        stamps = self._carried + list(snap.stamps)
        try:
            cluster = self._assembler.cluster(snap)
        except InputError as exc:
            return self._failed("input", stamps, problems=[p.render() for p in exc.problems])
        try:
            # A full sync analyses from scratch (it also drops profiles no class uses any more).
            analyses = update_analyses(None if full else self._analyses, cluster)
            ruleset = compile_node(cluster, self.node, analyses)
        except KubefenceError as exc:
            return self._failed("compile", stamps, error=str(exc))
        except Exception as exc:  # a bug must not take the node's rules down with the agent
            return self._failed("compile", stamps, error=f"{type(exc).__name__}: {exc}")
        try:
            result = self._syncer.sync(ruleset, full=full)
        except DataplaneError as exc:
            self._force_full = True
            return self._failed("dataplane", stamps, error=str(exc))
        committed = time.time()
        seconds = time.perf_counter() - start
        if self._pod_namespaces is not None:
            self._sync_pod_namespaces(ruleset, snap.uids, result.kind == "full")
        self._analyses = analyses
        rebuilt = sorted({a.rebuilt or "incremental" for a in analyses.values()})
        m = self._metrics
        m.sync_seconds.labels("full" if result.kind == "full" else "delta").observe(seconds)
        m.syncs.labels(result.kind).inc()
        m.elements.set(ruleset.element_count())
        m.pods.set(len(ruleset.pods))
        for stamp in stamps:
            m.latency.observe(max(0.0, committed - stamp.changed))
            m.agent_latency.observe(max(0.0, committed - stamp.arrived))
        self._carried = []
        self._retry_at, self._retry_delay = None, self._timing.retry
        if result.kind == "full":
            self._last_full = time.monotonic()
            self._force_full = False
            if not self._status.ready:
                self._status.ready = True
                m.ready.set(1)
        self._log.info("sync", kind=result.kind, commands=result.commands,
                       pods=len(ruleset.pods), elements=ruleset.element_count(),
                       events=len(stamps), seconds=round(seconds, 4), objects=snap.counts,
                       analysis=", ".join(rebuilt))
        return True

    def _sync_pod_namespaces(self, ruleset: NodeRuleset, uids: dict[str, str],
                             full: bool) -> None:
        assert self._pod_namespaces is not None
        done = self._pod_namespaces.sync(ruleset, uids, full)
        if done.failed:
            self._metrics.pod_netns_failures.inc(len(done.failed))
            self._log.error("pod_netns_failed", failed=list(done.failed),
                            kept="those pods' own tables stay as they were")
        if done.missing:
            self._log.warning("pod_netns_missing", pods=list(done.missing),
                              retry="at the next sync")
        if done.programmed:
            self._log.info("pod_netns", programmed=done.programmed)

    def _failed(self, reason: str, stamps: list[Stamp], **fields: object) -> bool:
        self._metrics.sync_failures.labels(reason).inc()
        self._carried = stamps
        self._retry_at = time.monotonic() + self._retry_delay
        self._log.error("sync_failed", reason=reason, retry_in=round(self._retry_delay, 2),
                        kept="the last committed ruleset stays in force", **fields)
        self._retry_delay = min(self._retry_delay * 2, self._timing.resync)
        return False
