"""Compiled policies: each rule's peers as a boolean vector over endpoints, its ports as atoms.

Endpoints are the cluster's pods (in `ClusterState` order) followed by the external peers. A
rule's peer vector answers "does this rule's `from`/`to` match endpoint j"; its ports are a
fixed atom mask plus named ports, which resolve against the destination pod: the subject for
ingress rules, the peer for egress rules. Selector matching runs once per distinct
(namespace, labels) group, not once per pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policy.addresses import Family
from policy.cluster import ClusterState, Direction, Peer, PodInfo, Policy, Rule
from policy.externals import External, external_peers
from policy.portatoms import PortAtoms
from policy.ports import MAX_PORT, MIN_PORT, Protocol
from policy.selectors import LabelSelector

BoolArray = npt.NDArray[np.bool_]
NamedPort = tuple[Protocol, str]


@dataclass(frozen=True)
class Endpoints:
    """Pods then externals; index j < n_pods is a pod."""

    pods: tuple[PodInfo, ...]
    externals: tuple[External, ...]

    @property
    def n_pods(self) -> int:
        return len(self.pods)

    @property
    def count(self) -> int:
        return len(self.pods) + len(self.externals)

    def key(self, j: int) -> str:
        return self.pods[j].key if j < len(self.pods) else self.externals[j - len(self.pods)].key

    def keys(self) -> list[str]:
        return [self.key(j) for j in range(self.count)]


@dataclass(frozen=True, eq=False)
class CompiledRule:
    id: int
    policy: Policy
    rule: Rule
    peers: BoolArray  # over endpoints
    fixed: int  # atom mask that does not depend on the destination pod
    named: tuple[NamedPort, ...]  # named ports, resolved against the destination pod


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    policy: Policy
    subjects: BoolArray  # over pods: which pods the policy selects
    rules: Mapping[Direction, tuple[CompiledRule, ...]]


def rule_port_ranges(cluster: ClusterState) -> Iterator[tuple[Protocol, int, int]]:
    """Every port range a rule can allow, named ports resolved on every pod: the atom cuts."""
    named: set[NamedPort] = set()
    for policy in cluster.policies:
        for rule in policy.ingress + policy.egress:
            for port in rule.ports:
                if isinstance(port.port, int):
                    yield port.protocol, port.port, port.end_port or port.port
                elif isinstance(port.port, str):
                    named.add((port.protocol, port.port))
    for pod in cluster.pods:
        for served in pod.ports:
            if served.name is not None and (served.protocol, served.name) in named:
                yield served.protocol, served.port, served.port


def named_mask(atoms: PortAtoms, pod: PodInfo, named: tuple[NamedPort, ...]) -> int:
    """The atoms a pod's container ports give to a rule's named ports (0 where undefined)."""
    m = 0
    for proto, name in named:
        port = pod.resolve_named_port(name, proto)
        if port is not None:
            m |= atoms.mask_range(proto, port, port)
    return m


class PolicyCompiler:
    """Compiles every policy of a cluster against its endpoints and port atoms."""

    def __init__(self, cluster: ClusterState, endpoints: Endpoints, atoms: PortAtoms,
                 family: Family | None = None) -> None:
        self.cluster = cluster
        self.endpoints = endpoints
        self.atoms = atoms
        groups: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        index = []
        for pod in endpoints.pods:
            key = (pod.namespace, tuple(sorted(pod.labels.items())))
            index.append(groups.setdefault(key, len(groups)))
        self._group_of = np.array(index, dtype=np.int64)
        self._group_count = len(groups)
        # Label groups by namespace, so a selector only looks at the namespaces it can match.
        self._groups_in: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for (ns, labels), g in groups.items():
            self._groups_in.setdefault(ns, []).append((g, dict(labels)))
        self._selectable = np.array([not p.host_network for p in endpoints.pods], dtype=bool)
        # Pod addresses for ipBlock matching: IPv4 as a vector, the (rarer) IPv6 as a list.
        # Every endpoint's address for ipBlock matching: a pod's address in the family analysed,
        # an external range's representative. External ranges are cells of the laminar family
        # of mentioned CIDRs, so a range lies inside a block exactly when its representative
        # does. IPv4 as one vector; the (rarer) IPv6 addresses as a list.
        addresses = [p.address_in(family) for p in endpoints.pods]
        addresses += [e.representative for e in endpoints.externals]
        self._v4 = np.array([int(a) if a is not None and a.version == 4 else -1
                             for a in addresses], dtype=np.int64)
        self._v6 = [(j, int(a)) for j, a in enumerate(addresses)
                    if a is not None and a.version == 6]
        self._cache: dict[object, BoolArray] = {}
        self._next_id = 0

    def compile(self) -> list[CompiledPolicy]:
        return [self._policy(p) for p in self.cluster.policies]

    def _policy(self, policy: Policy) -> CompiledPolicy:
        subjects = self._pods_matching(policy.pod_selector, None, policy.namespace)
        rules = {d: tuple(self._rule(policy, r) for r in policy.rules(d)) for d in Direction}
        return CompiledPolicy(policy, subjects, rules)

    def _rule(self, policy: Policy, rule: Rule) -> CompiledRule:
        n = self.endpoints.count
        if not rule.peers:
            # `If this field is empty or missing, this rule matches all sources/destinations`
            peers = np.ones(n, dtype=bool)
        else:
            peers = np.zeros(n, dtype=bool)
            for peer in rule.peers:
                peers |= self._peer(policy, peer)
        fixed = 0
        named: list[NamedPort] = []
        if not rule.ports:
            # `If this field is empty or missing, this rule matches all ports`
            fixed = self.atoms.all_mask
        for port in rule.ports:
            if port.port is None:
                fixed |= self.atoms.mask_range(port.protocol, MIN_PORT, MAX_PORT)
            elif isinstance(port.port, int):
                fixed |= self.atoms.mask_range(port.protocol, port.port, port.end_port or port.port)
            else:
                named.append((port.protocol, port.port))
        self._next_id += 1
        return CompiledRule(self._next_id - 1, policy, rule, peers, fixed, tuple(named))

    def peer_matches(self, policy: Policy, peer: Peer) -> BoolArray:
        """(endpoint,) booleans: what one peer of one of `policy`'s rules matches on its own
        (a rule's compiled vector is the OR of its peers). A fresh array, safe to modify."""
        return self._peer(policy, peer).copy()

    def _peer(self, policy: Policy, peer: Peer) -> BoolArray:
        out = np.zeros(self.endpoints.count, dtype=bool)
        if peer.ip_block is not None:
            block = peer.ip_block.addresses
            for lo, hi in block.intervals(Family.IPV4):
                out |= (self._v4 >= lo) & (self._v4 <= hi)
            v6 = block.intervals(Family.IPV6)
            for j, n in self._v6:
                out[j] = any(lo <= n <= hi for lo, hi in v6)
            return out
        # podSelector alone: pods of the policy's namespace. namespaceSelector alone: every pod
        # of the selected namespaces. Both: the pods matching podSelector in those namespaces.
        out[: self.endpoints.n_pods] = self._pods_matching(
            peer.pod_selector, peer.namespace_selector, policy.namespace
        )
        return out

    def _pods_matching(
        self, pod_sel: LabelSelector | None, ns_sel: LabelSelector | None, own_namespace: str
    ) -> BoolArray:
        key = (
            pod_sel.key() if pod_sel else None,
            ns_sel.key() if ns_sel else None,
            own_namespace if ns_sel is None else None,
        )
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if ns_sel is None:
            namespaces = {own_namespace}
        else:
            namespaces = {
                ns for ns, labels in self.cluster.namespaces.items() if ns_sel.matches(labels)
            }
        group_ok = np.zeros(self._group_count, dtype=bool)
        for ns in namespaces:
            for g, labels in self._groups_in.get(ns, ()):
                group_ok[g] = pod_sel is None or pod_sel.matches(labels)
        result: BoolArray = (
            group_ok[self._group_of] if len(self._group_of) else np.zeros(0, dtype=bool)
        ) & self._selectable
        self._cache[key] = result
        return result


def build_endpoints(cluster: ClusterState) -> Endpoints:
    return Endpoints(cluster.pods, external_peers(cluster))
