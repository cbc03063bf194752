"""Set algebra of `PortSet` and `AddressSet` against brute-force models.

A PortSet is modelled as a Python set of (protocol, port) over a few small windows of the port
space (including its two ends); an AddressSet as a set of (version, integer) over a few small
windows of IPv4 and IPv6 (including the ends of each family). Every operation is checked
against the model, and the usual laws are checked on the sets themselves.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from policy.addresses import AddressSet, Family
from policy.ports import MAX_PORT, MIN_PORT, PortSet, Protocol

PROTOCOLS = tuple(Protocol)
PORT_WINDOWS = ((MIN_PORT, 24), (8070, 8090), (MAX_PORT - 12, MAX_PORT))
PortModel = frozenset[tuple[Protocol, int]]
AddressModel = frozenset[tuple[int, int]]

# -- PortSet -----------------------------------------------------------------------------------


def _window_ranges() -> st.SearchStrategy[tuple[Protocol, int, int]]:
    """A range inside one window; sometimes lo > hi, which is an empty range."""
    def build(proto: Protocol, window: tuple[int, int], a: int,
              b: int) -> tuple[Protocol, int, int]:
        lo, hi = window
        return proto, lo + a % (hi - lo + 1), lo + b % (hi - lo + 1)
    return st.builds(build, st.sampled_from(PROTOCOLS), st.sampled_from(PORT_WINDOWS),
                     st.integers(0, 40), st.integers(0, 40))


port_ranges = st.lists(_window_ranges(), max_size=5)


def port_set(ranges: Iterable[tuple[Protocol, int, int]]) -> PortSet:
    by_proto: dict[Protocol, list[tuple[int, int]]] = {}
    for proto, lo, hi in ranges:
        by_proto.setdefault(proto, []).append((lo, hi))
    return PortSet(by_proto)


def port_model(ranges: Iterable[tuple[Protocol, int, int]]) -> PortModel:
    return frozenset((proto, p) for proto, lo, hi in ranges for p in range(lo, hi + 1))


def model_of_ports(ports: PortSet) -> PortModel:
    return port_model(ports.items())


port_sets = port_ranges.map(port_set)
PORT_PROBES = sorted({p for lo, hi in PORT_WINDOWS for p in range(lo - 1, hi + 2)})


def assert_port_normalised(ports: PortSet) -> None:
    for proto in PROTOCOLS:
        ranges = ports.ranges(proto)
        for lo, hi in ranges:
            assert MIN_PORT <= lo <= hi <= MAX_PORT
        for (_, hi), (lo, _) in pairwise(ranges):
            assert hi + 1 < lo  # sorted, disjoint and not adjacent


@given(port_ranges, port_ranges)
def test_port_operations_agree_with_model(ra: list[tuple[Protocol, int, int]],
                                          rb: list[tuple[Protocol, int, int]]) -> None:
    a, b = port_set(ra), port_set(rb)
    ma, mb = port_model(ra), port_model(rb)
    assert model_of_ports(a) == ma
    for result, expected in ((a | b, ma | mb), (a & b, ma & mb), (a - b, ma - mb),
                             (a.union(b), ma | mb), (a.intersection(b), ma & mb),
                             (a.difference(b), ma - mb)):
        assert_port_normalised(result)
        assert model_of_ports(result) == expected
    assert a.issubset(b) == (ma <= mb)
    assert a.is_empty() == (not ma) == (not a)
    assert (a == b) == (ma == mb)


@given(port_ranges)
def test_port_contains_agrees_with_model(ra: list[tuple[Protocol, int, int]]) -> None:
    a, ma = port_set(ra), port_model(ra)
    for proto in PROTOCOLS:
        for p in PORT_PROBES:
            assert a.contains(proto, p) == ((proto, p) in ma)


@given(port_ranges, st.randoms(use_true_random=False))
def test_port_equal_sets_are_equal_and_hash_equal(ra: list[tuple[Protocol, int, int]],
                                                  rnd: random.Random) -> None:
    """The same set built another way (port by port, shuffled) is == and hashes alike."""
    a = port_set(ra)
    singles = [(proto, p, p) for proto, p in port_model(ra)]
    rnd.shuffle(singles)
    b = port_set(singles)
    assert a == b
    assert hash(a) == hash(b)
    assert list(a.items()) == list(b.items())
    assert len({a, b}) == 1


@given(port_sets, port_sets, port_sets)
def test_port_laws(a: PortSet, b: PortSet, c: PortSet) -> None:
    assert a | b == b | a
    assert a & b == b & a
    assert (a | b) | c == a | (b | c)
    assert (a & b) & c == a & (b & c)
    assert a & (b | c) == (a & b) | (a & c)
    assert a | (b & c) == (a | b) & (a | c)
    assert a - (b | c) == (a - b) & (a - c)  # De Morgan, relative to a
    assert a - (b & c) == (a - b) | (a - c)
    assert ((a - b) & b).is_empty()
    assert (a - b) | (a & b) == a
    assert a | a == a == a & a
    assert (a - a).is_empty()
    assert a | PortSet.empty() == a
    assert (a & PortSet.empty()).is_empty()
    assert a & PortSet.all() == a
    assert a | PortSet.all() == PortSet.all()
    assert (a & b).issubset(a) and a.issubset(a | b)


@given(port_sets, port_sets)
def test_port_complement_laws(a: PortSet, b: PortSet) -> None:
    everything = PortSet.all()
    assert everything - (a | b) == (everything - a) & (everything - b)
    assert everything - (a & b) == (everything - a) | (everything - b)
    assert everything - (everything - a) == a
    assert ((everything - a) & a).is_empty()
    assert (everything - a) | a == everything


def test_port_constructors() -> None:
    everything = PortSet.all()
    assert everything.is_all() and not PortSet.empty().is_all()
    for proto in PROTOCOLS:
        assert everything.contains(proto, MIN_PORT) and everything.contains(proto, MAX_PORT)
        assert not everything.contains(proto, MIN_PORT - 1)
        assert not everything.contains(proto, MAX_PORT + 1)
        assert PortSet.whole(proto).ranges(proto) == ((MIN_PORT, MAX_PORT),)
    assert PortSet.of(Protocol.UDP, 53) == PortSet({Protocol.UDP: [(53, 53)]})
    assert PortSet.of(Protocol.TCP, 80, 79).is_empty()
    assert PortSet.of(Protocol.TCP, 1, 10) | PortSet.of(Protocol.TCP, 11, 20) == PortSet.of(
        Protocol.TCP, 1, 20)
    assert PortSet.of(Protocol.TCP, 80) != PortSet.of(Protocol.UDP, 80)
    assert (PortSet.whole(Protocol.TCP) | PortSet.whole(Protocol.UDP)
            | PortSet.whole(Protocol.SCTP)) == everything
    assert PortSet.empty() == PortSet() and not PortSet.empty()
    assert PortSet.empty() != frozenset()


# -- AddressSet --------------------------------------------------------------------------------

V4_WINDOWS = (0, int(ipaddress.IPv4Address("10.0.0.0")), 2**32 - 32)
V6_WINDOWS = (0, int(ipaddress.IPv6Address("fd00::")), 2**128 - 32)
WINDOW = 32


def _ip(version: int, n: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n)


AddressRange = tuple[int, int, int, str | None]  # version, lo, hi, the CIDR text it came from


def _address_ranges() -> st.SearchStrategy[AddressRange]:
    """(version, lo, hi) inside one window of one family; sometimes lo > hi (empty)."""
    def build(version: int, w: int, a: int, b: int) -> AddressRange:
        base = (V4_WINDOWS if version == 4 else V6_WINDOWS)[w]
        return version, base + a, base + b, None
    return st.builds(build, st.sampled_from((4, 6)), st.integers(0, 2),
                     st.integers(0, WINDOW - 1), st.integers(0, WINDOW - 1))


def _cidr_ranges() -> st.SearchStrategy[AddressRange]:
    """A CIDR inside one window, written with host bits set (AddressSet.from_cidr clears them)."""
    def build(version: int, w: int, offset: int, host_bits: int) -> AddressRange:
        size = 2 ** host_bits
        address = (V4_WINDOWS if version == 4 else V6_WINDOWS)[w] + offset
        lo = address - address % size
        prefix = (32 if version == 4 else 128) - host_bits
        return version, lo, lo + size - 1, f"{_ip(version, address)}/{prefix}"
    return st.builds(build, st.sampled_from((4, 6)), st.integers(0, 2),
                     st.integers(0, WINDOW - 1), st.integers(0, 5))


address_ranges = st.lists(st.one_of(_address_ranges(), _cidr_ranges()), max_size=5)


def address_set(ranges: Iterable[AddressRange]) -> AddressSet:
    out = AddressSet([(lo, hi) for v, lo, hi, cidr in ranges if v == 4 and cidr is None],
                     [(lo, hi) for v, lo, hi, cidr in ranges if v == 6 and cidr is None])
    for _, _, _, cidr in ranges:
        if cidr is not None:
            out = out | AddressSet.from_cidr(cidr)
    return out


def address_model(ranges: Iterable[AddressRange]) -> AddressModel:
    return frozenset((v, n) for v, lo, hi, _ in ranges for n in range(lo, hi + 1))


def model_of_addresses(addresses: AddressSet) -> AddressModel:
    return address_model([(family.value, lo, hi, None) for family in Family
                          for lo, hi in addresses.intervals(family)])


address_sets = address_ranges.map(address_set)


@given(address_ranges, address_ranges)
def test_address_operations_agree_with_model(ra: list[AddressRange],
                                             rb: list[AddressRange]) -> None:
    a, b = address_set(ra), address_set(rb)
    ma, mb = address_model(ra), address_model(rb)
    assert model_of_addresses(a) == ma
    for result, expected in ((a | b, ma | mb), (a & b, ma & mb), (a - b, ma - mb),
                             (a.union(b), ma | mb), (a.intersection(b), ma & mb),
                             (a.difference(b), ma - mb)):
        assert model_of_addresses(result) == expected
        for family in Family:
            ivs = result.intervals(family)
            for (_, hi), (lo, _) in pairwise(ivs):
                assert hi + 1 < lo
    assert a.issubset(b) == (ma <= mb)
    assert a.is_empty() == (not ma) == (not a)
    assert (a == b) == (ma == mb)


@given(address_ranges)
def test_address_contains_agrees_with_model(ra: list[AddressRange]) -> None:
    a, ma = address_set(ra), address_model(ra)
    for version, windows in ((4, V4_WINDOWS), (6, V6_WINDOWS)):
        top = 2 ** (32 if version == 4 else 128) - 1
        for base in windows:
            for n in range(max(base - 1, 0), min(base + WINDOW, top) + 1):
                assert a.contains(_ip(version, n)) == ((version, n) in ma)


@given(address_ranges)
def test_address_families_never_mix(ra: list[AddressRange]) -> None:
    """The same integer in the other family is a different address."""
    a, ma = address_set(ra), address_model(ra)
    for version, n in ma:
        other = 6 if version == 4 else 4
        if other == 4 and n >= 2**32:
            continue
        assert a.contains(_ip(other, n)) == ((other, n) in ma)


@given(address_ranges, st.randoms(use_true_random=False))
def test_address_equal_sets_are_equal_and_hash_equal(ra: list[AddressRange],
                                                     rnd: random.Random) -> None:
    a = address_set(ra)
    singles: list[AddressRange] = [(v, n, n, None) for v, n in address_model(ra)]
    rnd.shuffle(singles)
    b = address_set(singles)
    c = AddressSet.empty()
    for net in a.networks():
        c = c | AddressSet.from_network(net)
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1


@given(address_sets, address_sets, address_sets)
def test_address_laws(a: AddressSet, b: AddressSet, c: AddressSet) -> None:
    everything = AddressSet.everything()
    assert a | b == b | a
    assert a & b == b & a
    assert (a | b) | c == a | (b | c)
    assert (a & b) & c == a & (b & c)
    assert a & (b | c) == (a & b) | (a & c)
    assert a | (b & c) == (a | b) & (a | c)
    assert a - (b | c) == (a - b) & (a - c)
    assert a - (b & c) == (a - b) | (a - c)
    assert everything - (a | b) == (everything - a) & (everything - b)
    assert everything - (a & b) == (everything - a) | (everything - b)
    assert everything - (everything - a) == a
    assert ((a - b) & b).is_empty()
    assert (a - b) | (a & b) == a
    assert a & everything == a and a | everything == everything
    assert a | AddressSet.empty() == a


@settings(max_examples=200)
@given(address_ranges)
def test_networks_cover_exactly_the_set(ra: list[AddressRange]) -> None:
    a, ma = address_set(ra), address_model(ra)
    nets = list(a.networks())
    covered: list[tuple[int, int]] = []
    for net in nets:
        assert isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network)
        # A strict network: parsing its text back gives the same network.
        assert ipaddress.ip_network(str(net)) == net
        covered.extend((net.version, int(addr)) for addr in net)
    assert len(covered) == len(set(covered))  # pairwise disjoint
    assert frozenset(covered) == ma
    # IPv4 first, then address order.
    assert nets == sorted(nets, key=lambda n: (n.version, int(n.network_address)))
    # Fewest: no two neighbours are the halves of one bigger network.
    for x, y in pairwise(nets):
        if x.version == y.version and x.prefixlen == y.prefixlen and x.prefixlen > 0:
            assert x.supernet() != y.supernet(), (x, y)
    first = a.first_address()
    if ma:
        version, n = min(ma)
        assert first == _ip(version, n)
    else:
        assert first is None
    assert str(a) == (", ".join(str(n) for n in nets) if nets else "none")


def test_address_constructors() -> None:
    everything = AddressSet.everything()
    assert [str(n) for n in everything.networks()] == ["0.0.0.0/0", "::/0"]
    assert AddressSet.from_cidr("10.0.0.77/24") == AddressSet.from_cidr("10.0.0.0/24")
    assert AddressSet.from_cidr("10.0.0.5/32") == AddressSet.from_address(
        ipaddress.IPv4Address("10.0.0.5"))
    assert AddressSet.from_cidr("::1/128") != AddressSet.from_cidr("0.0.0.1/32")
    block = AddressSet.from_cidr("10.0.0.0/24") - AddressSet.from_cidr("10.0.0.0/30")
    assert [str(n) for n in block.networks()] == [
        "10.0.0.4/30", "10.0.0.8/29", "10.0.0.16/28", "10.0.0.32/27", "10.0.0.64/26",
        "10.0.0.128/25"]
    assert not block.contains(ipaddress.IPv4Address("10.0.0.3"))
    assert block.contains(ipaddress.IPv4Address("10.0.0.4"))
    assert everything.contains(ipaddress.IPv4Address("255.255.255.255"))
    assert everything.contains(ipaddress.IPv6Address(2**128 - 1))
    assert AddressSet.empty().first_address() is None and not AddressSet.empty()
