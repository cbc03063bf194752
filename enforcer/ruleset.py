"""The typed intermediate ruleset of one node: what each local pod allows, before any nftables.

A pod isolated in a direction has a set of allowed (peer address range, protocol, port range)
elements; a pod not isolated has `None` there and is left out of the dispatch maps, so its
traffic falls through to accept. Elements of one pod and direction never overlap (the compiler
partitions them), which nftables interval sets require, and which lets deltas add and delete
exactly the elements that were committed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from policy.addresses import Family, IPAddress
from policy.cluster import Direction
from policy.ports import Protocol


@dataclass(frozen=True, slots=True, order=True)
class Element:
    """Allowed: peer addresses lo..hi (one family), protocol, destination ports lo..hi."""

    family: Family
    addr_lo: int
    addr_hi: int
    protocol: Protocol
    port_lo: int
    port_hi: int


@dataclass(frozen=True, slots=True)
class PodRules:
    key: str  # namespace/name
    addresses: tuple[IPAddress, ...]  # the addresses dispatched to this pod's chains
    ingress: frozenset[Element] | None  # None: not isolated for ingress
    egress: frozenset[Element] | None  # None: not isolated for egress

    @property
    def ident(self) -> str:
        """A short, stable name for the pod's chains and sets (nft names are length-limited)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    def elements(self, direction: Direction) -> frozenset[Element] | None:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True, slots=True)
class NodeRuleset:
    node: str
    pods: tuple[PodRules, ...]  # sorted by key

    def by_key(self) -> dict[str, PodRules]:
        return {p.key: p for p in self.pods}

    def element_count(self) -> int:
        return sum(len(p.ingress or ()) + len(p.egress or ()) for p in self.pods)
