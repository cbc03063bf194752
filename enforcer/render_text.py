"""Rendering a `NodeRuleset` as an nft script (`nft -f` syntax), for people to read and diff.

The script holds exactly what `render.full_replace` sends as JSON, and loading it leaves the
kernel in the same state (a privileged test checks that, listing both): it adds and deletes the
table, then declares it whole, so `nft -f` replaces the table in one transaction. The output is
deterministic: maps and their elements sorted, base chains in a fixed order, then one section
per pod in key order, each opened by a `# pod namespace/name` comment. Names come from
`render`; only the text syntax lives here.
"""

from __future__ import annotations

import ipaddress

from enforcer.render import (
    ADDR_TYPE,
    DISPATCH_FIELD,
    FAMILY,
    IP_PROTOCOL,
    PEER_FIELD,
    PRIORITY,
    TABLE,
    chain_name,
    map_name,
    set_name,
)
from enforcer.ruleset import Element, NodeRuleset, PodRules
from policy.addresses import Family, IPAddress
from policy.cluster import Direction

# Base chains, their hooks and the dispatch maps they consult, as in `render.skeleton`.
_BASE_CHAINS: tuple[tuple[str, tuple[Direction, ...]], ...] = (
    ("forward", (Direction.EGRESS, Direction.INGRESS)),  # both ends must allow
    ("input", (Direction.EGRESS,)),  # pod to its own node
    ("output", ()),  # node to pod: allowed (kubelet probes)
)
_I1, _I2, _I3 = "\t", "\t\t", "\t\t\t"


def ruleset_text(ruleset: NodeRuleset) -> str:
    """The whole table of one node as an nft script that replaces it."""
    isolated = sum(1 for p in ruleset.pods if p.ingress is not None or p.egress is not None)
    lines = [
        "#!/usr/sbin/nft -f",
        f"# kubefence: the ruleset of node {ruleset.node}: {len(ruleset.pods)} pods,"
        f" {isolated} isolated, {ruleset.element_count()} set elements.",
        f"# Replaces table {FAMILY} {TABLE} whole, in one transaction.",
        f"table {FAMILY} {TABLE}",
        f"delete table {FAMILY} {TABLE}",
        "",
        f"table {FAMILY} {TABLE} {{",
    ]
    maps = [(d, f) for d in Direction for f in Family]
    blocks = [_map(ruleset, d, f) for d, f in sorted(maps, key=lambda m: map_name(*m))]
    blocks += [_base_chain(name, dirs) for name, dirs in _BASE_CHAINS]
    blocks += [_pod(pod) for pod in sorted(ruleset.pods, key=lambda p: p.key)]
    lines += "\n".join(blocks).splitlines()
    lines.append("}")
    return "\n".join(lines) + "\n"


def address_text(family: Family, lo: int, hi: int) -> str:
    """One address, a prefix when lo..hi is exactly one, otherwise a range `lo-hi`."""
    if lo == hi:
        return _addr(family, lo)
    size = hi - lo + 1
    if size & (size - 1) == 0 and lo % size == 0:
        return f"{_addr(family, lo)}/{family.bits - size.bit_length() + 1}"
    return f"{_addr(family, lo)}-{_addr(family, hi)}"


def element_text(e: Element) -> str:
    port = str(e.port_lo) if e.port_lo == e.port_hi else f"{e.port_lo}-{e.port_hi}"
    return f"{address_text(e.family, e.addr_lo, e.addr_hi)} . {e.protocol.value.lower()} . {port}"


def _addr(family: Family, n: int) -> str:
    return str(ipaddress.IPv4Address(n) if family is Family.IPV4 else ipaddress.IPv6Address(n))


def _addresses(pod: PodRules, family: Family) -> list[IPAddress]:
    return sorted(a for a in pod.addresses if a.version == family)


def _elements_block(items: list[str]) -> list[str]:
    """`elements = { ... }`, one per line; nft accepts the trailing comma."""
    if not items:
        return []
    return [f"{_I2}elements = {{", *(f"{_I3}{item}" for item in items), f"{_I2}}}"]


def _map(ruleset: NodeRuleset, direction: Direction, family: Family) -> str:
    name = map_name(direction, family)
    entries = sorted(
        ((addr, pod) for pod in ruleset.pods if pod.elements(direction) is not None
         for addr in _addresses(pod, family)),
        key=lambda entry: (entry[0], entry[1].key),
    )
    items = [f"{a} : jump {chain_name(p, direction)},\t# {p.key}" for a, p in entries]
    lines = [f"{_I1}map {name} {{", f"{_I2}type {ADDR_TYPE[family]} : verdict",
             *_elements_block(items), f"{_I1}}}"]
    return "\n".join(lines) + "\n"


def _base_chain(name: str, directions: tuple[Direction, ...]) -> str:
    lines = [
        f"{_I1}chain {name} {{",
        f"{_I2}type filter hook {name} priority {PRIORITY}; policy accept;",
        f"{_I2}ct state established,related accept",
        f"{_I2}ct state invalid drop",
    ]
    for direction in directions:
        for family in Family:
            field = DISPATCH_FIELD[direction]
            lines.append(f"{_I2}{IP_PROTOCOL[family]} {field} vmap @{map_name(direction, family)}")
    lines.append(f"{_I1}}}")
    return "\n".join(lines) + "\n"


def _pod(pod: PodRules) -> str:
    addresses = ", ".join(str(a) for f in Family for a in _addresses(pod, f))
    state = "; ".join(
        f"{d.value.lower()} " + ("not isolated" if (e := pod.elements(d)) is None
                                 else f"isolated, {len(e)} elements")
        for d in Direction
    )
    lines = [f"{_I1}# pod {pod.key} ({addresses}): {state}"]
    for direction in Direction:
        elements = pod.elements(direction)
        if elements is None:
            continue
        chain = chain_name(pod, direction)
        rules = []
        for family in Family:
            name = set_name(pod, direction, family)
            items = [f"{element_text(e)}," for e in sorted(elements) if e.family is family]
            lines += [f"{_I1}set {name} {{",
                      f"{_I2}type {ADDR_TYPE[family]} . inet_proto . inet_service",
                      f"{_I2}flags interval",
                      *_elements_block(items),
                      f"{_I1}}}"]
            peer = PEER_FIELD[direction]
            rules.append(
                f"{_I2}{IP_PROTOCOL[family]} {peer} . meta l4proto . th dport @{name} return"
            )
        lines += [f"{_I1}chain {chain} {{", *rules, f"{_I2}counter drop", f"{_I1}}}"]
    return "\n".join(lines) + "\n"
