"""`kubefence lab probe`: build the lab for a cluster, enforce, probe, tear down.

The observed matrix comes out in exactly the analyzer's `--probe` JSON contract. A pod's
traffic to itself never leaves its namespace, so no node sees it: the lab also programs each
pod's own namespace (`render.loopback_replace`), so the diagonal is enforced too. SCTP probes
are reported under `not_probed` when the kernel has no SCTP sockets.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from enforcer.compiler import analyses_for, compile_node
from enforcer.dataplane import Dataplane
from enforcer.render import loopback_replace
from enforcer.sync import Syncer
from lab.netns import LabError, inside
from lab.prober import Target, probe_all
from lab.servers import Servers, sctp_available
from lab.signals import handling
from lab.topology import Topology, build, teardown
from policy.cluster import ClusterState
from policy.ports import Protocol

Probe = tuple[int, Protocol]


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root: it creates network namespaces and nftables rules")


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM unwind as KeyboardInterrupt, so the lab is torn down either way. A
    signal that lands where Python swallows exceptions (a `__del__`) is raised again once the
    block has finished."""
    caught: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    def unraisable(info: Any) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):  # ours: raised again below
            previous_hook(info)

    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        with handling((signal.SIGINT, signal.SIGTERM), handler):
            yield
    finally:
        sys.unraisablehook = previous_hook
    if caught:
        raise KeyboardInterrupt


def serve(topo: Topology, servers: Servers) -> None:
    for pod in topo.cluster.pods:
        lab_pod = topo.pods[pod.key]
        for served in {(p.protocol, p.port) for p in pod.ports}:
            for ipv6 in sorted({ip.version == 6 for ip in pod.ips}):
                servers.listen(lab_pod.netns, served[0], served[1], ipv6)
    servers.start()


def enforce(topo: Topology) -> dict[str, Syncer]:
    """Program every node's namespace with its own pods' rules (one syncer per node), and
    every pod's namespace with its rules for traffic to itself."""
    analyses = analyses_for(topo.cluster)
    syncers = {}
    for node in topo.nodes.values():
        ruleset = compile_node(topo.cluster, node.name, analyses)
        with inside(node.netns):
            syncer = Syncer(Dataplane())
            syncer.sync(ruleset)
        syncers[node.name] = syncer
        for rules in ruleset.pods:
            with inside(topo.pods[rules.key].netns):
                Dataplane().apply(loopback_replace(rules))
    return syncers


def observe(topo: Topology, probes: Sequence[Probe]) -> dict[str, Any]:
    keys = [p.key for p in topo.cluster.pods]
    doc: dict[str, Any] = {"pods": keys, "probes": []}
    unprobed = []
    for port, protocol in probes:
        if protocol is Protocol.SCTP and not sctp_available():
            unprobed.append({"port": port, "protocol": protocol.value,
                             "reason": "this kernel has no SCTP sockets"})
            continue
        targets = [Target(topo.pods[s].netns, topo.pods[d].ips[0], protocol, port)
                   for s in keys for d in keys]
        seen = iter(probe_all(targets))
        matrix = {s: {d: next(seen) for d in keys} for s in keys}
        doc["probes"].append({"port": port, "protocol": protocol.value, "matrix": matrix})
    if unprobed:
        doc["not_probed"] = unprobed
    return doc


def probe_cluster(cluster: ClusterState, probes: Sequence[Probe],
                  nodes: int = 2) -> dict[str, Any]:
    """Build, enforce, probe and tear down; the observed matrices as the probe contract."""
    require_root()
    with _interruptible():
        topo = build(cluster, nodes)
        servers = Servers()
        try:
            serve(topo, servers)
            enforce(topo)
            return observe(topo, probes)
        finally:
            servers.close()
            teardown(topo)
