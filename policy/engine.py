"""The engine: what a set of NetworkPolicies allows, for every ordered pair of endpoints.

For each pod and direction the engine finds the policies that select it. A pod no policy of that
direction selects is not isolated: everything is allowed. An isolated pod allows the union of
the rules of those policies (`Policies are additive`). A connection needs both ends: the
client's egress toward the server and the server's ingress from the client.

Everything is computed over peer classes (`policy.classes`): endpoints no policy can tell
apart. Classes that see exactly the same rules (and, for ingress, resolve their named ports
alike) share one *profile*, whose row says which port atoms it allows toward each class: a
`base` mask toward every endpoint (rules without peers) plus a sparse row over classes (CSR).
A cell of the matrix is `egress[profile(src)][class(dst)] & ingress[profile(dst)][class(src)]`;
expanding classes to pods happens only for output. Explanations (`policy.explain`) read the same
compiled rules, so they always agree with the matrix.
"""

from __future__ import annotations

import weakref

import numpy as np

from policy.addresses import Family
from policy.classes import PeerClasses, address_vectors
from policy.cluster import ClusterState, Direction
from policy.gcpause import gc_paused
from policy.incremental import Networks, update
from policy.incremental import cidr_counts as count_cidrs
from policy.namedports import NamedPorts
from policy.portatoms import PortAtoms, Words
from policy.ports import PortSet, Protocol
from policy.profiles import build_side
from policy.progress import Progress, no_progress, span
from policy.rules import (
    BoolArray,
    CompiledPolicy,
    CompiledRule,
    Endpoints,
    IntArray,
    NamedPort,
    PolicyCompiler,
    build_endpoints,
    named_mask,
    rule_port_ranges,
)
from policy.sides import UNRESTRICTED, Side

__all__ = ["UNRESTRICTED", "Analysis", "Side"]

