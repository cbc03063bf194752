"""One table row per semantic rule of NetworkPolicy v1, each named for what it checks.

The base cluster: namespaces x (ns=x) and y (ns=y); pods x/a (app=a), x/b (app=b), y/a (app=a),
y/c (app=c, no labels beyond), and x/h on the host network. Each row adds policies and asks one
question: may SRC connect to DST on PORT/PROTO?
"""

from __future__ import annotations

from typing import Any

import pytest

from policy.addresses import Family
from policy.engine import Analysis
from policy.loader import load_texts
from tests.builders import allowed, analyze, namespace, netpol, pod, to_yaml

BASE = [
    namespace("x", ns="x"),
    namespace("y", ns="y"),
    pod("x", "a", {"app": "a"}, [("http", 80, "TCP"), ("dns", 53, "UDP"), ("sig", 9000, "SCTP")],
        "10.0.0.1"),
    pod("x", "b", {"app": "b", "tier": "db"}, [("http", 8080, "TCP")], "10.0.0.2"),
    pod("y", "a", {"app": "a"}, [("http", 80, "TCP")], "10.0.1.1"),
    pod("y", "c", {"app": "c"}, [], "10.0.1.3"),
    pod("x", "h", {"app": "h"}, [("http", 80, "TCP")], "192.168.0.10", host_network=True,
        host_ip="192.168.0.10"),
]

