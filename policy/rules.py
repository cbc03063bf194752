"""Compiled policies: each rule's peers as a set of peer classes, its ports as atoms.

Endpoints are the cluster's pods (in `ClusterState` order) followed by the external peers; the
compiler first partitions them into peer classes (`policy.classes`) from every selector,
ipBlock and named port the policies use, then answers each policy's podSelector and each
rule's `from`/`to` as a sorted array of class ids. A rule's ports are a fixed atom mask plus
named ports, which resolve against the destination pod: the subject for ingress rules, the
peer for egress rules. Selectors are answered by the label index (`policy.labelindex`), once
per distinct selection, and every selection is turned into classes in one vectorised step; a
rule's peers and ports are computed once per distinct peer keys and port list. Endpoint-level
vectors are expanded from classes only on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policy.addresses import AddressSet, Family
from policy.classes import (
    address_vectors,
    build_classes,
    entry_ranges,
    inside,
    sorted_unique,
)
from policy.cluster import ClusterState, Direction, Peer, PodInfo, Policy, PolicyPort, Rule
from policy.externals import External, external_peers
from policy.labelindex import LabelIndex
from policy.portatoms import PortAtoms
from policy.ports import MAX_PORT, MIN_PORT, Protocol
from policy.selectors import LabelSelector

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
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
    peer_classes: IntArray  # sorted ids of the classes the rule's peers match
    all_peers: bool  # no peers given: every endpoint, externals included
    fixed: int  # atom mask that does not depend on the destination pod
    named: tuple[NamedPort, ...]  # named ports, resolved against the destination pod
    # Class level only: which endpoints that is depends on the analysis's classes
    # (`Analysis.peers_of`), so an analysis can share compiled rules with a later one.


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    policy: Policy
    subject_classes: IntArray  # sorted ids of the classes the policy selects
    rules: Mapping[Direction, tuple[CompiledRule, ...]]
    # Which pods: `Analysis.subjects_of`.


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
    if not named or not pod.ports:
        return m
    for proto, name in named:
        port = pod.resolve_named_port(name, proto)
        if port is not None:
            m |= atoms.mask_range(proto, port, port)
    return m


class PolicyCompiler:
    """Compiles every policy of a cluster against its endpoints and port atoms, over classes."""

    def __init__(self, cluster: ClusterState, endpoints: Endpoints, atoms: PortAtoms,
                 family: Family | None = None) -> None:
        self.cluster = cluster
        self.endpoints = endpoints
        self.atoms = atoms
        self.labels = LabelIndex(endpoints.pods, cluster.namespaces)
        selections, blocks, named = self._features()
        self.named = frozenset(named)  # the named ports the classes agree on
        self.blocks = blocks  # every ipBlock's addresses: pods of a class are in the same ones
        pod_addresses = [p.address_in(family) for p in endpoints.pods]
        self.classes = build_classes(endpoints.pods, len(endpoints.externals),
                                     self.labels.group_of, list(selections.values()), blocks,
                                     named, pod_addresses)
        cls = self.classes
        # group -> its selectable classes, as CSR: a selection's classes in one gather.
        n = endpoints.n_pods
        width = max(cls.count, 1)  # (group, class) pairs, sorted and distinct, as one code each
        codes = sorted_unique(self.labels.group_of * width + cls.class_of[:n])
        pairs = np.stack([codes // width, codes % width], axis=1)
        by_class = pairs[np.argsort(pairs[:, 1], kind="stable")] if len(pairs) else pairs
        self._class_groups = by_class[:, 0] if len(pairs) else np.zeros(0, dtype=np.int64)
        self._class_bounds = np.searchsorted(by_class[:, 1] if len(pairs) else self._class_groups,
                                             np.arange(cls.count + 1))
        pairs = pairs[cls.selectable[pairs[:, 1]]] if len(pairs) else pairs.reshape(0, 2)
        self._group_classes = pairs[:, 1] if len(pairs) else np.zeros(0, dtype=np.int64)
        self._group_bounds = np.searchsorted(pairs[:, 0] if len(pairs) else self._group_classes,
                                             np.arange(self.labels.count + 1))
        # Every class's address for ipBlock matching: its representative's, in the family
        # analysed (an external range's representative stands for the whole range).
        reps = [endpoints.pods[int(j)].address_in(family) if j < n
                else endpoints.externals[int(j) - n].representative for j in cls.representative]
        self._v4, self._v6 = address_vectors(reps)
        self._all = np.arange(cls.count, dtype=np.int64)
        self._cache: dict[object, IntArray] = {}
        self._rule_peers: dict[tuple[object, ...], IntArray] = {}  # peer keys -> classes
        self._ports: dict[tuple[PolicyPort, ...], tuple[int, tuple[NamedPort, ...]]] = {}
        self._next_id = 0
        self._resolve(selections)

    def _features(self) -> tuple[dict[object, IntArray], list[AddressSet], list[NamedPort]]:
        """Every selection (by key), ipBlock and named port the policies use: what tells pods
        apart. Also records the selection key of every podSelector and peer, and the peer keys
        of every rule, so that compiling looks them up instead of computing them again."""
        labels = self.labels
        selections: dict[object, IntArray] = {}
        # Keys by object and the policy's namespace (an object may be shared): the cluster
        # keeps the objects alive, so ids are not reused. Peers' keys are kept per rule.
        self._peer_keys: dict[tuple[int, str], object] = {}
        self._rule_keys: dict[tuple[int, str], tuple[object, ...]] = {}
        blocks: dict[object, AddressSet] = {}
        named: set[NamedPort] = set()
        for policy in self.cluster.policies:
            ns = policy.namespace
            key = labels.key(policy.pod_selector, None, ns)
            self._peer_keys[id(policy.pod_selector), ns] = key
            if key not in selections:
                selections[key] = labels.groups(policy.pod_selector, None, ns, key)
            for rule in policy.ingress + policy.egress:
                keys: list[object] = []
                for peer in rule.peers:
                    if peer.ip_block is not None:
                        addresses = peer.ip_block.addresses
                        blocks.setdefault(addresses, addresses)
                        keys.append(("ip", addresses))
                        continue
                    key = labels.key(peer.pod_selector, peer.namespace_selector, ns)
                    keys.append(("sel", key))
                    if key not in selections:
                        selections[key] = labels.groups(
                            peer.pod_selector, peer.namespace_selector, ns, key)
                self._rule_keys[id(rule), ns] = tuple(keys)
                for port in rule.ports:
                    if isinstance(port.port, str):
                        named.add((port.protocol, port.port))
        return selections, list(blocks.values()), sorted(named)

    def _resolve(self, selections: dict[object, IntArray]) -> None:
        """Every selection's sorted classes, all at once: each selected group gives its classes
        (through the group CSR), then one sort by (selection, class) drops the repeats."""
        if not selections:
            return
        arrays = list(selections.values())
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        groups = np.concatenate(arrays).astype(np.int64, copy=False)
        which, positions = entry_ranges(self._group_bounds[groups],
                                        self._group_bounds[groups + 1])
        count = self.classes.count
        selection = np.repeat(np.arange(len(arrays), dtype=np.int64), lengths)[which]
        codes = sorted_unique(selection * count + self._group_classes[positions])
        owner = codes // count
        members = codes - owner * count
        bounds = np.searchsorted(owner, np.arange(len(arrays) + 1)).tolist()
        for k, key in enumerate(selections):
            self._cache["sel", key] = members[bounds[k]:bounds[k + 1]]

    def compile(self, tick: Callable[[float], None] | None = None) -> list[CompiledPolicy]:
        out = []
        total = len(self.cluster.policies)
        for k, policy in enumerate(self.cluster.policies, start=1):
            out.append(self._policy(policy))
            if tick is not None and k % 2000 == 0:
                tick(k / total)
        return out

    def consistent(self, pod_sel: LabelSelector | None, ns_sel: LabelSelector | None,
                   own_namespace: str) -> bool:
        """Does this selection take every class whole (so the classes need no split for it)?"""
        groups = self.labels.groups(pod_sel, ns_sel, own_namespace)
        b = self._class_bounds
        parts = [self._class_groups[b[c]:b[c + 1]]
                 for c in self._selected(pod_sel, ns_sel, own_namespace).tolist()]
        return not parts or bool(np.isin(np.concatenate(parts), groups).all())

    def compile_policy(self, policy: Policy) -> CompiledPolicy:
        """One more policy, against the same endpoints, atoms and classes."""
        return self._policy(policy)

    def _policy(self, policy: Policy) -> CompiledPolicy:
        subjects = self._selected(policy.pod_selector, None, policy.namespace,
                                  self._peer_keys.get((id(policy.pod_selector), policy.namespace)))
        rules = {Direction.INGRESS: tuple([self._rule(policy, r) for r in policy.ingress]),
                 Direction.EGRESS: tuple([self._rule(policy, r) for r in policy.egress])}
        return CompiledPolicy(policy, subjects, rules)

    def _rule(self, policy: Policy, rule: Rule) -> CompiledRule:
        if not rule.peers:
            # `If this field is empty or missing, this rule matches all sources/destinations`
            peers, every = self._all, True
        else:
            keys = self._rule_keys.get((id(rule), policy.namespace))
            hit = None if keys is None else self._rule_peers.get(keys)
            if hit is None:
                parts = [self._peer(policy, p) for p in rule.peers] if keys is None else \
                    [self._of_key(k) for k in keys]
                hit = parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
                if keys is not None:
                    self._rule_peers[keys] = hit
            peers, every = hit, False
        ports = self._ports.get(rule.ports)
        if ports is None:
            ports = self._ports[rule.ports] = self._port_masks(rule.ports)
        self._next_id += 1
        return CompiledRule(self._next_id - 1, policy, rule, peers, every, ports[0], ports[1])

    def _port_masks(self, ports: tuple[PolicyPort, ...]) -> tuple[int, tuple[NamedPort, ...]]:
        """A rule's ports: the fixed atom mask, and the named ports."""
        fixed = 0
        named: list[NamedPort] = []
        if not ports:
            # `If this field is empty or missing, this rule matches all ports`
            fixed = self.atoms.all_mask
        for port in ports:
            if port.port is None:
                fixed |= self.atoms.mask_range(port.protocol, MIN_PORT, MAX_PORT)
            elif isinstance(port.port, int):
                fixed |= self.atoms.mask_range(port.protocol, port.port, port.end_port or port.port)
            else:
                named.append((port.protocol, port.port))
        return fixed, tuple(named)

    def peer_matches(self, policy: Policy, peer: Peer) -> BoolArray:
        """(endpoint,) booleans: what one peer of one of `policy`'s rules matches on its own
        (a rule's peers are the union of its peers'). A fresh array, safe to modify."""
        return self.classes.expand(self._peer(policy, peer))

    def _of_key(self, key: object) -> IntArray:
        """The classes of one peer, by its key from `_features`: selections are all resolved
        there; an ipBlock is matched on first use."""
        hit = self._cache.get(key)
        if hit is None:
            assert isinstance(key, tuple) and key[0] == "ip"
            hit = self._cache[key] = np.flatnonzero(inside(key[1], self._v4, self._v6))
        return hit

    def _peer(self, policy: Policy, peer: Peer) -> IntArray:
        if peer.ip_block is not None:
            key: object = ("ip", peer.ip_block.addresses)
            hit = self._cache.get(key)
            if hit is None:
                hit = np.flatnonzero(inside(peer.ip_block.addresses, self._v4, self._v6))
                self._cache[key] = hit
            return hit
        return self._selected(peer.pod_selector, peer.namespace_selector, policy.namespace,
                              self._peer_keys.get((id(peer), policy.namespace)))

    def _selected(self, pod_sel: LabelSelector | None, ns_sel: LabelSelector | None,
                  own_namespace: str, known: object = None) -> IntArray:
        """Sorted selectable classes: a podSelector alone picks pods of the policy's namespace,
        a namespaceSelector alone every pod of the selected namespaces, both the pods matching
        the podSelector in those namespaces."""
        key = ("sel", known or self.labels.key(pod_sel, ns_sel, own_namespace))
        hit = self._cache.get(key)
        if hit is None:
            groups = self.labels.groups(pod_sel, ns_sel, own_namespace)
            b = self._group_bounds
            _, positions = entry_ranges(b[groups], b[groups + 1])
            hit = np.unique(self._group_classes[positions])
            self._cache[key] = hit
        return hit

def build_endpoints(cluster: ClusterState) -> Endpoints:
    return Endpoints(cluster.pods, external_peers(cluster))
