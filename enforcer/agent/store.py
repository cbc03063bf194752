"""The agent's view of the cluster: the current objects of each watched kind, keyed by
namespace/name, each already converted by the loader's per-object step.

Watches put whole lists (`replace`, after a list or relist) and single events (`apply`) in;
either marks the store dirty and wakes the loop. Each object is parsed, validated and defaulted
once, when it arrives (`policy.convert.convert`, as for a `kubectl get -o json` file), and only
its typed form is kept (a pod's uid and node beside it), not the JSON. `snapshot` hands the loop
everything it needs for one sync under one lock: the converted objects, which
`Snapshot.cluster` assembles (`policy.loader.assemble`: duplicates, implicit namespaces,
sorting; problems raised as one `InputError`; the loop's `Assembler` does the same keeping the
namespaces and pods while only policies change), and the change stamps of the events it covers,
for the latency metrics. The store is `ready` once every kind has been listed once: the agent
must not program a node from a partial picture (pods without their policies would be left open).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enforcer.agent.metrics import STALE_SECONDS
from policy.cluster import ClusterState
from policy.convert import Contribution, convert
from policy.documents import Document
from policy.loader import Base, assemble, assemble_base, assemble_with

# kind -> apiVersion, as items of a list response carry neither
KINDS = {"Namespace": "v1", "Pod": "v1", "NetworkPolicy": "networking.k8s.io/v1"}
SOURCE_NAME = "apiserver"  # the name the loader reports problems under


@dataclass(frozen=True, slots=True)
class Stamp:
    """One event's times (wall clock, seconds since the epoch)."""

    changed: float  # the object's change, as `change_time` estimates it
    arrived: float  # the watch event's arrival


@dataclass(frozen=True, slots=True)
class Stored:
    """One object as the store keeps it."""

    contribution: Contribution
    uid: str = ""  # pods only
    node: str = ""  # pods only: spec.nodeName


@dataclass(frozen=True, slots=True)
class Snapshot:
    by_kind: dict[str, tuple[Contribution, ...]]  # each kind's, by namespace/name
    versions: dict[str, int]  # each kind's version: it moves at every change of the kind
    stamps: tuple[Stamp, ...]
    counts: dict[str, int]
    uids: dict[str, str]  # the uid of each pod of the node asked for, by namespace/name

    @property
    def contributions(self) -> tuple[Contribution, ...]:
        return tuple(c for kind in KINDS for c in self.by_kind[kind])

    def cluster(self) -> ClusterState:
        """The objects as the loader reads them; raises `InputError` on bad input."""
        return assemble(self.contributions)


class Assembler:
    """Snapshots to clusters, keeping the namespaces-and-pods part (`policy.loader.Base`) while
    those kinds do not change: a sync after a policy change then assembles only the policies,
    and the cluster keeps the very pods tuple, which `Analysis.updated` sees at once."""

    def __init__(self) -> None:
        self._versions: tuple[int, int] | None = None
        self._base: Base | None = None

    def cluster(self, snap: Snapshot) -> ClusterState:
        """`snap.cluster()`, equal to it; raises `InputError` on bad input."""
        versions = (snap.versions["Namespace"], snap.versions["Pod"])
        if self._base is None or versions != self._versions:
            self._base = assemble_base(snap.by_kind["Namespace"] + snap.by_kind["Pod"])
            self._versions = versions
        return assemble_with(self._base, snap.by_kind["NetworkPolicy"])


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def change_time(obj: dict[str, Any], event: str, arrived: float) -> float:
    """When the object changed, as well as it tells (see `metrics` for the definition)."""
    meta = obj.get("metadata") or {}
    if event == "DELETED":
        times = [_parse_time(meta.get("deletionTimestamp"))]
    else:
        times = [_parse_time(meta.get("creationTimestamp"))]
        times += [_parse_time(f.get("time")) for f in meta.get("managedFields") or ()
                  if isinstance(f, dict)]
    known = [t for t in times if t is not None]
    newest = max(known) if known else None
    if newest is None or newest > arrived or newest < arrived - STALE_SECONDS:
        return arrived
    return newest


