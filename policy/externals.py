"""External peers: the address ranges outside the cluster's pods that the policies mention.

Every CIDR that appears in an ipBlock (as `cidr` or in `except`) is a node of a laminar family:
two CIDRs are either nested or disjoint. Each node, minus its children and minus the pods'
addresses, is one external peer: every address in it is matched by exactly the same ipBlocks,
so one row and column of the matrix stands for all of them, named `cidr` or
`cidr except child, ...`. The addresses no ipBlock mentions form one more external peer, the
catch-all `others`, last (when any address is left): matched only by rules whose peers are
empty (all peers).
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from policy.addresses import AddressSet, Family, IPAddress, IPNetwork
from policy.cluster import ClusterState


@dataclass(frozen=True, slots=True)
class External:
    cidr: str
    excepts: tuple[str, ...]  # child CIDRs carved out of it
    addresses: AddressSet  # what is left, pod addresses removed
    representative: IPAddress  # an address of the range, for probes and explanations
    catch_all: bool = False  # the addresses no ipBlock mentions

    @property
    def key(self) -> str:
        if self.catch_all:
            return CATCH_ALL
        return self.cidr + (f" except {','.join(self.excepts)}" if self.excepts else "")


CATCH_ALL = "others"


def mentioned_networks(cluster: ClusterState) -> list[IPNetwork]:
    cidrs: set[str] = set()
    for policy in cluster.policies:
        for rule in policy.ingress + policy.egress:
            for peer in rule.peers:
                if peer.ip_block is not None:
                    cidrs.add(peer.ip_block.cidr)
                    cidrs.update(peer.ip_block.excepts)
    nets = {ipaddress.ip_network(c) for c in cidrs}
    return sorted(nets, key=lambda n: (n.version, n.network_address.packed, n.prefixlen))


def external_peers(cluster: ClusterState) -> tuple[External, ...]:
    nets = mentioned_networks(cluster)
    taken = {f: sorted({int(a) for a in _pod_addresses(cluster) if a.version == f})
             for f in (4, 6)}
    pod_addresses = AddressSet([(n, n) for n in taken[4]], [(n, n) for n in taken[6]])
    children: dict[IPNetwork, list[IPNetwork]] = {n: [] for n in nets}
    stack: list[IPNetwork] = []  # the chain of enclosing networks, sorted order makes it work
    for net in nets:
        while stack and not _contains(stack[-1], net):
            stack.pop()
        if stack:
            children[stack[-1]].append(net)
        stack.append(net)
    out = []
    for net in nets:
        rest = AddressSet.from_network(net) - AddressSet(
            *_split([AddressSet.from_network(c) for c in children[net]]))
        rest = rest - _pods_within(taken[net.version], net)
        rep = rest.first_address()
        if rep is None:
            continue
        out.append(External(str(net), tuple(str(c) for c in children[net]), rest, rep))
    mentioned = AddressSet(*_split([AddressSet.from_network(n) for n in nets]))
    rest = AddressSet.everything() - mentioned - pod_addresses
    rep = rest.first_address()
    if rep is not None:  # nothing is left when the policies mention 0.0.0.0/0 and ::/0
        out.append(External("", (), rest, rep, catch_all=True))
    return tuple(out)


def _split(sets: list[AddressSet]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The intervals of many sets, per family, for one normalising union."""
    v4 = [iv for s in sets for iv in s.intervals(Family.IPV4)]
    v6 = [iv for s in sets for iv in s.intervals(Family.IPV6)]
    return v4, v6


def _pods_within(sorted_addresses: list[int], net: IPNetwork) -> AddressSet:
    lo, hi = int(net.network_address), int(net.broadcast_address)
    inside = sorted_addresses[bisect_left(sorted_addresses, lo):bisect_right(sorted_addresses, hi)]
    pairs = [(n, n) for n in inside]
    return AddressSet(pairs) if net.version == 4 else AddressSet((), pairs)


def _pod_addresses(cluster: ClusterState) -> list[IPAddress]:
    """Every address a pod answers on, in any family: none of them is external."""
    out: list[IPAddress] = []
    for pod in cluster.pods:
        out.extend(pod.ips)
        if pod.host_network and pod.host_ip is not None:
            out.append(pod.host_ip)
    return out


def _contains(outer: IPNetwork, inner: IPNetwork) -> bool:
    return (
        outer.version == inner.version
        and outer.prefixlen <= inner.prefixlen
        and inner.network_address in outer
    )
