"""The nft script form of a ruleset: its syntax for addresses and elements, and (privileged)
that loading it leaves the kernel exactly as the JSON commands of `render.full_replace` do.

The privileged test loads both forms into a fresh network namespace and compares the table as
the kernel lists it, after dropping handles and counter values and sorting what has no order
(objects, set elements); the rules of a chain keep their order.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest

from enforcer.compiler import compile_node
from enforcer.placement import assign_round_robin
from enforcer.render import FAMILY, TABLE, full_replace
from enforcer.render_text import address_text, element_text, ruleset_text
from enforcer.ruleset import Element, NodeRuleset, PodRules
from lab import netns
from policy.addresses import Family
from policy.loader import load
from policy.ports import Protocol
from tests.conftest import conformance_cases

CASES = conformance_cases()
V4, V6 = Family.IPV4, Family.IPV6


def _n(text: str) -> int:
    return int(ip_address(text))


@pytest.mark.parametrize(("family", "lo", "hi", "text"), [
    (V4, "10.0.0.1", "10.0.0.1", "10.0.0.1"),
    (V4, "10.1.0.0", "10.1.255.255", "10.1.0.0/16"),
    (V4, "0.0.0.0", "255.255.255.255", "0.0.0.0/0"),
    (V4, "10.1.0.0", "10.1.0.2", "10.1.0.0-10.1.0.2"),
    (V4, "10.1.0.1", "10.1.0.2", "10.1.0.1-10.1.0.2"),  # aligned size, misaligned start
    (V6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"),
    (V6, "::1", "::1", "::1"),
    (V6, "fd00::", "fd00::ffff", "fd00::/112"),
    (V6, "::1", "::5", "::1-::5"),
])
def test_address_text(family: Family, lo: str, hi: str, text: str) -> None:
    assert address_text(family, _n(lo), _n(hi)) == text


def test_element_text() -> None:
    e = Element(V4, _n("10.0.0.0"), _n("10.0.0.255"), Protocol.SCTP, 1000, 2000)
    assert element_text(e) == "10.0.0.0/24 . sctp . 1000-2000"
    e = Element(V6, _n("fd00::1"), _n("fd00::1"), Protocol.UDP, 53, 53)
    assert element_text(e) == "fd00::1 . udp . 53"


def _element(family: Family, lo: str, hi: str, proto: Protocol, plo: int, phi: int) -> Element:
    return Element(family, _n(lo), _n(hi), proto, plo, phi)


def dual_stack_ruleset() -> NodeRuleset:
    """What the conformance cases lack: IPv6, ranges, dual-stack pods, one-direction isolation,
    a deny-all set, and map entries of several pods."""
    ingress = frozenset({
        _element(V4, "10.0.0.2", "10.0.0.2", Protocol.TCP, 80, 80),
        _element(V4, "10.1.0.0", "10.1.255.255", Protocol.UDP, 53, 53),
        _element(V4, "10.2.0.5", "10.2.0.9", Protocol.SCTP, 1000, 2000),
        _element(V4, "0.0.0.0", "9.255.255.255", Protocol.TCP, 1, 65535),
        _element(V6, "fd00::", "fd00::ffff:ffff:ffff:ffff", Protocol.TCP, 1, 65535),
        _element(V6, "::1", "::5", Protocol.UDP, 53, 53),
        _element(V6, "fd00:1::2", "fd00:1::2", Protocol.SCTP, 9000, 9001),
    })
    egress = frozenset({
        _element(V6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Protocol.UDP, 53, 53),
        _element(V4, "10.0.0.1", "10.0.0.3", Protocol.TCP, 443, 443),
    })
    return NodeRuleset("node-x", (
        PodRules("a/dual", (IPv4Address("10.0.0.1"), IPv6Address("fd00::1")), ingress, egress),
        PodRules("a/egress-only", (IPv4Address("10.0.0.2"),), None, egress),
        PodRules("b/deny-all", (IPv6Address("fd00::3"), IPv4Address("10.0.0.3")),
                 frozenset(), frozenset()),
        PodRules("b/open", (IPv4Address("10.0.0.4"),), None, None),
    ))


def _conformance_ruleset(case: Path) -> NodeRuleset:
    cluster = load([str(case / "cluster.yaml"), str(case / "policies.yaml")])
    return compile_node(assign_round_robin(cluster, 2), "node-0")


def test_text_is_deterministic_and_names_every_pod() -> None:
    rs = dual_stack_ruleset()
    shuffled = NodeRuleset(rs.node, tuple(reversed(rs.pods)))
    assert ruleset_text(shuffled) == ruleset_text(rs)
    comments = [line.strip() for line in ruleset_text(rs).splitlines() if "# pod " in line]
    assert [c.split()[2] for c in comments] == [p.key for p in rs.pods]


def _strip(value: Any) -> Any:
    """Without handles, counter values or the order of set elements."""
    if isinstance(value, dict):
        out = {k: _strip(v) for k, v in value.items() if k != "handle"}
        if "counter" in out:
            out["counter"] = None
        if isinstance(out.get("elem"), list):
            out["elem"] = sorted(out["elem"], key=lambda e: json.dumps(e, sort_keys=True))
        return out
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def normalise(listing: dict[str, Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """Objects sorted; rules grouped by chain, in their order."""
    objects, rules = [], {}
    for obj in _strip(listing["nftables"]):
        if "metainfo" in obj:
            continue
        if "rule" in obj:
            rules.setdefault(obj["rule"]["chain"], []).append(obj)
        else:
            objects.append(obj)
    objects.sort(key=lambda o: json.dumps(o, sort_keys=True))
    return objects, dict(sorted(rules.items()))


@contextmanager
def fresh_netns() -> Iterator[str]:
    name = f"kf-t-{secrets.token_hex(4)}"
    try:
        netns.add(name)
        yield name
    finally:
        netns.delete(name)


def _nft(name: str, *args: str, script: str | None = None) -> None:
    proc = subprocess.run(["ip", "netns", "exec", name, "nft", *args], input=script,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr


RULESETS = [pytest.param(dual_stack_ruleset, id="dual-stack")] + [
    pytest.param(lambda c=case: _conformance_ruleset(c), id=case.name) for case in CASES
]


@pytest.mark.privileged
@pytest.mark.parametrize("make", RULESETS)
def test_text_and_json_give_the_same_kernel_state(make: Callable[[], NodeRuleset]) -> None:
    from enforcer.dataplane import Dataplane  # needs the nftables bindings

    ruleset = make()
    with fresh_netns() as name:
        with netns.inside(name):
            dataplane = Dataplane()
            dataplane.apply(full_replace(ruleset))
            from_json = normalise(dataplane.list_table(FAMILY, TABLE))
        _nft(name, "flush", "ruleset")
        _nft(name, "-f", "-", script=ruleset_text(ruleset))
        with netns.inside(name):
            from_text = normalise(Dataplane().list_table(FAMILY, TABLE))
    objects, rules = from_json
    assert any("chain" in o and o["chain"]["name"] == "forward" for o in objects)
    assert len(rules["forward"]) == 6
    assert from_text == from_json
