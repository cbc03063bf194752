"""The agent's store and sync loop without a cluster or a kernel: change times for the latency
metric, readiness only once every kind is listed, the `kind: List` the loader reads, and
coalescing with a dataplane that records its transactions."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest

from enforcer.agent.health import Status
from enforcer.agent.logs import Log
from enforcer.agent.loop import SyncLoop, Timing
from enforcer.agent.metrics import STALE_SECONDS, Metrics
from enforcer.agent.store import Assembler, Store, change_time
from enforcer.dataplane import Dataplane, DataplaneError
from enforcer.sync import Syncer
from policy.errors import InputError
from policy.loader import load_texts

NOW = 1_800_000_000.0


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_change_time_is_the_newest_managed_fields_time() -> None:
    obj = {"metadata": {"creationTimestamp": stamp(NOW - 30), "managedFields": [
        {"manager": "kubectl", "time": stamp(NOW - 20)}, {"manager": "x", "time": stamp(NOW - 2)}]}}
    assert change_time(obj, "MODIFIED", NOW) == NOW - 2
    assert change_time({"metadata": {"creationTimestamp": stamp(NOW - 3)}}, "ADDED", NOW) == NOW - 3


def test_change_time_falls_back_to_the_arrival() -> None:
    assert change_time({"metadata": {}}, "ADDED", NOW) == NOW
    future = {"metadata": {"creationTimestamp": stamp(NOW + 5)}}
    assert change_time(future, "ADDED", NOW) == NOW  # clocks apart
    old = {"metadata": {"creationTimestamp": stamp(NOW - STALE_SECONDS - 5)}}
    assert change_time(old, "MODIFIED", NOW) == NOW  # an old object seen again
    deleted = {"metadata": {"creationTimestamp": stamp(NOW - 5)}}
    assert change_time(deleted, "DELETED", NOW) == NOW  # no deletionTimestamp
    deleted["metadata"]["deletionTimestamp"] = stamp(NOW - 1)
    assert change_time(deleted, "DELETED", NOW) == NOW - 1


def pod(name: str, ip: str, labels: dict[str, str], node: str = "n1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels,
                         "resourceVersion": "7", "managedFields": [{"manager": "k"}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}], "phase": "Running"}}


DENY = {"metadata": {"name": "deny", "namespace": "ns"}, "spec": {"podSelector": {}}}


def test_store_is_ready_once_every_kind_is_listed_and_assembles_the_cluster() -> None:
    store = Store()
    store.replace("Pod", [pod("a", "10.0.0.1", {"app": "a"})])
    store.replace("NetworkPolicy", [DENY])
    assert not store.ready
    store.replace("Namespace", [{"metadata": {"name": "ns"}}])
    assert store.ready
    store.apply("Pod", "ADDED", pod("b", "10.0.0.2", {"app": "b"}))
    snap = store.snapshot()
    assert len(snap.stamps) == 1 and snap.counts == {"Namespace": 1, "Pod": 2, "NetworkPolicy": 1}
    assert snap.uids == {}  # only the pods of the node asked for: none here
    cluster = snap.cluster()
    assert [p.key for p in cluster.pods] == ["ns/a", "ns/b"]
    listed = {"apiVersion": "v1", "kind": "List", "items": [
        {**o, "kind": k, "apiVersion": v} for k, v, o in (
            ("Namespace", "v1", {"metadata": {"name": "ns"}}),
            ("Pod", "v1", pod("a", "10.0.0.1", {"app": "a"})),
            ("Pod", "v1", pod("b", "10.0.0.2", {"app": "b"})),
            ("NetworkPolicy", "networking.k8s.io/v1", DENY))]}
    as_a_file = load_texts([("apiserver", json.dumps(listed), False)])
    assert (cluster.pods, cluster.policies, cluster.namespaces) == (
        as_a_file.pods, as_a_file.policies, as_a_file.namespaces)
    assert store.snapshot().stamps == ()  # stamps are handed out once
    store.apply("Pod", "DELETED", pod("a", "10.0.0.1", {}))
    assert [p.key for p in store.snapshot().cluster().pods] == ["ns/b"]
    store.apply("Pod", "MODIFIED", {**pod("b", "10.0.0.2", {"app": "b"}),
                                    "metadata": {"name": "b", "namespace": "ns", "uid": "u-b"}})
    assert store.snapshot("n1").uids == {"ns/b": "u-b"} and store.snapshot("n2").uids == {}


def test_bad_object_from_the_api_is_a_problem_naming_it_at_sync() -> None:
    store = Store()
    store.replace("Namespace", [{"metadata": {"name": "ns"}}])
    store.replace("NetworkPolicy", [])
    store.replace("Pod", [{**pod("a", "10.0.0.1", {}), "spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": 70000}]}]}}])
    with pytest.raises(InputError) as info:
        store.snapshot().cluster()
    assert [p.render() for p in info.value.problems] == [
        "apiserver: Pod ns/a: spec.containers[0].ports[0].containerPort: 70000: must be "
        "between 1 and 65535, inclusive"]


class Recorder(Dataplane):
    """A dataplane that records transactions instead of committing them (no kernel)."""

    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []
        self.refuse = False

    def apply(self, commands: list[dict[str, Any]]) -> None:
        if self.refuse:
            raise DataplaneError("refused")
        self.transactions.append(commands)


def run_loop(store: Store, dataplane: Recorder, timing: Timing,
             ) -> tuple[threading.Event, threading.Thread, Status, Metrics, io.StringIO]:
    stopping, status, metrics, out = threading.Event(), Status(30.0), Metrics(), io.StringIO()
    loop = SyncLoop("n1", store, Syncer(dataplane), status, metrics, Log(out), stopping,
                    timing)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    return stopping, thread, status, metrics, out


def wait_for(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_loop_coalesces_a_burst_and_keeps_the_last_ruleset_on_failure() -> None:
    store, dataplane = Store(), Recorder()
    stopping, thread, status, metrics, out = run_loop(
        store, dataplane, Timing(quiet=0.05, max_delay=2.0, resync=60.0, retry=0.05))
    try:
        store.replace("Pod", [pod("a", "10.0.0.1", {"app": "a"})])
        store.replace("NetworkPolicy", [DENY])
        time.sleep(0.1)
        assert dataplane.transactions == []  # no namespaces listed yet: nothing programmed
        store.replace("Namespace", [{"metadata": {"name": "ns"}}])
        wait_for(lambda: status.ready)
        assert len(dataplane.transactions) == 1  # the first sync: one full replace
        for i in range(20):  # a burst, closer together than `quiet`
            store.apply("Pod", "ADDED", pod(f"p{i}", f"10.0.1.{i}", {"app": "p"}))
        wait_for(lambda: len(dataplane.transactions) == 2)
        time.sleep(0.2)
        assert len(dataplane.transactions) == 2  # ... became one delta
        assert metrics.latency._sum.get() > 0
        # two local pods with one address: the compiler refuses, nothing is committed
        store.apply("Pod", "ADDED", pod("dup", "10.0.0.1", {}))
        wait_for(lambda: metrics.sync_failures.labels("compile")._value.get() >= 1)
        assert len(dataplane.transactions) == 2
        dataplane.refuse = True
        store.apply("Pod", "DELETED", pod("dup", "10.0.0.1", {}))
        wait_for(lambda: metrics.sync_failures.labels("dataplane")._value.get() >= 1)
        dataplane.refuse = False
        wait_for(lambda: len(dataplane.transactions) == 3)  # retried, whole
        assert dataplane.transactions[2][1] == {
            "delete": {"table": {"family": "inet", "name": "kubefence"}}}
    finally:
        stopping.set()
        with store.changed:
            store.changed.notify_all()
        thread.join(5)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {e["event"] for e in events} == {"sync", "sync_failed"}
    assert all(e["level"] == "error" for e in events if e["event"] == "sync_failed")


def test_loop_replaces_the_table_whole_every_resync() -> None:
    store, dataplane = Store(), Recorder()
    for kind, items in (("Namespace", [{"metadata": {"name": "ns"}}]), ("NetworkPolicy", [DENY]),
                        ("Pod", [pod("a", "10.0.0.1", {"app": "a"})])):
        store.replace(kind, items)
    stopping, thread, _, metrics, _ = run_loop(store, dataplane, Timing(resync=0.1))
    try:
        wait_for(lambda: metrics.syncs.labels("full")._value.get() >= 3)
    finally:
        stopping.set()
        thread.join(5)
    full = {"delete": {"table": {"family": "inet", "name": "kubefence"}}}
    assert all(t[1] == full for t in dataplane.transactions)


def test_loop_analyses_policy_changes_and_replicas_incrementally() -> None:
    """A policy change and a replica (a pod joining its twin's class) are incremental; a pod
    with labels no pod has needs a class of its own: analysed from scratch."""
    store, dataplane = Store(), Recorder()
    stopping, thread, status, _metrics, out = run_loop(
        store, dataplane, Timing(quiet=0.02, max_delay=1.0, resync=60.0, retry=0.05))
    try:
        store.replace("Namespace", [{"metadata": {"name": "ns"}}])
        store.replace("Pod", [pod("a", "10.0.0.1", {"app": "a"}), pod("b", "10.0.0.2", {})])
        store.replace("NetworkPolicy", [DENY])
        wait_for(lambda: status.ready)
        allow = {"metadata": {"name": "allow", "namespace": "ns"},
                 "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}}
        store.apply("NetworkPolicy", "ADDED", allow)
        wait_for(lambda: len(dataplane.transactions) == 2)
        store.apply("Pod", "ADDED", pod("c", "10.0.0.3", {"app": "a"}))
        wait_for(lambda: len(dataplane.transactions) == 3)
        store.apply("Pod", "ADDED", pod("d", "10.0.0.4", {"app": "new"}))
        wait_for(lambda: len(dataplane.transactions) == 4)
    finally:
        stopping.set()
        thread.join(5)
    syncs = [json.loads(line) for line in out.getvalue().splitlines()
             if json.loads(line).get("msg", json.loads(line).get("event")) == "sync"]
    assert [s["analysis"] for s in syncs] == [
        "first analysis", "incremental", "incremental",
        "pod ns/d needs a peer class of its own"], syncs


def test_assembler_keeps_the_pods_while_only_policies_change() -> None:
    store, assembler = Store(), Assembler()
    store.replace("Namespace", [{"metadata": {"name": "ns"}}])
    store.replace("Pod", [pod("a", "10.0.0.1", {"app": "a"})])
    store.replace("NetworkPolicy", [DENY])
    first = store.snapshot()
    cluster = assembler.cluster(first)
    assert cluster == first.cluster()
    store.apply("NetworkPolicy", "ADDED", {"metadata": {"name": "other", "namespace": "new"},
                                           "spec": {"podSelector": {}}})
    second = store.snapshot()
    after = assembler.cluster(second)
    assert after == second.cluster() and after.pods is cluster.pods  # pods kept, not remade
    assert "new" in after.namespaces  # the policy's namespace exists implicitly
    store.apply("Pod", "ADDED", pod("b", "10.0.0.2", {"app": "b"}))
    third = store.snapshot()
    assert third.by_kind["NetworkPolicy"] is second.by_kind["NetworkPolicy"]  # not re-sorted
    again = assembler.cluster(third)
    assert again == third.cluster() and [p.key for p in again.pods] == ["ns/a", "ns/b"]
