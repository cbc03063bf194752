"""The cluster state the engine reasons about: namespaces, pods and defaulted policies.

These are the typed, defaulted forms of the API objects in `policy.models`, built once by
`policy.defaults` at load. Nothing here is optional that the API server would default: every
port has a protocol, every policy has its policyTypes, every ipBlock is an `AddressSet` with
its excepts already subtracted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from policy.addresses import AddressSet, Family, IPAddress
from policy.errors import Location, Problem
from policy.ports import Protocol
from policy.selectors import LabelSelector

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class Direction(StrEnum):
    """Which end of a connection a policy rule governs for its subject pod."""

    INGRESS = "Ingress"  # the subject is the server; the peer is the client
    EGRESS = "Egress"  # the subject is the client; the peer is the server


@dataclass(frozen=True, slots=True)
class ServedPort:
    """A container port of a pod: what a named port in a policy resolves to."""

    name: str | None
    protocol: Protocol
    port: int


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod, or a workload standing for its pods (kind is then the workload's kind)."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ports: tuple[ServedPort, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    host_network: bool = False
    host_ip: IPAddress | None = None
    node_name: str | None = None
    kind: str = "Pod"
    location: Location = field(default_factory=Location)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def address(self) -> IPAddress | None:
        """The source/destination address others see: a hostNetwork pod is its node's IP."""
        if self.host_network:
            return self.host_ip or (self.ips[0] if self.ips else None)
        return self.ips[0] if self.ips else None

    def address_in(self, family: Family | None) -> IPAddress | None:
        """The address others see in one IP family (None: the primary address). A dual-stack
        cluster is analysed one family at a time; a pod without an address in that family
        is matched by selectors only."""
        if family is None:
            return self.address
        if self.host_network:
            return self.host_ip if self.host_ip and self.host_ip.version == family else None
        return next((ip for ip in self.ips if ip.version == family), None)

    def resolve_named_port(self, name: str, protocol: Protocol) -> int | None:
        """`named port ... on a pod`: the container port with that name and protocol, if any."""
        for p in self.ports:
            if p.name == name and p.protocol is protocol:
                return p.port
        return None


@dataclass(frozen=True, slots=True)
class PolicyPort:
    """A defaulted NetworkPolicyPort: `port` None means every port of the protocol."""

    protocol: Protocol
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class IPBlockPeer:
    cidr: str  # as the API server stores it (host bits cleared)
    excepts: tuple[str, ...]
    addresses: AddressSet  # cidr minus every except

    def __str__(self) -> str:
        return self.cidr + (f" except {', '.join(self.excepts)}" if self.excepts else "")


@dataclass(frozen=True, slots=True)
class Peer:
    """One `from`/`to` entry. Selector peers and ipBlock peers never mix (validation)."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlockPeer | None = None

    def __str__(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector}")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class Rule:
    """An ingress or egress rule. Empty `peers` matches every peer; empty `ports` every port."""

    direction: Direction
    index: int
    peers: tuple[Peer, ...]
    ports: tuple[PolicyPort, ...]
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    policy_types: frozenset[Direction]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    location: Location = field(default_factory=Location)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True, slots=True)
class ClusterState:
    """Everything loaded: what the engine needs, plus what the loader has to tell the user."""

    namespaces: Mapping[str, Mapping[str, str]]  # name -> labels (with the name label)
    pods: tuple[PodInfo, ...]
    policies: tuple[Policy, ...]
    warnings: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    service_ips: Mapping[str, tuple[IPAddress, ...]] = field(default_factory=dict)  # ns/name

    def pod(self, key: str) -> PodInfo | None:
        for p in self.pods:
            if p.key == key:
                return p
        return None