DENY_INGRESS_A = {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]}
DENY_EGRESS_A = {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"]}


def ingress_a(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": list(rules)}


def egress_a(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
            "egress": list(rules)}


# (id, {namespace: [policy specs]}, src, dst, port, proto, expected)
CASES: list[tuple[str, dict[str, list[dict[str, Any]]], str, str, int, str, bool]] = [
    ("no-policy-allows-everything", {}, "y/c", "x/a", 1234, "UDP", True),
    ("ingress-isolation-denies-unlisted-peer", {"x": [DENY_INGRESS_A]}, "x/b", "x/a", 80, "TCP",
     False),
    ("isolation-is-per-namespace", {"y": [DENY_INGRESS_A]}, "x/b", "x/a", 80, "TCP", True),
    ("egress-isolation-denies", {"x": [DENY_EGRESS_A]}, "x/a", "x/b", 8080, "TCP", False),
    ("egress-only-policy-leaves-ingress-open", {"x": [DENY_EGRESS_A]}, "x/b", "x/a", 80, "TCP",
     True),
    ("policies-are-additive",
     {"x": [DENY_INGRESS_A, ingress_a({"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]})]},
     "x/b", "x/a", 80, "TCP", True),
    ("both-ends-must-allow-egress-denies",
     {"x": [ingress_a({}), {"podSelector": {"matchLabels": {"app": "b"}},
                            "policyTypes": ["Egress"]}]},
     "x/b", "x/a", 80, "TCP", False),
    ("empty-rule-matches-all-sources-and-ports", {"x": [ingress_a({})]}, "y/c", "x/a", 7,
     "SCTP", True),
    ("empty-spec-podselector-selects-whole-namespace",
     {"x": [{"podSelector": {}, "policyTypes": ["Ingress"]}]}, "y/c", "x/b", 8080, "TCP", False),
    ("podselector-peer-alone-means-policy-namespace",
     {"x": [ingress_a({"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]})]},
     "y/a", "x/a", 80, "TCP", False),
    ("podselector-peer-matches-in-own-namespace",
     {"x": [ingress_a({"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]})]},
     "x/b", "x/a", 80, "TCP", True),
    ("namespaceselector-alone-matches-every-pod-there",
     {"x": [ingress_a({"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]})]},
     "y/c", "x/a", 80, "TCP", True),
    ("namespace-and-pod-selector-in-one-peer-are-anded",
     {"x": [ingress_a({"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                 "podSelector": {"matchLabels": {"app": "a"}}}]})]},
     "y/c", "x/a", 80, "TCP", False),
    ("separate-peers-are-ored",
     {"x": [ingress_a({"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                                {"podSelector": {"matchLabels": {"app": "a"}}}]})]},
     "y/c", "x/a", 80, "TCP", True),
    ("empty-namespaceselector-matches-all-namespaces",
     {"x": [ingress_a({"from": [{"namespaceSelector": {},
                                 "podSelector": {"matchLabels": {"app": "c"}}}]})]},
     "y/c", "x/a", 80, "TCP", True),
    ("namespace-name-label-is-always-set",
     {"x": [ingress_a({"from": [{"namespaceSelector": {"matchLabels": {
         "kubernetes.io/metadata.name": "y"}}}]})]},
     "y/a", "x/a", 80, "TCP", True),
    ("match-expression-in",
     {"x": [ingress_a({"from": [{"podSelector": {"matchExpressions": [
         {"key": "app", "operator": "In", "values": ["b", "z"]}]}}]})]},
     "x/b", "x/a", 80, "TCP", True),
    ("match-expression-notin-excludes",
     {"x": [ingress_a({"from": [{"podSelector": {"matchExpressions": [
         {"key": "app", "operator": "NotIn", "values": ["b"]}]}}]})]},
     "x/b", "x/a", 80, "TCP", False),
    ("match-expression-notin-matches-absent-key",
     {"x": [ingress_a({"from": [{"podSelector": {"matchExpressions": [
         {"key": "tier", "operator": "NotIn", "values": ["db"]}]}}]})]},
     "x/a", "x/a", 80, "TCP", True),
    ("match-expression-exists",
     {"x": [ingress_a({"from": [{"podSelector": {"matchExpressions": [
         {"key": "tier", "operator": "Exists"}]}}]})]},
     "x/b", "x/a", 80, "TCP", True),
    ("match-expression-does-not-exist",
     {"x": [ingress_a({"from": [{"podSelector": {"matchExpressions": [
         {"key": "tier", "operator": "DoesNotExist"}]}}]})]},
     "x/b", "x/a", 80, "TCP", False),
    ("port-without-protocol-is-tcp",
     {"x": [ingress_a({"ports": [{"port": 53}]})]}, "x/b", "x/a", 53, "UDP", False),
    ("protocol-without-port-is-every-port",
     {"x": [ingress_a({"ports": [{"protocol": "UDP"}]})]}, "x/b", "x/a", 40000, "UDP", True),
    ("udp-only-policy-isolates-tcp",
     {"x": [ingress_a({"ports": [{"protocol": "UDP"}]})]}, "x/b", "x/a", 80, "TCP", False),
    ("sctp-kept-apart-from-tcp",
     {"x": [ingress_a({"ports": [{"protocol": "SCTP", "port": 9000}]})]}, "x/b", "x/a", 9000,
     "TCP", False),
    ("sctp-port-allowed",
     {"x": [ingress_a({"ports": [{"protocol": "SCTP", "port": 9000}]})]}, "x/b", "x/a", 9000,
     "SCTP", True),
    ("endport-range-includes-end",
     {"x": [ingress_a({"ports": [{"port": 8000, "endPort": 8080}]})]}, "x/b", "x/a", 8080, "TCP",
     True),
    ("endport-range-excludes-beyond-end",
     {"x": [ingress_a({"ports": [{"port": 8000, "endPort": 8080}]})]}, "x/b", "x/a", 8081, "TCP",
     False),
    ("endport-range-excludes-before-start",
     {"x": [ingress_a({"ports": [{"port": 8000, "endPort": 8080}]})]}, "x/b", "x/a", 7999, "TCP",
     False),
    ("named-port-ingress-resolves-on-the-subject",
     {"x": [ingress_a({"ports": [{"port": "http"}]})]}, "x/b", "x/a", 80, "TCP", True),
    ("named-port-ingress-not-other-numbers",
     {"x": [ingress_a({"ports": [{"port": "http"}]})]}, "x/b", "x/a", 8080, "TCP", False),
    ("named-port-egress-resolves-on-the-peer",
     {"x": [egress_a({"ports": [{"port": "http"}]})]}, "x/a", "x/b", 8080, "TCP", True),
    ("named-port-egress-not-the-subjects-number",
     {"x": [egress_a({"ports": [{"port": "http"}]})]}, "x/a", "x/b", 80, "TCP", False),
    ("named-port-protocol-must-match",
     {"x": [ingress_a({"ports": [{"protocol": "UDP", "port": "http"}]})]}, "x/b", "x/a", 80,
     "UDP", False),
    ("named-port-with-its-protocol",
     {"x": [ingress_a({"ports": [{"protocol": "UDP", "port": "dns"}]})]}, "x/b", "x/a", 53,
     "UDP", True),
    ("named-port-undefined-on-destination-matches-nothing",
     {"x": [egress_a({"ports": [{"port": "http"}]})]}, "x/a", "y/c", 80, "TCP", False),
    ("named-port-egress-to-external-matches-nothing",
     {"x": [egress_a({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "http"}]})]},
     "x/a", "8.8.8.8", 80, "TCP", False),
    ("ipblock-matches-pod-ips",
     {"x": [ingress_a({"from": [{"ipBlock": {"cidr": "10.0.1.0/24"}}]})]}, "y/c", "x/a", 80,
     "TCP", True),
    ("ipblock-does-not-match-other-pods",
     {"x": [ingress_a({"from": [{"ipBlock": {"cidr": "10.0.1.0/24"}}]})]}, "x/b", "x/a", 80,
     "TCP", False),
    ("ipblock-except-is-subtracted",
     {"x": [ingress_a({"from": [{"ipBlock": {"cidr": "10.0.1.0/24",
                                             "except": ["10.0.1.3/32"]}}]})]},
     "y/c", "x/a", 80, "TCP", False),
    ("ipblock-host-bits-are-masked",
     {"x": [ingress_a({"from": [{"ipBlock": {"cidr": "10.0.1.77/24"}}]})]}, "y/c", "x/a", 80,
     "TCP", True),
    ("ipblock-matches-external-addresses",
     {"x": [egress_a({"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]})]}, "x/a", "203.0.113.9",
     443, "TCP", True),
    ("ipblock-other-external-denied",
     {"x": [egress_a({"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]})]}, "x/a", "198.51.100.1",
     443, "TCP", False),
    ("external-source-needs-ingress-ipblock",
     {"x": [ingress_a({"from": [{"podSelector": {}}]})]}, "203.0.113.9", "x/a", 80, "TCP", False),
    ("empty-from-admits-external-sources",
     {"x": [ingress_a({"ports": [{"port": 80}]})]}, "203.0.113.9", "x/a", 80, "TCP", True),
    ("hostnetwork-pod-is-never-isolated",
     {"x": [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]}, "y/c", "x/h", 80, "TCP",
     True),
    ("hostnetwork-pod-not-matched-by-podselector",
     {"x": [ingress_a({"from": [{"podSelector": {"matchLabels": {"app": "h"}}}]})]},
     "x/h", "x/a", 80, "TCP", False),
    ("hostnetwork-pod-seen-as-node-ip",
     {"x": [ingress_a({"from": [{"ipBlock": {"cidr": "192.168.0.10/32"}}]})]},
     "x/h", "x/a", 80, "TCP", True),
    ("pod-to-self-follows-ingress-rules", {"x": [DENY_INGRESS_A]}, "x/a", "x/a", 80, "TCP",
     False),
    ("pod-to-self-allowed-by-matching-rule",
     {"x": [ingress_a({"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]})]},
     "x/a", "x/a", 80, "TCP", True),
    ("policytypes-inferred-egress-when-egress-rules",
     {"x": [{"podSelector": {"matchLabels": {"app": "a"}},
             "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}]},
     "x/a", "y/c", 80, "TCP", False),
    ("policytypes-inferred-ingress-always",
     {"x": [{"podSelector": {"matchLabels": {"app": "a"}},
             "egress": [{"to": [{"podSelector": {}}]}]}]},
     "x/b", "x/a", 80, "TCP", False),
    ("ingress-rules-ignored-without-ingress-type",
     {"x": [{"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "zzz"}}}]}]}]},
     "x/b", "x/a", 80, "TCP", True),
]


@pytest.mark.parametrize(("policies", "src", "dst", "port", "proto", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(policies: dict[str, list[dict[str, Any]]], src: str, dst: str, port: int,
              proto: str, expected: bool) -> None:
    objects = list(BASE)
    for ns, specs in policies.items():
        objects += [netpol(ns, f"p{i}", spec) for i, spec in enumerate(specs)]
    assert allowed(analyze(objects), src, dst, port, proto) is expected


def test_ipv6_ipblock_matches_ipv6_pods_only() -> None:
    objects = [
        pod("x", "v6", {"app": "v6"}, [], "fd00::5"),
        pod("x", "v4", {"app": "v4"}, [], "10.0.0.5"),
        pod("x", "srv", {"app": "srv"}, [], "fd00::9"),
        netpol("x", "p", {"podSelector": {"matchLabels": {"app": "srv"}},
                          "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/64",
                                                             "except": ["fd00::4/126"]}}]}]}),
    ]
    a = analyze(objects)
    assert not allowed(a, "x/v6", "x/srv", 80)  # fd00::5 is in the except
    assert not allowed(a, "x/v4", "x/srv", 80)
    assert allowed(a, "fd00::100", "x/srv", 80)


DUAL_STACK = [
    pod("x", "ds", {"app": "ds"}, [], "10.0.0.7", ips=["10.0.0.7", "fd00::7"]),
    pod("x", "v4", {"app": "v4"}, [], "10.0.0.8"),
    pod("x", "srv", {"app": "srv"}, [], "10.0.0.9", ips=["10.0.0.9", "fd00::9"]),
    netpol("x", "p", {"podSelector": {"matchLabels": {"app": "srv"}},
                      "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]}),
]


@pytest.mark.parametrize(("family", "src", "expected"), [
    (None, "x/ds", False),  # primary address 10.0.0.7 is not in fd00::/64
    (6, "x/ds", True),  # its IPv6 address is
    (6, "x/v4", False),  # no IPv6 address: only selectors can match it
    (4, "x/ds", False),
], ids=["primary-family", "ipv6-family", "ipv6-family-single-stack-pod", "ipv4-family"])
def test_dual_stack_is_analysed_one_family_at_a_time(family: int | None, src: str,
                                                     expected: bool) -> None:
    cluster = load_texts([("t.yaml", to_yaml(DUAL_STACK), False)])
    analysis = Analysis(cluster, Family(family) if family else None)
    assert allowed(analysis, src, "x/srv", 80) is expected


def test_pods_without_ips_are_matched_by_selectors_not_ipblocks() -> None:
    objects = [
        pod("x", "a", {"app": "a"}),
        pod("x", "b", {"app": "b"}),
        netpol("x", "p", {"podSelector": {"matchLabels": {"app": "a"}},
                          "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
                                      {"from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                                       "ports": [{"port": 81}]}]}),
    ]
    a = analyze(objects)
    assert not allowed(a, "x/b", "x/a", 80)
    assert allowed(a, "x/b", "x/a", 81)
    assert allowed(a, "8.8.8.8", "x/a", 80)
