"""List and watch one resource kind, cluster-wide, into the store; forever, until stopped.

A list gives every object and a resourceVersion; a watch from that resourceVersion gives the
changes after it (with bookmarks, so a quiet resource still moves its resourceVersion on), for
at most `timeout` seconds a request, then it is resumed from the last resourceVersion seen.
Lists are paged (`LIST_PAGE` objects a request, with `continue`, all from one snapshot), and
each page is converted (`enforcer.agent.store.stored_items`) before the next is asked for, so
the raw JSON of a 150,000-pod list is never held at once. A watch the server answers with 410
Gone (the resourceVersion has been compacted away) is followed by a relist, which replaces the
kind's objects whole in the store. Any other failure (connection refused or reset, a timeout, a
5xx) is retried after a backoff (`BACKOFF_FIRST` doubling up to `BACKOFF_MAX`, with jitter): a
list again if the list failed, else the watch from where it was. Objects come as plain dicts
(the raw JSON), never as client models.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from enforcer.agent.logs import Log
from enforcer.agent.metrics import Metrics
from enforcer.agent.store import Store, Stored, stored_items

LIST_PAGE = 500  # objects per list request, as client-go's reflector asks
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0
CONNECT_TIMEOUT = 5.0
GONE = 410


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str  # as in metrics and logs: pods, namespaces, networkpolicies
    lister: Callable[[client.ApiClient], Callable[..., Any]]


RESOURCES = (
    Resource("Namespace", "namespaces", lambda api: client.CoreV1Api(api).list_namespace),
    Resource("Pod", "pods", lambda api: client.CoreV1Api(api).list_pod_for_all_namespaces),
    Resource("NetworkPolicy", "networkpolicies", lambda api: client.NetworkingV1Api(
        api).list_network_policy_for_all_namespaces),
)


class _RawWatch(watch.Watch):  # type: ignore[misc]
    """Events as the server sent them: dicts, not models (`return_type` None), while ERROR
    events are still raised as `ApiException` with their code (410 among them)."""

    def get_return_type(self, func: Any) -> Any:
        return None


def _describe(exc: Exception) -> str:
    """One short line: an API error's status and reason, not its headers and body."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {exc}"[:300]


class Gone(Exception):
    """The resourceVersion is too old: relist."""


class Watcher:
    """One thread per resource; `stop` makes it return within a moment."""

    def __init__(self, resource: Resource, api: client.ApiClient, store: Store, log: Log,
                 metrics: Metrics, stopping: threading.Event, timeout: int = 60) -> None:
        self.resource = resource
        self._list = resource.lister(api)
        self._store = store
        self._log = log
        self._metrics = metrics
        self._stopping = stopping
        self._timeout = timeout
        self._watch: _RawWatch | None = None
        self._lock = threading.Lock()
        self.resource_version: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"watch-{resource.name}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.stop()  # shuts the socket down: a blocked read returns

    def _request_timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self._timeout + 15.0)

    def relist(self, reason: str) -> str:
        """List the resource page by page, put it in the store whole; its resourceVersion."""
        objects: dict[str, Stored] = {}
        token: str | None = None
        while True:
            page = {"limit": LIST_PAGE, **({"_continue": token} if token else {})}
            resp = self._list(_preload_content=False, _request_timeout=self._request_timeout(),
                              **page)
            try:
                body = json.loads(resp.data)
            finally:
                resp.release_conn()
            objects.update(stored_items(self.resource.kind, body.get("items") or []))
            meta = body["metadata"]
            token = meta.get("continue") or None
            if token is None:
                break
        rv = str(meta["resourceVersion"])
        self._store.replace_stored(self.resource.kind, objects)
        self._metrics.relists.labels(self.resource.name, reason).inc()
        self._log.info("list", resource=self.resource.name, reason=reason,
                       objects=len(objects), resource_version=rv)
        return rv

    def watch_once(self, rv: str) -> str:
        """Watch from `rv` for at most `timeout` seconds; the last resourceVersion seen.
        Raises `Gone` on 410."""
        w = _RawWatch()
        with self._lock:
            if self._stopping.is_set():
                return rv
            self._watch = w
        try:
            for event in w.stream(self._list, resource_version=rv,
                                  timeout_seconds=self._timeout, allow_watch_bookmarks=True,
                                  _request_timeout=self._request_timeout()):
                rv = self._event(event, rv)
                if self._stopping.is_set():
                    break
        except ApiException as exc:
            if exc.status == GONE:
                raise Gone(str(exc.reason)) from None
            raise
        finally:
            with self._lock:
                self._watch = None
        return rv

    def _event(self, event: dict[str, Any], rv: str) -> str:
        kind = str(event.get("type"))
        obj = event.get("raw_object") or event.get("object") or {}
        self._metrics.events.labels(self.resource.name, kind).inc()
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._store.apply(self.resource.kind, kind, obj)
        return new_rv  # BOOKMARK: only the resourceVersion moves on

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        rv: str | None = None
        reason = "start"
        while not self._stopping.is_set():
            try:
                if rv is None:
                    rv = self.relist(reason)
                    self.resource_version = rv
                rv = self.watch_once(rv)
                self.resource_version = rv
                backoff = BACKOFF_FIRST
            except Gone as exc:
                self._log.warning("watch_gone", resource=self.resource.name,
                                  resource_version=rv, message=str(exc))
                rv, reason = None, "gone"
            except Exception as exc:  # connection, timeout, 5xx: retry after a while
                if self._stopping.is_set():
                    break
                self._metrics.watch_errors.labels(self.resource.name).inc()
                self._log.warning("watch_error", resource=self.resource.name,
                                  during="list" if rv is None else "watch",
                                  error=_describe(exc),
                                  retry_in=round(backoff, 2))
                if rv is None:
                    reason = "error"
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, BACKOFF_MAX)
