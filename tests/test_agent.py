"""The node agent against a real control plane (`tests.labcluster`), with a network namespace
standing in for the node: programs what the compiler says, follows changes, fails closed.

Privileged: each test makes its own network namespaces (unique names, always deleted) and
never touches the nftables of the namespace it runs in. Objects are made with kubectl in a
namespace of their own per test, pods bound to a per-test node (spec.nodeName) and given an
address through the status subresource, as a kubelet would.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from enforcer.agent import watch as watch_module
from enforcer.agent.agent import api_client
from enforcer.agent.logs import Log
from enforcer.agent.metrics import Metrics
from enforcer.agent.store import Store
from enforcer.agent.watch import RESOURCES, Gone, Watcher
from enforcer.compiler import compile_node
from enforcer.dataplane import Dataplane
from enforcer.render import full_replace
from kubefence.cli import main
from lab import netns
from lab.prober import Target, probe_all
from lab.servers import Servers
from policy.loader import load_texts
from policy.ports import Protocol
from tests.labcluster import LabCluster

pytestmark = pytest.mark.privileged

WAIT = 10.0  # seconds any expected change may take


def poll(what: str, check: Callable[[], bool], timeout: float = WAIT,
         interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(interval)


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """A node name, a Kubernetes namespace and two network namespaces (the node, a scratch
    one to render the expected table in), unique to the test; the netns deleted after."""
    tag = secrets.token_hex(3)
    made = {"node": f"agent-node-{tag}", "ns": f"agent-{tag}", "netns": f"kfag{tag}-node",
            "scratch": f"kfag{tag}-exp"}
    for key in ("netns", "scratch"):
        netns.add(made[key])
    try:
        yield made
    finally:
        for key in ("netns", "scratch"):
            netns.delete(made[key])


def pod(name: str, ns: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "image": "pause", "ports": [{"containerPort": 80}]}]}}


def policy(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def apply(cluster: LabCluster, *objects: dict[str, Any]) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))


def add_pod(cluster: LabCluster, name: str, ns: str, node: str, labels: dict[str, str],
            ip: str) -> None:
    apply(cluster, pod(name, ns, node, labels))
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}
    cluster.kubectl("-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge",
                    "-p", json.dumps(status))


def table(ns: str) -> Any:
    """The kernel's table in network namespace `ns`, without handles; None if absent."""
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet",
                           "kubefence"], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        return None
    return _strip([o for o in json.loads(proc.stdout)["nftables"] if "metainfo" not in o])


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def expected_table(cluster: LabCluster, node: str, scratch: str) -> Any:
    """What the compiler makes of the objects as `kubectl get -o json` shows them, committed
    in the scratch namespace and listed back."""
    doc = cluster.get_json("namespaces,pods,networkpolicies", "-A")
    ruleset = compile_node(load_texts([("cluster.json", json.dumps(doc), False)]), node)
    with netns.inside(scratch):
        Dataplane().apply(full_replace(ruleset))
    return table(scratch)


