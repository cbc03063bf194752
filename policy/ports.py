"""Port sets: immutable unions of (protocol, port range), the port half of every allow answer.

A NetworkPolicy port is a protocol (TCP, UDP or SCTP, kept apart) and a port or an inclusive
range `port..endPort`. `PortSet` is the algebra the engine and analyzer use for them: union,
intersection and difference return new sets; nothing mutates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum

from policy.intervals import Interval as Range
from policy.intervals import intersect, normalise, subtract

MIN_PORT = 1
MAX_PORT = 65535


class Protocol(StrEnum):
    """`protocol represents the protocol (TCP, UDP, or SCTP) which traffic must match.`"""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class PortSet:
    """An immutable set of (protocol, port) pairs, stored as merged ranges per protocol."""

    __slots__ = ("_by_proto",)

    def __init__(self, by_proto: Mapping[Protocol, Iterable[Range]] | None = None) -> None:
        norm: dict[Protocol, tuple[Range, ...]] = {}
        for proto in Protocol:
            ranges = normalise((by_proto or {}).get(proto, ()))
            if ranges:
                norm[proto] = ranges
        self._by_proto = norm

    @classmethod
    def empty(cls) -> PortSet:
        return cls()

    @classmethod
    def all(cls) -> PortSet:
        return cls({p: [(MIN_PORT, MAX_PORT)] for p in Protocol})

    @classmethod
    def of(cls, protocol: Protocol, lo: int, hi: int | None = None) -> PortSet:
        """One protocol's port `lo`, or its inclusive range `lo..hi`."""
        return cls({protocol: [(lo, lo if hi is None else hi)]})

    @classmethod
    def whole(cls, protocol: Protocol) -> PortSet:
        return cls({protocol: [(MIN_PORT, MAX_PORT)]})

    def ranges(self, protocol: Protocol) -> tuple[Range, ...]:
        return self._by_proto.get(protocol, ())

    def items(self) -> Iterator[tuple[Protocol, int, int]]:
        """(protocol, lo, hi) for every range, in protocol then port order."""
        for proto in Protocol:
            for lo, hi in self._by_proto.get(proto, ()):
                yield proto, lo, hi

    def is_empty(self) -> bool:
        return not self._by_proto

    def is_all(self) -> bool:
        return self == PortSet.all()

    def contains(self, protocol: Protocol, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self._by_proto.get(protocol, ()))

    def __or__(self, other: PortSet) -> PortSet:
        return PortSet({p: self.ranges(p) + other.ranges(p) for p in Protocol})

    def __and__(self, other: PortSet) -> PortSet:
        return PortSet({p: intersect(self.ranges(p), other.ranges(p)) for p in Protocol})

    def __sub__(self, other: PortSet) -> PortSet:
        return PortSet({p: subtract(self.ranges(p), other.ranges(p)) for p in Protocol})

    def union(self, other: PortSet) -> PortSet:
        return self | other

    def intersection(self, other: PortSet) -> PortSet:
        return self & other

    def difference(self, other: PortSet) -> PortSet:
        return self - other

    def issubset(self, other: PortSet) -> bool:
        return (self - other).is_empty()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortSet) and self._by_proto == other._by_proto

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._by_proto.items())))

    def __bool__(self) -> bool:
        return bool(self._by_proto)

    def __repr__(self) -> str:
        return f"PortSet({self})"

    def __str__(self) -> str:
        return format_ports(self)


def format_range(lo: int, hi: int) -> str:
    if lo == MIN_PORT and hi == MAX_PORT:
        return "*"
    return str(lo) if lo == hi else f"{lo}-{hi}"


def format_ports(ports: PortSet) -> str:
    """Compact, deterministic text: `all`, `none`, or `TCP 80,8000-8080 UDP 53`."""
    if ports.is_empty():
        return "none"
    if ports.is_all():
        return "all"
    parts = []
    for proto in Protocol:
        ranges = ports.ranges(proto)
        if ranges:
            parts.append(f"{proto.value} " + ",".join(format_range(lo, hi) for lo, hi in ranges))
    return " ".join(parts)
