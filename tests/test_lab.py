"""Real packets: the lab's observed matrix against the analyzer and upstream's expectations.

Privileged: each test builds network namespaces (nodes and pods over two or more lab nodes),
programs every node with the enforcer, probes with real connections and tears it all down.
Traffic stays inside namespaces the lab made. A pod's traffic to itself never leaves its own
namespace; the lab enforces it there, and the diagonal is graded separately.
"""

from __future__ import annotations

import io
import json
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from analyzer.matrix import Probe, probe_document
from enforcer.compiler import compile_node
from enforcer.dataplane import Dataplane, DataplaneError
from enforcer.placement import assign_round_robin
from enforcer.sync import Syncer
from kubefence.cli import main
from lab import netns
from lab.netns import LabError
from lab.probe import enforce, observe, probe_cluster, serve
from lab.servers import Servers
from lab.topology import build, teardown
from policy.cluster import ClusterState
from policy.engine import Analysis
from policy.loader import load, load_texts
from policy.ports import Protocol
from tests.conftest import conformance_cases
from tests.strategies import clusters, mentioned_ports, to_yaml

pytestmark = pytest.mark.privileged
CASES = conformance_cases()


def root_links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          check=True).stdout


def analyzer_doc(cluster: ClusterState, probes: list[tuple[int, Protocol]]) -> dict[str, Any]:
    return probe_document(Analysis(cluster), [Probe(p, proto) for p, proto in probes])


def off_diagonal(doc: dict[str, Any]) -> list[tuple[int, str, str, str, bool]]:
    return sorted((p["port"], p["protocol"], s, d, v) for p in doc["probes"]
                  for s, row in p["matrix"].items() for d, v in row.items() if s != d)


def diagonal(doc: dict[str, Any]) -> list[bool]:
    return [p["matrix"][s][s] for p in doc["probes"] for s in p["matrix"]]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_packets_match_analyzer_and_upstream(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text())
    probes = [(p["port"], Protocol(p["protocol"])) for p in expected["probes"]]
    cluster = load([str(case / "cluster.yaml"), str(case / "policies.yaml")])
    links_before = root_links()
    observed = probe_cluster(cluster, probes, nodes=2)
    assert root_links() == links_before  # nothing attached to the machine's own namespace
    unprobed = {(u["port"], u["protocol"]) for u in observed.get("not_probed", [])}
    analyzer = analyzer_doc(cluster, [p for p in probes if (p[0], p[1].value) not in unprobed])
    upstream = {"probes": [p for p in expected["probes"]
                           if (p["port"], p["protocol"]) not in unprobed]}
    assert observed["pods"] == analyzer["pods"]
    assert off_diagonal(observed) == off_diagonal(analyzer) == off_diagonal(upstream)
    # Graded apart: upstream ignores it; the cases and the analyzer give plain semantics.
    assert diagonal(observed) == diagonal(analyzer) == diagonal(upstream)
    if unprobed:
        assert all(proto == "SCTP" for _, proto in unprobed)


