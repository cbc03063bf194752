"""Rendering a `NodeRuleset` as nftables JSON commands (libnftables-json); `render_text` gives
the same ruleset as an nft script.

Shape, so that per-packet cost does not grow with the number of policies:

    table inet kubefence
      map ingress4/ingress6  pod address : jump in-<pod>     (dispatch on destination)
      map egress4/egress6    pod address : jump eg-<pod>     (dispatch on source)
      set in-<pod>-4/-6      peer . l4proto . dport, intervals  (allowed sources)
      set eg-<pod>-4/-6      peer . l4proto . dport, intervals  (allowed destinations)
      chain in-<pod>/eg-<pod>  @set return; counter drop
      chain forward  hook forward, priority filter (0): pod to pod, both ends
      chain input    hook input,   priority filter (0): pod to its node, egress only
      chain output   hook output,  priority filter (0): node to pod, allowed (kubelet probes)

A pod's traffic to itself never leaves its namespace; `loopback_replace` renders the pod's own
chains and sets for that namespace, dispatching only loopback traffic (the lab installs it).

Base chains accept established/related first and drop invalid; a pod that is not isolated is
absent from the maps and falls through to the policy `accept`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from enforcer.ruleset import Element, NodeRuleset, PodRules
from policy.addresses import AddressSet, Family
from policy.cluster import Direction

TABLE = "kubefence"
FAMILY = "inet"
PRIORITY = 0  # filter
Command = dict[str, Any]

_T = {"family": FAMILY, "table": TABLE}
IP_PROTOCOL = {Family.IPV4: "ip", Family.IPV6: "ip6"}
ADDR_TYPE = {Family.IPV4: "ipv4_addr", Family.IPV6: "ipv6_addr"}
_PREFIX = {Direction.INGRESS: "in", Direction.EGRESS: "eg"}
# Ingress dispatch keys on the destination and matches the peer as source; egress the reverse.
DISPATCH_FIELD = {Direction.INGRESS: "daddr", Direction.EGRESS: "saddr"}
PEER_FIELD = {Direction.INGRESS: "saddr", Direction.EGRESS: "daddr"}


def map_name(direction: Direction, family: Family) -> str:
    return f"{'ingress' if direction is Direction.INGRESS else 'egress'}{family.value}"


def chain_name(pod: PodRules, direction: Direction) -> str:
    return f"{_PREFIX[direction]}-{pod.ident}"


def set_name(pod: PodRules, direction: Direction, family: Family) -> str:
    return f"{chain_name(pod, direction)}-{family.value}"


def _addr(family: Family, n: int) -> str:
    return str(ipaddress.IPv4Address(n) if family is Family.IPV4 else ipaddress.IPv6Address(n))


def element_json(e: Element) -> Any:
    if e.addr_lo == e.addr_hi:
        addr: Any = _addr(e.family, e.addr_lo)
    else:
        nets = list(AddressSet.from_range(e.family, e.addr_lo, e.addr_hi).networks())
        if len(nets) == 1:
            addr = {"prefix": {"addr": str(nets[0].network_address), "len": nets[0].prefixlen}}
        else:
            addr = {"range": [_addr(e.family, e.addr_lo), _addr(e.family, e.addr_hi)]}
    port: Any = e.port_lo if e.port_lo == e.port_hi else {"range": [e.port_lo, e.port_hi]}
    return {"concat": [addr, e.protocol.value.lower(), port]}


def _match_set(family: Family, field: str, name: str) -> Any:
    return {"match": {"op": "==", "left": {"concat": [
        {"payload": {"protocol": IP_PROTOCOL[family], "field": field}},
        {"meta": {"key": "l4proto"}},
        {"payload": {"protocol": "th", "field": "dport"}},
    ]}, "right": f"@{name}"}}


def _rule(chain: str, *expr: Any) -> Command:
    return {"add": {"rule": {**_T, "chain": chain, "expr": list(expr)}}}


def _ct_rules(chain: str) -> list[Command]:
    return [
        _rule(chain, {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                "right": ["established", "related"]}}, {"accept": None}),
        _rule(chain, {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                "right": ["invalid"]}}, {"drop": None}),
    ]


def _dispatch(chain: str, directions: tuple[Direction, ...]) -> list[Command]:
    out = []
    for direction in directions:
        for family in Family:
            key = {"payload": {"protocol": IP_PROTOCOL[family], "field": DISPATCH_FIELD[direction]}}
            out.append(_rule(chain, {"vmap": {"key": key,
                                              "data": f"@{map_name(direction, family)}"}}))
    return out


def skeleton() -> list[Command]:
    """The table, its dispatch maps and base chains (the same for every node)."""
    cmds: list[Command] = [{"add": {"table": {"family": FAMILY, "name": TABLE}}}]
    for direction in Direction:
        for family in Family:
            cmds.append({"add": {"map": {**_T, "name": map_name(direction, family),
                                         "type": ADDR_TYPE[family], "map": "verdict"}}})
    for name, hook in (("forward", "forward"), ("input", "input"), ("output", "output")):
        cmds.append({"add": {"chain": {**_T, "name": name, "type": "filter", "hook": hook,
                                       "prio": PRIORITY, "policy": "accept"}}})
        cmds += _ct_rules(name)
    # Egress of the source, then ingress of the destination: both ends must allow.
    cmds += _dispatch("forward", (Direction.EGRESS, Direction.INGRESS))
    cmds += _dispatch("input", (Direction.EGRESS,))  # pod to its own node
    return cmds


def loopback_replace(pod: PodRules) -> list[Command]:
    """The same table for a pod's own namespace, where its traffic to itself goes (over `lo`,
    never reaching the node): only the output hook, only loopback traffic, dispatched to the
    pod's egress then ingress chains. One transaction, replacing the table whole."""
    cmds: list[Command] = [{"add": {"table": {"family": FAMILY, "name": TABLE}}},
                           {"delete": {"table": {"family": FAMILY, "name": TABLE}}},
                           {"add": {"table": {"family": FAMILY, "name": TABLE}}}]
    for direction in Direction:
        for family in Family:
            cmds.append({"add": {"map": {**_T, "name": map_name(direction, family),
                                         "type": ADDR_TYPE[family], "map": "verdict"}}})
    cmds.append({"add": {"chain": {**_T, "name": "output", "type": "filter", "hook": "output",
                                   "prio": PRIORITY, "policy": "accept"}}})
    cmds.append(_rule("output", {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}},
                                           "right": "lo"}}, {"accept": None}))
    cmds += _ct_rules("output")
    cmds += _dispatch("output", (Direction.EGRESS, Direction.INGRESS))
    for direction in Direction:
        cmds += pod_direction_add(pod, direction)
    return cmds


