"""The compiler: the policy engine's allow answer for a node's pods, as a `NodeRuleset`.

Nothing here evaluates a policy. For each local pod and direction the engine's profile row
(`Analysis.side(d).class_row(profile)`) already says which port atoms each peer class (pods
alike for every policy, or one external range) may use; the compiler groups endpoints by that
mask, class by class and vectorized, turns each group's
addresses into disjoint intervals, and each mask into port ranges, per address family. Named
ports, endPort ranges, ipBlock excepts and the SCTP/TCP split are all in those masks already.
hostNetwork pods, and pods without an address, are not programmed.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import numpy.typing as npt

from enforcer.ruleset import Element, NodeRuleset, PodRules
from policy.addresses import AddressSet, Family
from policy.cluster import ClusterState, Direction, PodInfo
from policy.engine import UNRESTRICTED, Analysis
from policy.errors import KubefenceError
from policy.portatoms import Words


class CompileError(KubefenceError):
    """A node's pods cannot be enforced as the policies say (e.g. two share an address)."""


def local_pods(cluster: ClusterState, node: str) -> list[PodInfo]:
    return [p for p in cluster.pods if p.node_name == node and not p.host_network and p.ips]


def analyses_for(cluster: ClusterState) -> dict[Family, Analysis]:
    """One analysis per address family the pods use."""
    families = sorted({Family(ip.version) for p in cluster.pods for ip in p.ips})
    return {f: Analysis(cluster, f) for f in families}


def update_analyses(previous: dict[Family, Analysis] | None,
                    cluster: ClusterState) -> dict[Family, Analysis]:
    """`analyses_for(cluster)`, each family's analysis updated incrementally from the previous
    one when there is one (`Analysis.updated`: cheap when only policies changed)."""
    if previous and all(a.cluster.pods is cluster.pods for a in previous.values()):
        families = sorted(previous)  # the very same pods: the same families
    else:
        families = sorted({Family(ip.version) for p in cluster.pods for ip in p.ips})
    return {f: previous[f].updated(cluster) if previous and f in previous
            else Analysis(cluster, f) for f in families}


def compile_node(cluster: ClusterState, node: str,
                 analyses: dict[Family, Analysis] | None = None) -> NodeRuleset:
    analyses = analyses if analyses is not None else analyses_for(cluster)
    pods = sorted(local_pods(cluster, node), key=lambda p: p.key)
    _check_unique_addresses(pods)
    cache: dict[tuple[Family, Direction, int], frozenset[Element]] = {}
    rules = []
    for pod in pods:
        rules.append(PodRules(
            key=pod.key,
            addresses=pod.ips,
            ingress=_direction(analyses, pod, Direction.INGRESS, cache),
            egress=_direction(analyses, pod, Direction.EGRESS, cache),
        ))
    return NodeRuleset(node, tuple(rules))


def _check_unique_addresses(pods: list[PodInfo]) -> None:
    owner: dict[object, str] = {}
    for pod in pods:
        for ip in pod.ips:
            if ip in owner:
                raise CompileError(f"pods {owner[ip]} and {pod.key} on the same node share the "
                                   f"address {ip}; their rules cannot be told apart")
            owner[ip] = pod.key


def _direction(analyses: dict[Family, Analysis], pod: PodInfo, direction: Direction,
               cache: dict[tuple[Family, Direction, int], frozenset[Element]],
               ) -> frozenset[Element] | None:
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
        key = (family, direction, profile)  # pods of one profile share their elements
        if key not in cache:
            cache[key] = frozenset(_elements(analysis, family, side.class_row(profile)))
        elements |= cache[key]
    return frozenset(elements) if isolated else None


def _elements(analysis: Analysis, family: Family, row: Words) -> set[Element]:
    """Group endpoints by allowed mask (class by class); addresses of one mask become disjoint
    intervals. Pods sharing an address (hostNetwork pods on one node) get the OR of masks."""
    classes, n = analysis.classes, analysis.endpoints.n_pods
    allowed = np.zeros(classes.count, dtype=bool)
    allowed[np.flatnonzero(row.any(axis=1))] = True
    if not allowed.any():
        return set()
    endpoints = np.flatnonzero(allowed[classes.class_of])
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for mask, lo, hi in _pod_ranges(analysis, family, row, endpoints[endpoints < n]):
        groups[mask].append((lo, hi))
    for j in endpoints[endpoints >= n].tolist():
        mask = analysis.atoms.from_words(row[classes.class_of[j]])
        groups[mask].extend(analysis.endpoints.externals[j - n].addresses.intervals(family))
    out: set[Element] = set()
    for mask, intervals in groups.items():
        addresses = AddressSet(intervals) if family is Family.IPV4 else AddressSet((), intervals)
        ports = analysis.atoms.to_ports(mask)
        for lo, hi in addresses.intervals(family):
            for proto, plo, phi in ports.items():
                out.add(Element(family, lo, hi, proto, plo, phi))
    return out


def _pod_ranges(analysis: Analysis, family: Family, row: Words, pods: npt.NDArray[np.int64],
                ) -> list[tuple[int, int, int]]:
    """(mask, first address, last address) runs of consecutive pod addresses with one mask."""
    v4, v6 = analysis.pod_addresses(family)
    if family is Family.IPV6:  # rare, and beyond 64 bits: one by one
        wanted = set(pods.tolist())
        by_address: dict[int, int] = defaultdict(int)
        for j, address in v6:
            if j in wanted:
                by_address[address] |= analysis.atoms.from_words(
                    row[analysis.classes.class_of[j]])
        return [(m, a, a) for a, m in by_address.items()]
    v4 = v4[pods]
    pods = pods[v4 >= 0]
    v4 = v4[v4 >= 0]
    if not len(pods):
        return []
    order = np.argsort(v4, kind="stable")
    v4, words = v4[order], row[analysis.classes.class_of[pods[order]]]
    first = np.ones(len(v4), dtype=bool)
    first[1:] = v4[1:] != v4[:-1]
    starts = np.flatnonzero(first)
    v4, words = v4[starts], np.bitwise_or.reduceat(words, starts, axis=0)  # shared addresses
    masks, group_of = np.unique(words, axis=0, return_inverse=True)
    group_of = group_of.reshape(-1)
    out: list[tuple[int, int, int]] = []
    for g, mask_words in enumerate(masks):
        mask = analysis.atoms.from_words(mask_words)
        addrs = v4[group_of == g]
        breaks = np.flatnonzero(np.diff(addrs) != 1)
        los = np.r_[addrs[0], addrs[breaks + 1]]
        his = np.r_[addrs[breaks], addrs[-1]]
        out.extend((mask, int(lo), int(hi)) for lo, hi in zip(los, his, strict=True))
    return out