class Analysis:
    """The allow answer for a whole cluster, computed once; cheap to query."""

    def __init__(self, cluster: ClusterState, family: Family | None = None,
                 progress: Progress = no_progress) -> None:
        """`family` picks the address each pod is matched on by ipBlocks: None for its primary
        address, or IPv4/IPv6 to analyse one family of a dual-stack cluster."""
        with gc_paused():
            self._build(cluster, family, progress)

    def _build(self, cluster: ClusterState, family: Family | None, progress: Progress) -> None:
        stage = "analysing"
        self.cluster = cluster
        self.family = family
        self.endpoints: Endpoints = build_endpoints(cluster)
        self.atoms = PortAtoms(rule_port_ranges(cluster))
        progress(stage, 0.05)
        self.compiler = PolicyCompiler(cluster, self.endpoints, self.atoms, family)
        self.classes: PeerClasses = self.compiler.classes
        progress(stage, 0.3)
        self.policies = self.compiler.compile(span(progress, stage, 0.3, 0.5))
        self._index = {self.endpoints.key(j): j for j in range(self.endpoints.count)}
        self.named = NamedPorts(self.endpoints, self.classes, self.atoms)
        self._addresses: dict[Family | None, tuple[IntArray, list[tuple[int, int]]]] = {}
        self._cidr_counts: Networks | None = count_cidrs(cluster.policies)  # for `updated`
        self.ingress: Side = build_side(Direction.INGRESS, self.policies, self.classes,
                                        self.atoms, self.named, span(progress, stage, 0.5, 0.85))
        self.egress: Side = build_side(Direction.EGRESS, self.policies, self.classes, self.atoms,
                                       self.named, span(progress, stage, 0.85, 1.0))
        progress(stage, 1.0)
        self.rebuilt: str | None = "first analysis"
        # The analysis this one was updated from: they share endpoints, atoms, classes and the
        # rows of every profile the older one has, so equal profile numbers mean equal rows.
        self.derived_from: weakref.ReferenceType[Analysis] | None = None

    # -- after a change ---------------------------------------------------------------------

    def updated(self, cluster: ClusterState, progress: Progress = no_progress) -> Analysis:
        """The analysis of `cluster`, a later version of this one's: incremental when only
        policies changed and need nothing finer (`policy.incremental`), else from scratch.
        `rebuilt` tells which: None, or why the analysis was rebuilt."""
        with gc_paused():
            result = update(self, cluster)
        if isinstance(result, str):
            fresh = Analysis(cluster, self.family, progress)
            fresh.rebuilt = result
            return fresh
        return result

    def derived(self, cluster: ClusterState, policies: list[CompiledPolicy], ingress: Side,
                egress: Side, cidr_counts: Networks) -> Analysis:
        """A copy sharing everything but the policies and the sides (for `policy.incremental`)."""
        new = object.__new__(Analysis)
        new.__dict__.update(self.__dict__)
        new.cluster, new.policies, new.ingress, new.egress = cluster, policies, ingress, egress
        new._cidr_counts = cidr_counts
        new.rebuilt = None
        new.derived_from = weakref.ref(self)
        return new

    @property
    def endpoint_index(self) -> dict[str, int]:
        """namespace/name (or an external's key) -> endpoint."""
        return self._index

    def with_pods(self, cluster: ClusterState, endpoints: Endpoints, classes: PeerClasses,
                  index: dict[str, int], ingress: Side, egress: Side) -> Analysis:
        """A copy with other pods in the same classes (for `policy.podchanges`): the
        policies, atoms and profiles are shared; the classes are not, so it is not `derived`
        (the diff's class-level shortcut needs the same classes)."""
        new = object.__new__(Analysis)
        new.__dict__.update(self.__dict__)
        new.cluster, new.endpoints, new.classes = cluster, endpoints, classes
        new.ingress, new.egress = ingress, egress
        new._index = index
        new._addresses = {}
        new.rebuilt = None
        new.derived_from = None
        return new

    def with_cluster(self, cluster: ClusterState) -> Analysis:
        """The same analysis for an equal cluster (other objects, same answers)."""
        new = object.__new__(Analysis)
        new.__dict__.update(self.__dict__)
        new.cluster = cluster
        return new

    def cidr_counts(self) -> Networks:
        if self._cidr_counts is None:
            self._cidr_counts = count_cidrs(self.cluster.policies)
        return self._cidr_counts

    # -- rules, for explanations and lints -------------------------------------------------

    def add_rule(self, out: Words, rule: CompiledRule, subject: int,
                 direction: Direction) -> None:
        """OR into `out` (endpoint x word) the atoms `rule` allows between `subject` and each
        peer: the same step the profile rows are built from, at endpoint level."""
        peers = self.peers_of(rule)
        if direction is Direction.INGRESS:
            mask = rule.fixed | named_mask(self.atoms, self.endpoints.pods[subject], rule.named)
            out[peers] |= self.atoms.to_words(mask)
            return
        out[peers] |= self.atoms.to_words(rule.fixed)
        if rule.named:
            out[peers] |= self.class_named_words(rule.named)[self.classes.class_of[peers]]

    def peers_of(self, rule: CompiledRule) -> BoolArray:
        """(endpoint,) booleans: what the rule's peers match, among this analysis's endpoints."""
        return self.classes.expand(rule.peer_classes)

    def subjects_of(self, policy: CompiledPolicy) -> BoolArray:
        """(pod,) booleans: which of this analysis's pods the policy selects."""
        out: BoolArray = self.classes.expand(policy.subject_classes)[:self.endpoints.n_pods]
        return out

    def rule_words(self, rule: CompiledRule, subject: int, peer: int,
                   direction: Direction) -> Words:
        """(word,): what one rule allows between `subject` and one peer."""
        cls = int(self.classes.class_of[peer])
        k = int(np.searchsorted(rule.peer_classes, cls))
        if not rule.all_peers and (k == len(rule.peer_classes) or rule.peer_classes[k] != cls):
            return np.zeros(self.atoms.words, dtype=np.uint64)
        if direction is Direction.INGRESS:
            pod = self.endpoints.pods[subject]
            return self.atoms.to_words(rule.fixed | named_mask(self.atoms, pod, rule.named))
        out = self.atoms.to_words(rule.fixed)
        if rule.named:
            out = out | self.class_named_words(rule.named)[cls]
        return out

    def class_named_words(self, named: tuple[NamedPort, ...]) -> Words:
        """(class x word): the atoms each class's pods give to these named ports."""
        return self.named.words(named)

    # -- queries -------------------------------------------------------------------------

    def pod_addresses(self, family: Family | None) -> tuple[IntArray, list[tuple[int, int]]]:
        """Each pod's address in `family` (None: its primary address): IPv4 as an int vector
        (-1 for none), IPv6 as (pod, int) pairs. Computed once per family."""
        hit = self._addresses.get(family)
        if hit is None:
            hit = self._addresses[family] = address_vectors(
                [p.address_in(family) for p in self.endpoints.pods])
        return hit

    def index(self, key: str) -> int | None:
        return self._index.get(key)

    def is_external(self, j: int) -> bool:
        return j >= self.endpoints.n_pods

    def side(self, direction: Direction) -> Side:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def isolated(self, pod: int, direction: Direction) -> bool:
        return bool(self.side(direction).isolating[pod])

    def cell_words(self, src: int, dst: int) -> Words:
        cs, cd = int(self.classes.class_of[src]), int(self.classes.class_of[dst])
        eg, ing = self.egress, self.ingress
        out: Words = (eg.lookup(int(eg.profile_of_class[cs]), cd)
                      & ing.lookup(int(ing.profile_of_class[cd]), cs))
        return out

    def allowed(self, src: int, dst: int) -> PortSet:
        """The ports a connection from `src` to `dst` may use. Between two externals: none
        (no policy governs that traffic; it is not part of the matrix)."""
        if self.is_external(src) and self.is_external(dst):
            return PortSet.empty()
        return self.atoms.to_ports(self.atoms.from_words(self.cell_words(src, dst)))

    def class_block(self, sources: IntArray) -> Words:
        """(len(sources) x class x word): cells between source classes and every class, for a
        block of sources at once: their egress rows, ANDed with the ingress column of each
        source gathered through every destination's profile."""
        eg, ing = self.egress, self.ingress
        out = eg.class_rows(eg.profile_of_class[sources])
        out &= ing.class_columns(sources)[:, ing.profile_of_class]
        return out

    def class_block_to(self, destinations: IntArray) -> Words:
        """(len(destinations) x class x word): cells from every class to destination classes
        (the transpose of `class_block`, for columns)."""
        eg, ing = self.egress, self.ingress
        out = eg.class_columns(destinations)[:, eg.profile_of_class]
        out &= ing.class_rows(ing.profile_of_class[destinations])
        return out

    def block(self, sources: IntArray) -> Words:
        """(len(sources) x endpoint x word): cells for a block of source rows at once."""
        classes, inverse = np.unique(self.classes.class_of[sources], return_inverse=True)
        cells = self.class_block(classes)[inverse.reshape(-1)]
        out: Words = cells[:, self.classes.class_of]
        return out

    def probe(self, protocol: Protocol, port: int) -> BoolArray:
        """(endpoint x endpoint) booleans: may src reach dst on this destination port."""
        word, bit = self.atoms.word_bit(protocol, port)
        eg = self.egress.bits(word, bit)[self.egress.profile_of_class]  # src class x dst class
        ing = self.ingress.bits(word, bit)[self.ingress.profile_of_class]  # dst x src
        by_class = eg & ing.T
        of = self.classes.class_of
        out: BoolArray = by_class[of][:, of]
        n = self.endpoints.n_pods
        out[n:, n:] = False
        return out