def key_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def stored_items(kind: str, items: list[dict[str, Any]]) -> dict[str, Stored]:
    return {key_of(o): stored(kind, o) for o in items}


def stored(kind: str, obj: dict[str, Any]) -> Stored:
    """The object converted (kind and apiVersion set: items of a list carry neither)."""
    data = {**obj, "kind": kind, "apiVersion": KINDS[kind]}
    contribution = convert(Document(data, SOURCE_NAME, None))
    if kind != "Pod":
        return Stored(contribution)
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return Stored(contribution, str(meta.get("uid") or ""), str(spec.get("nodeName") or ""))


class Store:
    def __init__(self) -> None:
        self._objects: dict[str, dict[str, Stored]] = {k: {} for k in KINDS}
        self._versions = dict.fromkeys(KINDS, 0)
        self._sorted: dict[str, tuple[Contribution, ...] | None] = dict.fromkeys(KINDS)
        self._uids: tuple[int, str | None, dict[str, str]] | None = None  # pod version, node
        self._listed: set[str] = set()
        self._stamps: list[Stamp] = []
        self._dirty = False
        self._first_change = 0.0  # monotonic time of the oldest unsynced change
        self._last_change = 0.0  # monotonic time of the newest
        self.changed = threading.Condition()

    def replace(self, kind: str, items: list[dict[str, Any]]) -> None:
        """A (re)list: the kind's objects are exactly these now."""
        self.replace_stored(kind, stored_items(kind, items))

    def replace_stored(self, kind: str, objects: dict[str, Stored]) -> None:
        """A (re)list, its objects already converted (`stored_items`, page by page)."""
        with self.changed:
            self._objects[kind] = objects
            self._listed.add(kind)
            self._mark(kind)

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        arrived = time.time()
        stamp = Stamp(change_time(obj, event, arrived), arrived)
        key = key_of(obj)
        new = None if event == "DELETED" else stored(kind, obj)
        with self.changed:
            if new is None:
                self._objects[kind].pop(key, None)
            else:
                self._objects[kind][key] = new
            self._stamps.append(stamp)
            self._mark(kind)

    def _mark(self, kind: str) -> None:
        self._versions[kind] += 1
        self._sorted[kind] = None
        now = time.monotonic()
        if not self._dirty:
            self._first_change = now
        self._dirty = True
        self._last_change = now
        self.changed.notify_all()

    @property
    def ready(self) -> bool:
        with self.changed:
            return self._listed == set(KINDS)

    def pending(self) -> tuple[bool, float, float]:
        """(dirty, monotonic time of the first and of the last change since the last
        snapshot). Call with `changed` held."""
        return self._dirty, self._first_change, self._last_change

    def snapshot(self, node: str | None = None) -> Snapshot:
        """Everything now, and the stamps of the events since the previous snapshot; with the
        uids of the pods bound to `node`."""
        with self.changed:
            by_kind = {kind: self._sorted_view(kind) for kind in KINDS}
            versions = dict(self._versions)
            counts = {kind: len(self._objects[kind]) for kind in KINDS}
            uids = self._node_uids(node)
            stamps = tuple(self._stamps)
            self._stamps.clear()
            self._dirty = False
        return Snapshot(by_kind, versions, stamps, counts, uids)

    def _sorted_view(self, kind: str) -> tuple[Contribution, ...]:
        """The kind's objects by namespace/name, made again only after it changed."""
        view = self._sorted[kind]
        if view is None:
            objects = self._objects[kind]
            view = self._sorted[kind] = tuple(objects[k].contribution for k in sorted(objects))
        return view

    def _node_uids(self, node: str | None) -> dict[str, str]:
        if node is None:
            return {}
        if self._uids is None or self._uids[:2] != (self._versions["Pod"], node):
            uids = {k: o.uid for k, o in self._objects["Pod"].items() if o.node == node}
            self._uids = (self._versions["Pod"], node, uids)
        return dict(self._uids[2])