class AgentProcess:
    """`kubefence agent` as a subprocess; its JSON log lines collected as they come."""

    def __init__(self, kubeconfig: str, node: str, ns: str, *extra: str) -> None:
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubefence", "agent", "--node", node, "--kubeconfig",
             kubeconfig, "--netns", ns, "--health-port", "0", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        poll("the agent logs its start", lambda: self.logged("start") is not None)
        start = self.logged("start")
        assert start is not None
        self.health = str(start["health"])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(json.loads(line))  # every line must be JSON

    def logged(self, event: str) -> dict[str, Any] | None:
        return next((r for r in list(self.lines) if r["event"] == event), None)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.health + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str) -> float:
        """The sum of a metric's samples of that exact name (all labels)."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == name or sample.startswith(name + "{"):
                total += float(value)
        return total

    def wait_ready(self) -> None:
        poll("/readyz answers 200", lambda: self.get("/readyz")[0] == 200, timeout=20)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._reader.join(5)


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def base_objects(cluster: LabCluster, n: dict[str, str]) -> None:
    """Namespace; pods a (app=a) and b (app=b) on the node, r (app=b) on another node;
    policy deny isolates every pod of the namespace for ingress."""
    cluster.kubectl("create", "namespace", n["ns"])
    octet = 1 + secrets.randbelow(250)
    add_pod(cluster, "a", n["ns"], n["node"], {"app": "a"}, f"10.{octet}.1.10")
    add_pod(cluster, "b", n["ns"], n["node"], {"app": "b"}, f"10.{octet}.1.11")
    add_pod(cluster, "r", n["ns"], n["node"] + "-other", {"app": "b"}, f"10.{octet}.2.10")
    n["prefix"] = f"10.{octet}"
    apply(cluster, policy("deny", n["ns"], {"podSelector": {}}))


def test_agent_programs_the_node_and_follows_changes(
        lab_cluster: LabCluster, names: dict[str, str],
        agents: list[AgentProcess]) -> None:
    c, n = lab_cluster, names
    base_objects(c, n)
    agent = AgentProcess(c.kubeconfig, n["node"], n["netns"])
    agents.append(agent)
    agent.wait_ready()
    want = expected_table(c, n["node"], n["scratch"])
    assert "in-" in json.dumps(want)  # both local pods are isolated: not a trivial table
    poll("the kernel holds the compiled ruleset", lambda: table(n["netns"]) == want)

    def follows(what: str) -> None:
        target = expected_table(c, n["node"], n["scratch"])
        poll(what, lambda: table(n["netns"]) == target)

    # a policy that lets app=b reach app=a on 80
    allow = policy("allow", n["ns"], {"podSelector": {"matchLabels": {"app": "a"}},
                                      "ingress": [{"from": [{"podSelector": {
                                          "matchLabels": {"app": "b"}}}],
                                          "ports": [{"port": 80}]}]})
    apply(c, allow)
    follows("a new policy is programmed")
    assert agent.metric("kubefence_agent_programmed_elements") > 0

    c.kubectl("-n", n["ns"], "label", "pod", "r", "app=z", "--overwrite")
    follows("a relabelled remote pod leaves a's allowed peers")

    add_pod(c, "c", n["ns"], n["node"], {"app": "c"}, f"{n['prefix']}.1.12")
    follows("a new pod on the node is isolated")
    assert f"{n['prefix']}.1.12" in json.dumps(table(n["netns"]))

    c.kubectl("-n", n["ns"], "delete", "networkpolicy", "allow")
    follows("a deleted policy is removed")

    # a pod the compiler cannot enforce (an address another local pod has): the sync fails,
    # the last good ruleset stays, and it recovers once the pod is gone
    failures = agent.metric("kubefence_agent_sync_failures_total")
    good = table(n["netns"])
    add_pod(c, "dup", n["ns"], n["node"], {"app": "a"}, f"{n['prefix']}.1.10")
    poll("the failed sync is counted",
         lambda: agent.metric("kubefence_agent_sync_failures_total") > failures)
    assert table(n["netns"]) == good
    failed = agent.logged("sync_failed")
    assert failed is not None and failed["level"] == "error" and failed["reason"] == "compile"
    c.kubectl("-n", n["ns"], "delete", "pod", "dup", "--grace-period=0", "--force")
    follows("the agent recovers once the pod is gone")

    # the metrics of the issue are there and moved
    assert agent.metric('kubefence_agent_syncs_total{kind="delta"}') >= 4
    assert agent.metric('kubefence_agent_sync_duration_seconds_count{kind="full"}') >= 1
    assert agent.metric('kubefence_agent_sync_duration_seconds_count{kind="delta"}') >= 4
    assert agent.metric("kubefence_agent_enforcement_latency_seconds_count") >= 4
    assert agent.metric("kubefence_agent_event_to_commit_seconds_count") >= 4
    assert agent.get("/healthz")[0] == 200
    assert agent.stop() == 0
    assert table(n["netns"]) is not None  # stopping leaves the rules in force


def test_restart_keeps_isolation_and_replaces_atomically(
        lab_cluster: LabCluster, names: dict[str, str],
        agents: list[AgentProcess]) -> None:
    c, n = lab_cluster, names
    base_objects(c, n)
    first = AgentProcess(c.kubeconfig, n["node"], n["netns"])
    agents.append(first)
    first.wait_ready()
    before = expected_table(c, n["node"], n["scratch"])
    poll("the first agent programmed the node", lambda: table(n["netns"]) == before)
    assert first.stop() == 0
    assert table(n["netns"]) == before  # down: the rules stay

    # while it is down, a policy changes; the restart must apply it, and a's dispatch entry
    # (its isolation) must be there at every moment
    apply(c, policy("allow", n["ns"], {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}))
    a_ip = f"{n['prefix']}.1.10"
    seen: list[bool] = []
    done = threading.Event()

    def watch_map() -> None:
        with netns.inside(n["netns"]):
            import nftables  # the bindings, bound to this namespace at creation

            nft = nftables.Nftables()
        while not done.is_set():
            rc, out, _ = nft.cmd("list map inet kubefence ingress4")
            seen.append(rc == 0 and a_ip in out)

    poller = threading.Thread(target=watch_map, daemon=True)
    poller.start()
    try:
        second = AgentProcess(c.kubeconfig, n["node"], n["netns"])
        agents.append(second)
        second.wait_ready()
        after = expected_table(c, n["node"], n["scratch"])
        assert after != before
        poll("the restarted agent applied the change", lambda: table(n["netns"]) == after)
    finally:
        done.set()
        poller.join(10)
    assert len(seen) > 20 and all(seen), f"{seen.count(False)} of {len(seen)} lookups open"
    sync = second.logged("sync")
    assert sync is not None and sync["kind"] == "full"  # the start replaced the table whole
    assert second.stop() == 0


def test_pods_own_namespaces_decide_their_traffic_to_itself(
        lab_cluster: LabCluster, names: dict[str, str],
        agents: list[AgentProcess]) -> None:
    """With --pod-netns-prefix, a pod's connection to its own address (over its `lo`, never
    seen by the node) follows the policies too: real packets in a namespace named by its uid."""
    c, n = lab_cluster, names
    base_objects(c, n)
    a_ip = f"{n['prefix']}.1.10"
    uid = c.kubectl("-n", n["ns"], "get", "pod", "a", "-o", "jsonpath={.metadata.uid}").strip()
    prefix = f"kfag{n['node'][-6:]}p-"
    pod_ns = prefix + uid
    netns.add(pod_ns)
    servers = Servers()
    try:
        netns.run("ip", "addr", "add", f"{a_ip}/32", "dev", "lo", netns=pod_ns)
        assert servers.listen(pod_ns, Protocol.TCP, 80, ipv6=False)
        servers.start()

        def to_itself() -> bool:
            return probe_all([Target(pod_ns, ipaddress.ip_address(a_ip), Protocol.TCP, 80)],
                             timeout=0.5)[0]

        assert to_itself()  # nothing programmed there yet
        agent = AgentProcess(c.kubeconfig, n["node"], n["netns"], "--pod-netns-prefix", prefix)
        agents.append(agent)
        agent.wait_ready()
        poll("a (isolated for ingress) cannot reach itself", lambda: not to_itself())
        assert table(pod_ns) is not None
        missing = agent.logged("pod_netns_missing")  # b has an address but no namespace here
        assert missing is not None and missing["pods"] == [f"{n['ns']}/b"]

        apply(c, policy("self", n["ns"], {"podSelector": {"matchLabels": {"app": "a"}},
                                          "ingress": [{"from": [{"podSelector": {
                                              "matchLabels": {"app": "a"}}}]}]}))
        poll("a policy letting app=a reach app=a opens it", to_itself)
        apply(c, policy("self", n["ns"], {"podSelector": {"matchLabels": {"app": "a"}},
                                          "ingress": [{"from": [{"podSelector": {
                                              "matchLabels": {"app": "a"}}}],
                                              "ports": [{"port": 81}]}]}))
        poll("the policy narrowed to another port closes it again", lambda: not to_itself())
        assert agent.metric("kubefence_agent_pod_netns_failures_total") == 0
        assert agent.stop() == 0
        assert not to_itself()  # stopping leaves the pod's table in force too
    finally:
        servers.close()
        netns.delete(pod_ns)


def test_health_endpoints_before_the_first_sync(
        lab_cluster: LabCluster, names: dict[str, str],
        agents: list[AgentProcess], tmp_path: Path) -> None:
    # an API server that does not answer: never a full picture, so never a sync
    config = yaml.safe_load(Path(lab_cluster.kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = "https://127.0.0.1:1"
    kubeconfig = tmp_path / "down.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    agent = AgentProcess(str(kubeconfig), names["node"], names["netns"])
    agents.append(agent)
    poll("watch errors are counted",
         lambda: agent.metric("kubefence_agent_watch_errors_total") >= 3)
    assert agent.get("/healthz")[0] == 200
    code, body = agent.get("/readyz")
    assert code == 503 and "no full sync" in body
    _, metrics = agent.get("/metrics")
    for name in ("kubefence_agent_sync_duration_seconds", "kubefence_agent_sync_failures_total",
                 "kubefence_agent_programmed_elements",
                 "kubefence_agent_enforcement_latency_seconds"):
        assert f"# TYPE {name} " in metrics
    assert 'kubefence_agent_sync_failures_total{reason="dataplane"} 0.0' in metrics
    assert agent.get("/nope")[0] == 404
    assert table(names["netns"]) is None  # nothing was programmed
    warning = agent.logged("watch_error")
    assert warning is not None and warning["level"] == "warning"
    assert agent.stop() == 0


class _ExpiredWatch:
    """The response of a watch whose resourceVersion is too old, byte for byte as the API
    server streams it: one ERROR event carrying a 410 Status. (The lab's API server answers
    old resourceVersions from its watch cache, which forgets events only after minutes, so a
    real one cannot be had within a test.) The client's own watch code turns it into an
    `ApiException` with status 410."""

    status = 200

    def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
        yield json.dumps({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 1 (4242)", "reason": "Expired",
            "code": 410}}).encode() + b"\n"

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def test_watch_relists_on_410_gone(lab_cluster: LabCluster) -> None:
    """410 Gone on a watch: the watcher lists again (against the real API server), replaces
    the kind in the store, and watches on from the new resourceVersion."""
    api = api_client(lab_cluster.kubeconfig)
    store, metrics, stopping = Store(), Metrics(), threading.Event()
    pods = next(r for r in RESOURCES if r.name == "pods")
    watcher = Watcher(pods, api, store, Log(open("/dev/null", "w")),  # noqa: SIM115
                      metrics, stopping, timeout=5)
    real = watcher._list
    calls: list[dict[str, Any]] = []

    def first_watch_expires(*args: Any, **kwargs: Any) -> Any:
        calls.append(dict(kwargs))
        if kwargs.get("watch") and sum(1 for c in calls if c.get("watch")) == 1:
            return _ExpiredWatch()
        return real(*args, **kwargs)

    watcher._list = first_watch_expires
    with pytest.raises(Gone):
        watcher.watch_once("1")
    calls.clear()
    watcher.start()
    try:
        poll("the watcher relisted after 410",
             lambda: metrics.relists.labels("pods", "gone")._value.get() == 1)
        poll("and watches again from the new resourceVersion",
             lambda: sum(1 for c in calls if c.get("watch")) >= 2)
        assert store.snapshot().counts["Pod"] == len(
            lab_cluster.get_json("pods", "-A")["items"])
        watches = [c for c in calls if c.get("watch")]
        assert watches[-1]["resource_version"] == watcher.resource_version
        assert watches[-1]["allow_watch_bookmarks"] is True
        assert watches[-1]["timeout_seconds"] == 5
    finally:
        stopping.set()
        watcher.stop()
        watcher.thread.join(10)
        api.close()
    assert not watcher.thread.is_alive()


def test_list_is_paged_and_complete(lab_cluster: LabCluster, names: dict[str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 2 against the real API server: every pod arrives, in several requests chained
    by `continue`, and the resourceVersion is the list's."""
    c, n = lab_cluster, names
    c.kubectl("create", "namespace", n["ns"])
    for i in range(5):
        apply(c, pod(f"p{i}", n["ns"], n["node"], {"app": "p"}))
    monkeypatch.setattr(watch_module, "LIST_PAGE", 2)
    api = api_client(c.kubeconfig)
    store = Store()
    pods = next(r for r in RESOURCES if r.name == "pods")
    watcher = Watcher(pods, api, store, Log(open("/dev/null", "w")),  # noqa: SIM115
                      Metrics(), threading.Event(), timeout=5)
    real = watcher._list
    calls: list[dict[str, Any]] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(dict(kwargs))
        return real(*args, **kwargs)

    watcher._list = counted
    try:
        rv = watcher.relist("start")
    finally:
        api.close()
    live = c.get_json("pods", "-A")["items"]
    assert store.snapshot().counts["Pod"] == len(live) >= 5
    assert len(calls) == -(-len(live) // 2) and all(k["limit"] == 2 for k in calls)
    assert "_continue" not in calls[0] and all(k["_continue"] for k in calls[1:])
    assert int(rv) > 0


def test_agent_requires_a_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent"]) == 2
    assert "--node" in capsys.readouterr().err


class Proxy:
    """A TCP forwarder to the API server whose connections can all be cut at once (TLS goes
    through untouched): a network that drops the agent's watches."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("https://").rpartition(":")
        self._upstream = (host, int(port))
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._conns += [client, upstream]
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(conns) // 2

    def close(self) -> None:
        self._server.close()
        self.cut()


def test_agent_reconnects_after_its_connections_are_cut(
        lab_cluster: LabCluster, names: dict[str, str],
        agents: list[AgentProcess], tmp_path: Path) -> None:
    c, n = lab_cluster, names
    base_objects(c, n)
    proxy = Proxy(c.server)
    try:
        config = yaml.safe_load(Path(c.kubeconfig).read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
        kubeconfig = tmp_path / "proxied.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        agent = AgentProcess(str(kubeconfig), n["node"], n["netns"])
        agents.append(agent)
        agent.wait_ready()
        assert proxy.cut() >= 3  # the three watches at least
        before = proxy.accepted
        apply(c, policy("allow", n["ns"], {"podSelector": {},
                                           "ingress": [{"ports": [{"port": 8080}]}]}))
        target = expected_table(c, n["node"], n["scratch"])
        poll("the agent reconnected and applied the change",
             lambda: table(n["netns"]) == target)
        assert proxy.accepted > before  # new connections, through the same proxy
        assert agent.get("/readyz")[0] == 200
        assert agent.stop() == 0
    finally:
        proxy.close()
