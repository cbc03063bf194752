"""Building the lab: nodes and pods as network namespaces, wired like a simple CNI.

    switch netns (bridge br0)  --veth--  node netns (uplink, 169.254.100.N/24, fd6c:6162::N/64)
    node netns  --veth vNNNN (169.254.1.1, fe80::1)--  pod netns (eth0, pod IP /32 or /128)

Each pod has its addresses on eth0 and a default route to the node (169.254.1.1 / fe80::1, as
Calico does); each node routes its own pods' addresses to their veths and other nodes' pods via
those nodes' uplink addresses. Everything is created inside namespaces the lab owns (veths are
made in a node namespace and moved into a pod's), all named with the run's unique prefix; the
machine's root namespace is never touched and no route leads out of the lab.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from enforcer.placement import assign_round_robin
from lab.netns import LabError, add, delete, existing, run
from policy.addresses import IPAddress
from policy.cluster import ClusterState

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNDERLAY4 = ipaddress.IPv4Network("169.254.100.0/24")
UNDERLAY6 = ipaddress.IPv6Network("fd6c:6162::/64")
POD_GATEWAY4 = "169.254.1.1"
POD_GATEWAY6 = "fe80::1"


@dataclass(frozen=True)
class LabNode:
    name: str
    netns: str
    uplink4: ipaddress.IPv4Address
    uplink6: ipaddress.IPv6Address


@dataclass(frozen=True)
class LabPod:
    key: str
    netns: str
    node: str
    ips: tuple[IPAddress, ...]
    veth: str  # the node-side interface


@dataclass
class Topology:
    prefix: str
    cluster: ClusterState  # with every pod placed on a lab node
    nodes: dict[str, LabNode] = field(default_factory=dict)
    pods: dict[str, LabPod] = field(default_factory=dict)
    switch: str = ""

    def namespaces(self) -> list[str]:
        return existing(self.prefix)


def new_prefix() -> str:
    """Unique per run, short: namespace names appear in veth-free places only."""
    return f"kf{secrets.token_hex(3)}-"


def check_supported(cluster: ClusterState) -> None:
    problems = []
    seen: dict[IPAddress, str] = {}
    for pod in cluster.pods:
        if pod.host_network:
            problems.append(f"{pod.key}: hostNetwork pods are not supported in the lab")
        if not pod.ips:
            problems.append(f"{pod.key}: has no IP (status.podIP); the lab needs pod IPs")
        for ip in pod.ips:
            if ip in seen:
                problems.append(f"{pod.key}: IP {ip} is also {seen[ip]}'s")
            seen[ip] = pod.key
    families = {pod.ips[0].version for pod in cluster.pods if pod.ips}
    if len(families) > 1:
        problems.append("pods' primary addresses mix IPv4 and IPv6; the lab probes every pod "
                        "over one family (put the same family first in every pod's podIPs)")
    if problems:
        raise LabError("; ".join(problems))


def build(cluster: ClusterState, nodes: int = 2, prefix: str | None = None) -> Topology:
    """Create the namespaces and links. On any failure everything made so far is removed."""
    placed = assign_round_robin(cluster, nodes, keep_existing=True)
    check_supported(placed)
    topo = Topology(prefix or new_prefix(), placed)
    try:
        _build(topo, nodes)
    except BaseException:
        teardown(topo)
        raise
    return topo


def _build(topo: Topology, nodes: int) -> None:
    topo.switch = make_switch(topo.prefix)
    for i in range(nodes):
        node = add_node(topo.switch, topo.prefix, i, f"node-{i}")
        topo.nodes[node.name] = node
    for j, pod in enumerate(topo.cluster.pods):
        assert pod.node_name is not None
        node = topo.nodes[pod.node_name]
        netns, veth = f"{topo.prefix}pod-{j}", f"v{j:04d}"
        add_pod(node, netns, veth, pod.ips)
        topo.pods[pod.key] = LabPod(pod.key, netns, node.name, pod.ips, veth)
    for lab_pod in topo.pods.values():
        for node in topo.nodes.values():
            if node.name != lab_pod.node:
                for ip in lab_pod.ips:
                    route_via(node, topo.nodes[lab_pod.node], ipaddress.ip_network(ip))


# The building blocks, also used by the kubelet stand-in of `kubefence lab up` (lab/kubelet.py).

def make_switch(prefix: str) -> str:
    """The switch namespace: one bridge joining every node's uplink."""
    switch = f"{prefix}switch"
    add(switch)
    run("ip", "link", "add", "br0", "type", "bridge", netns=switch)
    run("ip", "link", "set", "br0", "up", netns=switch)
    return switch


