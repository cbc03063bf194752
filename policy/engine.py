"""The engine: what a set of NetworkPolicies allows, for every ordered pair of endpoints.

For each pod and direction the engine finds the policies that select it. A pod no policy of that
direction selects is not isolated: everything is allowed. An isolated pod allows the union of
the rules of those policies (`Policies are additive`). A connection needs both ends: the
client's egress toward the server and the server's ingress from the client.

Pods that see exactly the same rules (and, for ingress, resolve their named ports alike) share
one *profile*: a (peers x words) array of allowed port atoms. A cell of the matrix is
`egress[profile(src)][dst] & ingress[profile(dst)][src]`. Explanations (`policy.explain`) read
the same compiled rules, so they always agree with the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policy.addresses import Family
from policy.cluster import ClusterState, Direction
from policy.portatoms import PortAtoms, Words
from policy.ports import PortSet, Protocol
from policy.rules import (
    BoolArray,
    CompiledPolicy,
    CompiledRule,
    Endpoints,
    PolicyCompiler,
    build_endpoints,
    named_mask,
    rule_port_ranges,
)

UNRESTRICTED = 0  # profile index of "not isolated": every peer, every port


@dataclass(frozen=True, eq=False)
class Side:
    """One direction's answer for every endpoint: profile index and the rules behind it."""

    direction: Direction
    profile_of: npt.NDArray[np.int64]  # endpoint -> profile; externals are UNRESTRICTED
    arrays: npt.NDArray[np.uint64]  # profile x endpoint x word
    rules_of: tuple[tuple[CompiledRule, ...], ...]  # per pod: the rules that apply to it
    isolating: tuple[tuple[CompiledPolicy, ...], ...]  # per pod: the policies isolating it


class Analysis:
    """The allow answer for a whole cluster, computed once; cheap to query."""

    def __init__(self, cluster: ClusterState, family: Family | None = None) -> None:
        """`family` picks the address each pod is matched on by ipBlocks: None for its primary
        address, or IPv4/IPv6 to analyse one family of a dual-stack cluster."""
        self.cluster = cluster
        self.family = family
        self.endpoints: Endpoints = build_endpoints(cluster)
        self.atoms = PortAtoms(rule_port_ranges(cluster))
        self.policies = PolicyCompiler(cluster, self.endpoints, self.atoms, family).compile()
        self._index = {self.endpoints.key(j): j for j in range(self.endpoints.count)}
        self._named_cache: dict[tuple[tuple[Protocol, str], ...], Words] = {}
        self.ingress = self._side(Direction.INGRESS)
        self.egress = self._side(Direction.EGRESS)

    # -- building ------------------------------------------------------------------------

    def _side(self, direction: Direction) -> Side:
        ep = self.endpoints
        n, count, words = ep.n_pods, ep.count, self.atoms.words
        rules_of: list[list[CompiledRule]] = [[] for _ in range(n)]
        isolating: list[list[CompiledPolicy]] = [[] for _ in range(n)]
        for cp in self.policies:
            if direction not in cp.policy.policy_types:
                continue
            rules = cp.rules[direction]
            for i in np.flatnonzero(cp.subjects).tolist():
                isolating[i].append(cp)
                rules_of[i].extend(rules)
        profiles: dict[object, int] = {}
        profile_of = np.full(count, UNRESTRICTED, dtype=np.int64)
        for i in range(n):
            if not isolating[i]:
                continue
            key: object = tuple(r.id for r in rules_of[i])
            if direction is Direction.INGRESS:  # named ports resolve on the subject itself
                key = (key, tuple(named_mask(self.atoms, ep.pods[i], r.named) for r in rules_of[i]))
            profile_of[i] = profiles.setdefault(key, len(profiles) + 1)
        arrays = np.zeros((len(profiles) + 1, count, words), dtype=np.uint64)
        arrays[UNRESTRICTED] = self.atoms.to_words(self.atoms.all_mask)
        built = set()
        for i in range(n):
            prof = int(profile_of[i])
            if prof != UNRESTRICTED and prof not in built:
                built.add(prof)
                for rule in rules_of[i]:
                    self.add_rule(arrays[prof], rule, i, direction)
        return Side(
            direction,
            profile_of,
            arrays,
            tuple(tuple(r) for r in rules_of),
            tuple(tuple(p) for p in isolating),
        )

    def add_rule(self, out: Words, rule: CompiledRule, subject: int,
                 direction: Direction) -> None:
        """OR into `out` (endpoint x word) the atoms `rule` allows between `subject` and each
        peer: the one step both the matrix and the explanations are built from."""
        if direction is Direction.INGRESS:
            mask = rule.fixed | named_mask(self.atoms, self.endpoints.pods[subject], rule.named)
            out[rule.peers] |= self.atoms.to_words(mask)
            return
        out[rule.peers] |= self.atoms.to_words(rule.fixed)
        if rule.named:
            out[rule.peers] |= self._named_words(rule.named)[rule.peers]

    def rule_contribution(self, rule: CompiledRule, subject: int,
                          direction: Direction) -> Words:
        """(endpoint x word): what one rule alone allows (for explanations)."""
        out = np.zeros((self.endpoints.count, self.atoms.words), dtype=np.uint64)
        self.add_rule(out, rule, subject, direction)
        return out

    def _named_words(self, named: tuple[tuple[Protocol, str], ...]) -> Words:
        cache = self._named_cache
        hit = cache.get(named)
        if hit is None:
            ep = self.endpoints
            hit = np.zeros((ep.count, self.atoms.words), dtype=np.uint64)
            for j, pod in enumerate(ep.pods):
                m = named_mask(self.atoms, pod, named)
                if m:
                    hit[j] = self.atoms.to_words(m)
            cache[named] = hit
        return hit

    # -- queries -------------------------------------------------------------------------

    def index(self, key: str) -> int | None:
        return self._index.get(key)

    def is_external(self, j: int) -> bool:
        return j >= self.endpoints.n_pods

    def side(self, direction: Direction) -> Side:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def isolated(self, pod: int, direction: Direction) -> bool:
        return bool(self.side(direction).isolating[pod])

    def cell_words(self, src: int, dst: int) -> Words:
        out: Words = (
            self.egress.arrays[self.egress.profile_of[src], dst]
            & self.ingress.arrays[self.ingress.profile_of[dst], src]
        )
        return out

    def allowed(self, src: int, dst: int) -> PortSet:
        """The ports a connection from `src` to `dst` may use. Between two externals: none
        (no policy governs that traffic; it is not part of the matrix)."""
        if self.is_external(src) and self.is_external(dst):
            return PortSet.empty()
        return self.atoms.to_ports(self.atoms.from_words(self.cell_words(src, dst)))

    def block(self, sources: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
        """(len(sources) x endpoint x word): cells for a block of source rows at once."""
        eg = self.egress.arrays[self.egress.profile_of[sources]]  # src x dst x w
        ing = self.ingress.arrays[:, sources][self.ingress.profile_of]  # dst x src x w
        out: npt.NDArray[np.uint64] = eg & ing.transpose(1, 0, 2)
        return out

    def probe(self, protocol: Protocol, port: int) -> BoolArray:
        """(endpoint x endpoint) booleans: may src reach dst on this destination port."""
        word, bit = self.atoms.word_bit(protocol, port)
        eg = (self.egress.arrays[:, :, word] & bit) != 0  # profile x dst
        ing = (self.ingress.arrays[:, :, word] & bit) != 0  # profile x src
        out: BoolArray = eg[self.egress.profile_of] & ing[self.ingress.profile_of].T
        n = self.endpoints.n_pods
        out[n:, n:] = False
        return out