def pod_direction_add(pod: PodRules, direction: Direction) -> list[Command]:
    """Sets, elements, chain and dispatch entries of one isolated pod and direction."""
    elements = pod.elements(direction)
    if elements is None:
        return []
    chain = chain_name(pod, direction)
    cmds: list[Command] = [{"add": {"chain": {**_T, "name": chain}}}]
    for family in Family:
        name = set_name(pod, direction, family)
        cmds.append({"add": {"set": {**_T, "name": name, "flags": ["interval"],
                                     "type": [ADDR_TYPE[family], "inet_proto",
                                              "inet_service"]}}})
        elems = sorted(e for e in elements if e.family is family)
        if elems:
            cmds.append(element_command("add", name, elems))
        cmds.append(_rule(chain, _match_set(family, PEER_FIELD[direction], name),
                          {"return": None}))
    cmds.append(_rule(chain, {"counter": None}, {"drop": None}))
    cmds += map_elements("add", pod, direction)
    return cmds


def pod_direction_delete(pod: PodRules, direction: Direction) -> list[Command]:
    """The reverse of `pod_direction_add`: unhook first, then remove chain and sets."""
    if pod.elements(direction) is None:
        return []
    chain = chain_name(pod, direction)
    cmds = map_elements("delete", pod, direction)
    cmds.append({"delete": {"chain": {**_T, "name": chain}}})
    cmds += [{"delete": {"set": {**_T, "name": set_name(pod, direction, f)}}} for f in Family]
    return cmds


def map_elements(verb: str, pod: PodRules, direction: Direction) -> list[Command]:
    out = []
    for family in Family:
        addrs = sorted(str(a) for a in pod.addresses if a.version == family)
        if not addrs:
            continue
        elem: list[Any] = [[a, {"jump": {"target": chain_name(pod, direction)}}] for a in addrs]
        if verb == "delete":
            elem = list(addrs)
        out.append({verb: {"element": {**_T, "name": map_name(direction, family),
                                       "elem": elem}}})
    return out


def element_command(verb: str, set_: str, elements: list[Element]) -> Command:
    return {verb: {"element": {**_T, "name": set_, "elem": [element_json(e) for e in elements]}}}


def full_replace(ruleset: NodeRuleset) -> list[Command]:
    """One transaction that replaces the whole table: add (so delete cannot fail), delete,
    then everything anew."""
    cmds: list[Command] = [{"add": {"table": {"family": FAMILY, "name": TABLE}}},
                           {"delete": {"table": {"family": FAMILY, "name": TABLE}}}]
    cmds += skeleton()
    for pod in ruleset.pods:
        for direction in Direction:
            cmds += pod_direction_add(pod, direction)
    return cmds