def add_node(switch: str, prefix: str, index: int, name: str) -> LabNode:
    """A node namespace (forwarding on) with an uplink on the switch's bridge; its underlay
    addresses are the `index + 1`-th of 169.254.100.0/24 and fd6c:6162::/64."""
    node = LabNode(name, f"{prefix}{name}", UNDERLAY4[index + 1], UNDERLAY6[index + 1])
    add(node.netns)
    for key, value in (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
                       ("net.ipv4.conf.all.rp_filter", "0"),
                       ("net.ipv4.conf.default.rp_filter", "0")):
        run("sysctl", "-qw", f"{key}={value}", netns=node.netns)
    port = f"n{index}"
    run("ip", "link", "add", port, "type", "veth", "peer", "name", "uplink", "netns",
        node.netns, netns=switch)
    run("ip", "link", "set", port, "master", "br0", "up", netns=switch)
    run("ip", "addr", "add", f"{node.uplink4}/{UNDERLAY4.prefixlen}", "dev", "uplink",
        netns=node.netns)
    run("ip", "addr", "add", f"{node.uplink6}/{UNDERLAY6.prefixlen}", "dev", "uplink",
        "nodad", netns=node.netns)
    run("ip", "link", "set", "uplink", "up", netns=node.netns)
    return node


def route_via(node: LabNode, owner: LabNode, network: IPNetwork) -> None:
    """On `node`, route `network` (another node's pod or pod CIDR) to `owner`'s uplink."""
    via = owner.uplink4 if network.version == 4 else owner.uplink6
    run("ip", f"-{network.version}", "route", "add", str(network), "via", str(via),
        "dev", "uplink", netns=node.netns)


def add_pod(node: LabNode, netns: str, veth: str, ips: Sequence[IPAddress]) -> None:
    """A pod namespace `netns` with `ips` on its eth0, joined to `node` by the veth `veth`
    (made in the node's namespace, its peer moved into the pod's), routed /32 or /128."""
    add(netns)
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
        netns=node.netns)
    # The pod's gateway lives on the node's side of every veth, IPv4 and IPv6 alike.
    run("ip", "addr", "add", f"{POD_GATEWAY4}/32", "dev", veth, "scope", "link",
        netns=node.netns)
    run("ip", "addr", "add", f"{POD_GATEWAY6}/64", "dev", veth, "nodad", netns=node.netns)
    run("ip", "link", "set", veth, "up", netns=node.netns)
    run("ip", "link", "set", "eth0", "up", netns=netns)
    for ip in ips:
        if ip.version == 4:
            run("ip", "addr", "add", f"{ip}/32", "dev", "eth0", netns=netns)
        else:
            run("ip", "addr", "add", f"{ip}/128", "dev", "eth0", "nodad", netns=netns)
        run("ip", f"-{ip.version}", "route", "add", f"{ip}/{ip.max_prefixlen}", "dev", veth,
            netns=node.netns)
    if any(ip.version == 4 for ip in ips):
        run("ip", "route", "add", POD_GATEWAY4, "dev", "eth0", "scope", "link", netns=netns)
        run("ip", "route", "add", "default", "via", POD_GATEWAY4, "dev", "eth0", netns=netns)
    if any(ip.version == 6 for ip in ips):
        run("ip", "-6", "route", "add", "default", "via", POD_GATEWAY6, "dev", "eth0",
            netns=netns)


def remove_pod(node: LabNode, netns: str, veth: str) -> None:
    """Undo `add_pod`: the veth pair (and the node's routes over it) first, so its addresses
    are free at once, then the namespace."""
    run("ip", "link", "del", veth, netns=node.netns, check=False)
    delete(netns)


def teardown(topo: Topology) -> None:
    """Delete every namespace of the run (their veths and bridge go with them)."""
    for name in existing(topo.prefix):
        delete(name)
    left = existing(topo.prefix)
    if left:
        raise LabError(f"could not delete lab namespaces: {', '.join(left)}")
