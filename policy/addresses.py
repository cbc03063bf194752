"""Address sets: immutable unions of IPv4 and IPv6 ranges, the address half of ipBlock peers.

An ipBlock is `cidr` minus each `except`; `AddressSet` is the algebra for that (union,
intersection, difference, all returning new sets) plus conversion back to CIDRs for display and
for the nftables compiler. IPv4 and IPv6 are kept apart: an interval never spans families.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from enum import Enum

from policy.intervals import intersect, normalise, subtract

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Family(int, Enum):
    IPV4 = 4
    IPV6 = 6

    @property
    def bits(self) -> int:
        return 32 if self is Family.IPV4 else 128


def family_of(addr: IPAddress | IPNetwork) -> Family:
    return Family.IPV4 if addr.version == 4 else Family.IPV6


def parse_cidr(text: str) -> tuple[IPNetwork, bool]:
    """Parse a CIDR as the API server stores it: host bits cleared.

    Returns the network and whether host bits were set (the loader warns about those).
    Raises ValueError for anything that is not `address/prefix`.
    """
    addr_text, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit():
        raise ValueError("not a valid CIDR")
    net = ipaddress.ip_network(text, strict=False)
    return net, int(ipaddress.ip_address(addr_text)) != int(net.network_address)


class AddressSet:
    """An immutable set of IP addresses, as merged integer intervals per family."""

    __slots__ = ("_v4", "_v6")

    def __init__(
        self,
        v4: Iterable[tuple[int, int]] = (),
        v6: Iterable[tuple[int, int]] = (),
    ) -> None:
        self._v4 = normalise(v4)
        self._v6 = normalise(v6)

    @classmethod
    def empty(cls) -> AddressSet:
        return cls()

    @classmethod
    def everything(cls) -> AddressSet:
        return cls([(0, 2**32 - 1)], [(0, 2**128 - 1)])

    @classmethod
    def from_network(cls, net: IPNetwork) -> AddressSet:
        lo = int(net.network_address)
        hi = int(net.broadcast_address)
        return cls([(lo, hi)]) if net.version == 4 else cls((), [(lo, hi)])

    @classmethod
    def from_range(cls, family: Family, lo: int, hi: int) -> AddressSet:
        return cls([(lo, hi)]) if family is Family.IPV4 else cls((), [(lo, hi)])

    @classmethod
    def from_cidr(cls, text: str) -> AddressSet:
        return cls.from_network(parse_cidr(text)[0])

    @classmethod
    def from_address(cls, addr: IPAddress) -> AddressSet:
        n = int(addr)
        return cls([(n, n)]) if addr.version == 4 else cls((), [(n, n)])

    def intervals(self, family: Family) -> tuple[tuple[int, int], ...]:
        return self._v4 if family is Family.IPV4 else self._v6

    def contains(self, addr: IPAddress) -> bool:
        n = int(addr)
        ivs = self._v4 if addr.version == 4 else self._v6
        return any(lo <= n <= hi for lo, hi in ivs)

    def is_empty(self) -> bool:
        return not self._v4 and not self._v6

    def __or__(self, other: AddressSet) -> AddressSet:
        return AddressSet(self._v4 + other._v4, self._v6 + other._v6)

    def __and__(self, other: AddressSet) -> AddressSet:
        return AddressSet(intersect(self._v4, other._v4), intersect(self._v6, other._v6))

    def __sub__(self, other: AddressSet) -> AddressSet:
        return AddressSet(subtract(self._v4, other._v4), subtract(self._v6, other._v6))

    def union(self, other: AddressSet) -> AddressSet:
        return self | other

    def intersection(self, other: AddressSet) -> AddressSet:
        return self & other

    def difference(self, other: AddressSet) -> AddressSet:
        return self - other

    def issubset(self, other: AddressSet) -> bool:
        return (self - other).is_empty()

    def networks(self) -> Iterator[IPNetwork]:
        """The fewest CIDRs covering exactly this set, IPv4 first, in address order."""
        for lo, hi in self._v4:
            yield from ipaddress.summarize_address_range(
                ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
            )
        for lo, hi in self._v6:
            yield from ipaddress.summarize_address_range(
                ipaddress.IPv6Address(lo), ipaddress.IPv6Address(hi)
            )

    def first_address(self) -> IPAddress | None:
        """The lowest address of the set, IPv4 first (a representative for explanations)."""
        if self._v4:
            return ipaddress.IPv4Address(self._v4[0][0])
        if self._v6:
            return ipaddress.IPv6Address(self._v6[0][0])
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AddressSet) and (self._v4, self._v6) == (other._v4, other._v6)

    def __hash__(self) -> int:
        return hash((self._v4, self._v6))

    def __bool__(self) -> bool:
        return not self.is_empty()

    def __repr__(self) -> str:
        return f"AddressSet({self})"

    def __str__(self) -> str:
        nets = [str(n) for n in self.networks()]
        return ", ".join(nets) if nets else "none"
