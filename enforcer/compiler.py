"""The compiler: the policy engine's allow answer for a node's pods, as a `NodeRuleset`.

Nothing here evaluates a policy. For each local pod and direction the engine's profile row
(`Analysis.side(d).arrays[profile]`) already says which port atoms each endpoint (pod or
external range) may use; the compiler groups endpoints by that mask, turns each group's
addresses into disjoint intervals, and each mask into port ranges, per address family. Named
ports, endPort ranges, ipBlock excepts and the SCTP/TCP split are all in those masks already.
hostNetwork pods, and pods without an address, are not programmed.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from enforcer.ruleset import Element, NodeRuleset, PodRules
from policy.addresses import AddressSet, Family
from policy.cluster import ClusterState, Direction, PodInfo
from policy.engine import UNRESTRICTED, Analysis


def local_pods(cluster: ClusterState, node: str) -> list[PodInfo]:
    return [p for p in cluster.pods if p.node_name == node and not p.host_network and p.ips]


def analyses_for(cluster: ClusterState) -> dict[Family, Analysis]:
    """One analysis per address family the pods use."""
    families = sorted({Family(ip.version) for p in cluster.pods for ip in p.ips})
    return {f: Analysis(cluster, f) for f in families}


def compile_node(cluster: ClusterState, node: str,
                 analyses: dict[Family, Analysis] | None = None) -> NodeRuleset:
    analyses = analyses if analyses is not None else analyses_for(cluster)
    pods = []
    for pod in sorted(local_pods(cluster, node), key=lambda p: p.key):
        pods.append(PodRules(
            key=pod.key,
            addresses=pod.ips,
            ingress=_direction(analyses, pod, Direction.INGRESS),
            egress=_direction(analyses, pod, Direction.EGRESS),
        ))
    return NodeRuleset(node, tuple(pods))


def _direction(analyses: dict[Family, Analysis], pod: PodInfo,
               direction: Direction) -> frozenset[Element] | None:
    elements: set[Element] = set()
    isolated = False
    for family, analysis in analyses.items():
        if not any(ip.version == family for ip in pod.ips):
            continue
        index = analysis.index(pod.key)
        assert index is not None
        side = analysis.side(direction)
        profile = int(side.profile_of[index])
        if profile == UNRESTRICTED:
            continue
        isolated = True
        elements |= _elements(analysis, family, side.arrays[profile])
    return frozenset(elements) if isolated else None


def _elements(analysis: Analysis, family: Family, row: np.ndarray) -> set[Element]:
    """Group endpoints by allowed mask; addresses of one mask become disjoint intervals."""
    ep = analysis.endpoints
    masks: dict[int, int] = defaultdict(int)  # pod address -> OR of masks (shared IPs)
    for j, pod in enumerate(ep.pods):
        addr = pod.address_in(family)
        if addr is not None and row[j].any():
            masks[int(addr)] |= analysis.atoms.from_words(row[j])
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n, mask in masks.items():
        groups[mask].append((n, n))
    for k, ext in enumerate(ep.externals):
        words = row[ep.n_pods + k]
        if words.any():
            groups[analysis.atoms.from_words(words)].extend(ext.addresses.intervals(family))
    out: set[Element] = set()
    for mask, intervals in groups.items():
        addresses = AddressSet(intervals) if family is Family.IPV4 else AddressSet((), intervals)
        ports = analysis.atoms.to_ports(mask)
        for lo, hi in addresses.intervals(family):
            for proto, plo, phi in ports.items():
                out.add(Element(family, lo, hi, proto, plo, phi))
    return out
