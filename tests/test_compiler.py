"""The compiler's own guarantees: elements exact and disjoint, loud on what it cannot enforce."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

from enforcer.compiler import CompileError, compile_node
from enforcer.placement import assign_round_robin
from enforcer.ruleset import Element, NodeRuleset
from policy.cluster import Direction
from policy.engine import Analysis
from policy.loader import load, load_texts
from policy.ports import Protocol
from tests.builders import netpol, pod, to_yaml
from tests.conftest import conformance_cases

CASES = conformance_cases()


def _overlap(a: Element, b: Element) -> bool:
    return (a.family == b.family and a.protocol == b.protocol
            and a.addr_lo <= b.addr_hi and b.addr_lo <= a.addr_hi
            and a.port_lo <= b.port_hi and b.port_lo <= a.port_hi)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_elements_are_disjoint_and_say_what_the_engine_says(case: Path) -> None:
    cluster = assign_round_robin(load([str(case / "cluster.yaml"), str(case / "policies.yaml")]),
                                 1)
    ruleset = compile_node(cluster, "node-0")
    analysis = Analysis(cluster)
    for rules in ruleset.pods:
        me = analysis.index(rules.key)
        assert me is not None
        for direction in Direction:
            elements = rules.elements(direction)
            if elements is None:
                assert not analysis.isolated(me, direction)
                continue
            assert not any(_overlap(a, b) for a, b in combinations(elements, 2))
            for other in cluster.pods:  # every pod peer, on every probed port: set == engine
                peer = analysis.index(other.key)
                assert peer is not None
                addr = int(other.ips[0])
                for proto, port in ((Protocol.TCP, 80), (Protocol.TCP, 81), (Protocol.UDP, 80),
                                    (Protocol.SCTP, 80)):
                    in_set = any(e.addr_lo <= addr <= e.addr_hi and e.protocol is proto
                                 and e.port_lo <= port <= e.port_hi for e in elements)
                    side = analysis.side(direction)
                    word, bit = analysis.atoms.word_bit(proto, port)
                    engine = bool(side.row(int(side.profile_of[me]))[peer, word] & bit)
                    assert in_set == engine, (rules.key, direction, other.key, proto, port)


def test_pods_sharing_an_address_on_one_node_are_a_compile_error() -> None:
    objects = [pod("x", "a", {"app": "a"}, [], "10.0.0.1"), pod("x", "b", {}, [], "10.0.0.1"),
               netpol("x", "p", {"podSelector": {}})]
    cluster = assign_round_robin(load_texts([("t.yaml", to_yaml(objects), False)]), 1)
    with pytest.raises(CompileError, match=r"share the address 10\.0\.0\.1"):
        compile_node(cluster, "node-0")


def test_host_network_and_addressless_pods_are_not_programmed() -> None:
    objects = [pod("x", "h", {}, [], "192.168.0.1", host_network=True, host_ip="192.168.0.1"),
               pod("x", "w", {}), pod("x", "a", {}, [], "10.0.0.1"),
               netpol("x", "p", {"podSelector": {}})]
    cluster = assign_round_robin(load_texts([("t.yaml", to_yaml(objects), False)]), 1)
    assert [p.key for p in compile_node(cluster, "node-0").pods] == ["x/a"]


@pytest.mark.parametrize("others", [10, 500])
def test_a_nodes_ruleset_does_not_grow_with_policies_elsewhere(others: int) -> None:
    """Issue 5: a node's ruleset depends on its own pods and the peers they reference, not on
    how many policies the cluster holds (here: policies of another namespace on another node,
    each with its own selector and port)."""
    local = [pod("a", "web", {"app": "web"}, [("http", 80, "TCP")], "10.0.0.1"),
             pod("a", "api", {"app": "api"}, [], "10.0.0.2")]
    remote = [pod("b", f"p{i}", {"app": f"b{i}"}, [], f"10.0.1.{i + 1}") for i in range(3)]
    for obj, node in [*((o, "node-0") for o in local), *((o, "node-1") for o in remote)]:
        obj["spec"]["nodeName"] = node
    web_in = netpol("a", "web-in", {"podSelector": {"matchLabels": {"app": "web"}},
                                    "ingress": [{"from": [{"podSelector": {"matchLabels":
                                                                           {"app": "api"}}}],
                                                 "ports": [{"port": "http"}]}]})

    def ruleset(n: int) -> NodeRuleset:
        policies = [netpol("b", f"np{i}", {
            "podSelector": {"matchLabels": {"app": f"b{i % 3}"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"x{i}"}}}],
                         "ports": [{"port": 1000 + i}]}]}) for i in range(n)]
        objects = [*local, *remote, web_in, *policies]
        return compile_node(load_texts([("c.yaml", to_yaml(objects), False)]), "node-0")

    assert ruleset(others) == ruleset(0)
    assert ruleset(others).element_count() == ruleset(0).element_count() > 0