def _lab_ready(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lab needs no hostNetwork pods and a unique primary address per pod, all of one
    family: every pod gets an IPv4 primary (its own, or a new one when it has none or shares it:
    hostNetwork pods report their node's), IPv6 ones stay secondary."""
    out = []
    taken: set[str] = set()
    for i, obj in enumerate(objects):
        if obj.get("kind") == "Pod":
            obj = json.loads(json.dumps(obj))
            obj.setdefault("spec", {})["hostNetwork"] = False
            status = obj.setdefault("status", {})
            ips = [p["ip"] for p in status.get("podIPs") or []] or (
                [status["podIP"]] if status.get("podIP") else [])
            v4 = [ip for ip in ips if ":" not in ip and ip not in taken] or [f"10.0.3.{i + 1}"]
            taken.add(v4[0])
            ips = v4[:1] + [ip for ip in ips if ":" in ip][:1]
            status["podIP"] = ips[0]
            status["podIPs"] = [{"ip": ip} for ip in ips]
        out.append(obj)
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(max_pods=4, max_policies=3))
def test_random_clusters_packets_match_analyzer(objects: list[dict[str, Any]]) -> None:
    objects = _lab_ready(objects)
    cluster = load_texts([("random.yaml", to_yaml(objects), False)])
    ports = sorted(mentioned_ports(objects) | {80})[:3]
    probes = [(p, proto) for p in ports for proto in (Protocol.TCP, Protocol.UDP)]
    observed = probe_cluster(cluster, probes, nodes=2)
    analyzer = analyzer_doc(cluster, probes)
    assert off_diagonal(observed) == off_diagonal(analyzer)
    assert diagonal(observed) == diagonal(analyzer)


def canonical(table: dict[str, Any]) -> list[str]:
    """A listed table without handles, counters and ordering: what delta and full must share."""
    out = []
    for obj in table["nftables"]:
        for kind, body in obj.items():
            if kind == "metainfo":
                continue
            body = dict(body)
            body.pop("handle", None)
            if kind == "rule":
                body["expr"] = [e for e in body["expr"] if "counter" not in e]
            if "elem" in body:
                body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
            out.append(json.dumps({kind: body}, sort_keys=True))
    return sorted(out)


def _case(name: str) -> ClusterState:
    root = CASES[0].parent / name
    return load([str(root / "cluster.yaml"), str(root / "policies.yaml")])


@pytest.mark.parametrize(("before", "after"), [
    ("updated-policy__step1", "updated-policy__step2"),
    ("ingress-from-updated-pod__step1", "ingress-from-updated-pod__step2"),
    ("default-deny-ingress", "allow-all"),
    ("allow-all", "ingress-and-egress-together"),
])
def test_delta_and_full_replace_give_same_kernel_state_and_packets(before: str,
                                                                   after: str) -> None:
    probes = [(80, Protocol.TCP), (81, Protocol.TCP)]
    topo = build(_case(before), nodes=2)
    servers = Servers()
    try:
        serve(topo, servers)
        syncers = enforce(topo)
        # Same pods (names, IPs, nodes) in the second state: only labels and policies change.
        second = _case(after)
        placed = {p.key: p.node_name for p in topo.cluster.pods}
        second = replace(second, pods=tuple(replace(p, node_name=placed[p.key])
                                            for p in second.pods))
        states = {}
        for mode in ("delta", "full"):
            for node in topo.nodes.values():
                with netns.inside(node.netns):
                    result = syncers[node.name].sync(compile_node(second, node.name),
                                                     full=mode == "full")
                    assert result.kind in ((mode, "none") if mode == "delta" else ("full",))
            listed = {}
            for node in topo.nodes.values():
                with netns.inside(node.netns):
                    listed[node.name] = canonical(Dataplane().list_table("inet", "kubefence"))
            topo.cluster = second
            states[mode] = (listed, off_diagonal(observe(topo, probes)))
        assert states["delta"] == states["full"]
        assert states["full"][1] == off_diagonal(analyzer_doc(second, probes))
    finally:
        servers.close()
        teardown(topo)


def test_failed_transaction_changes_nothing_and_syncer_recovers_with_full_replace() -> None:
    name = f"kf-t-{secrets.token_hex(3)}"
    netns.add(name)
    try:
        with netns.inside(name):
            dp = Dataplane()
            syncer = Syncer(dp)
            syncer.sync(compile_node(_placed(_case("default-deny-ingress")), "node-0"))
            before = canonical(dp.list_table("inet", "kubefence"))
            # One batch: a valid change, then one the kernel refuses. Nothing of it applies.
            table = {"family": "inet", "table": "kubefence"}
            with pytest.raises(DataplaneError):
                dp.apply([
                    {"add": {"chain": {**table, "name": "extra"}}},
                    {"add": {"element": {**table, "name": "no-such-set", "elem": ["10.0.0.1"]}}},
                ])
            assert canonical(dp.list_table("inet", "kubefence")) == before
            # The kernel loses the table behind the syncer's back: the next delta fails, and
            # the syncer replaces the table whole.
            dp.apply([{"delete": {"table": {"family": "inet", "name": "kubefence"}}}])
            target = compile_node(_placed(_case("ingress-and-egress-together")), "node-0")
            result = syncer.sync(target)
            assert result.kind == "full"
            recovered = canonical(dp.list_table("inet", "kubefence"))
            fresh = Syncer(dp)
            fresh.sync(target, full=True)
            assert recovered == canonical(dp.list_table("inet", "kubefence"))
    finally:
        netns.delete(name)


def _placed(cluster: ClusterState) -> ClusterState:
    return assign_round_robin(cluster, 2)


def test_lab_is_torn_down_when_building_fails() -> None:
    cluster = _case("allow-all")
    bad = replace(cluster, pods=(*cluster.pods, replace(cluster.pods[0], name="dup")))
    before = set(netns.existing("kf"))
    with pytest.raises(LabError, match="also"):
        build(bad, nodes=2)
    assert set(netns.existing("kf")) == before


def test_cli_lab_probe_prints_the_contract(tmp_path: Path) -> None:
    case = CASES[0].parent / "ingress-one-named-port"
    proc = subprocess.run(
        [sys.executable, "-m", "kubefence", "lab", "probe", str(case / "cluster.yaml"),
         str(case / "policies.yaml"), "--probe", "80/TCP", "--probe", "81/TCP"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    observed = json.loads(proc.stdout)
    cluster = load([str(case / "cluster.yaml"), str(case / "policies.yaml")])
    analyzer = analyzer_doc(cluster, [(80, Protocol.TCP), (81, Protocol.TCP)])
    assert observed["pods"] == analyzer["pods"]
    assert off_diagonal(observed) == off_diagonal(analyzer)


def test_cli_lab_probe_without_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[0].parent / "allow-all"
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    out, err = io.StringIO(), io.StringIO()
    assert main(["lab", "probe", str(case / "cluster.yaml")], out=out, err=err) == 2
    assert err.getvalue() == ("error: the lab needs root: it creates network namespaces and "
                              "nftables rules\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_lab_probe_tears_everything_down(sig: signal.Signals) -> None:
    """Interrupt `kubefence lab probe` while its lab is up; every namespace it made goes."""
    case = CASES[0].parent / "default-deny-all"
    before = set(netns.existing("kf"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubefence", "lab", "probe", str(case / "cluster.yaml"),
         str(case / "policies.yaml"), "--probe", "80/TCP", "--probe", "81/TCP"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(netns.existing("kf")) - before:
        time.sleep(0.05)  # wait until the lab exists
    assert set(netns.existing("kf")) - before, "the lab never came up"
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert set(netns.existing("kf")) == before
