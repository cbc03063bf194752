"""The agent's view of the cluster: the current objects of each watched kind, keyed by
namespace/name, as plain dicts (the JSON the API server sent).

Watches put whole lists (`replace`, after a list or relist) and single events (`apply`) in;
either marks the store dirty and wakes the loop. `snapshot` hands the loop everything it needs
for one sync under one lock: the objects as a JSON `kind: List` (read by the same loader as a
`kubectl get -o json` file) and the change stamps of the events it covers, for the latency
metrics. The store is `ready` once every kind has been listed once: the agent must not program
a node from a partial picture (pods without their policies would be left open).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enforcer.agent.metrics import STALE_SECONDS
from policy.cluster import ClusterState
from policy.loader import load_texts

# kind -> apiVersion, as items of a list response carry neither
KINDS = {"Namespace": "v1", "Pod": "v1", "NetworkPolicy": "networking.k8s.io/v1"}
SOURCE_NAME = "apiserver.json"  # the name the loader reports problems under


@dataclass(frozen=True, slots=True)
class Stamp:
    """One event's times (wall clock, seconds since the epoch)."""

    changed: float  # the object's change, as `change_time` estimates it
    arrived: float  # the watch event's arrival


@dataclass(frozen=True, slots=True)
class Snapshot:
    text: str  # a JSON `kind: List`
    stamps: tuple[Stamp, ...]
    counts: dict[str, int]
    uids: dict[str, str]  # the uid of each pod of the node asked for, by namespace/name

    def cluster(self) -> ClusterState:
        """The objects as the loader reads them; raises `InputError` on bad input."""
        return load_texts([(SOURCE_NAME, self.text, False)])


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


def _slim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the loader wants it: kind and apiVersion set, managedFields dropped."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "kind": kind, "apiVersion": KINDS[kind], "metadata": meta}


class Store:
    def __init__(self) -> None:
        self._objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self._listed: set[str] = set()
        self._stamps: list[Stamp] = []
        self._dirty = False
        self._first_change = 0.0  # monotonic time of the oldest unsynced change
        self._last_change = 0.0  # monotonic time of the newest
        self.changed = threading.Condition()

    def replace(self, kind: str, items: list[dict[str, Any]]) -> None:
        """A (re)list: the kind's objects are exactly these now."""
        objects = {key_of(o): _slim(kind, o) for o in items}
        with self.changed:
            self._objects[kind] = objects
            self._listed.add(kind)
            self._mark()

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        arrived = time.time()
        stamp = Stamp(change_time(obj, event, arrived), arrived)
        key = key_of(obj)
        with self.changed:
            if event == "DELETED":
                self._objects[kind].pop(key, None)
            else:
                self._objects[kind][key] = _slim(kind, obj)
            self._stamps.append(stamp)
            self._mark()

    def _mark(self) -> None:
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
            items = [o for kind in KINDS for _, o in sorted(self._objects[kind].items())]
            counts = {kind: len(self._objects[kind]) for kind in KINDS}
            uids = {key: str(o["metadata"].get("uid") or "")
                    for key, o in self._objects["Pod"].items()
                    if node is not None and (o.get("spec") or {}).get("nodeName") == node}
            stamps = tuple(self._stamps)
            self._stamps.clear()
            self._dirty = False
        text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        return Snapshot(text, stamps, counts, uids)
