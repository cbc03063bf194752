"""One table row per lint: a case that triggers it and a near miss that does not.

The base cluster: namespaces x (ns=x) and y (ns=y) and kube-system; pods x/a (app=a, http
80/TCP), x/b (app=b, http 8080/TCP), y/c (app=c) and the DNS server kube-system/dns
(k8s-app=kube-dns, 53 UDP and TCP). Each row adds objects (mostly policies) and names the lint
code it is about and the finding expected: (severity, line, field), or None for a near miss
(no finding with that code at all). Lines are the lines of the YAML `to_yaml` writes.
"""

from __future__ import annotations

import pytest

from analyzer.findings import Finding, Severity
from analyzer.lints import run_lints
from policy.engine import Analysis
from policy.loader import load, load_texts
from tests.builders import Obj, namespace, netpol, pod, to_yaml
from tests.conftest import REPO

FILE = "t.yaml"

DNS = pod("kube-system", "dns", {"k8s-app": "kube-dns"},
          [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")], "10.0.9.9")
NAMESPACES = [namespace("x", ns="x"), namespace("y", ns="y"), namespace("kube-system")]
PODS = [
    pod("x", "a", {"app": "a"}, [("http", 80, "TCP")], "10.0.0.1"),
    pod("x", "b", {"app": "b"}, [("http", 8080, "TCP")], "10.0.0.2"),
    pod("y", "c", {"app": "c"}, [], "10.0.1.3"),
]
BASE = [*NAMESPACES, *PODS, DNS]
NO_DNS = [*NAMESPACES, *PODS]

A = {"matchLabels": {"app": "a"}}
B = {"matchLabels": {"app": "b"}}
DNS_RULE = {"to": [{"namespaceSelector": {"matchLabels": {
    "kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def ingress(selector: Obj, *rules: Obj) -> Obj:
    return {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": list(rules)}


def egress(selector: Obj, *rules: Obj) -> Obj:
    return {"podSelector": selector, "policyTypes": ["Egress"], "egress": list(rules)}


def from_(*peers: Obj, ports: list[Obj] | None = None) -> Obj:
    return {"from": list(peers), **({"ports": ports} if ports else {})}


def to(*peers: Obj, ports: list[Obj] | None = None) -> Obj:
    return {"to": list(peers), **({"ports": ports} if ports else {})}


def policies(*specs: Obj, ns: str = "x") -> list[Obj]:
    return [netpol(ns, f"p{i}", spec) for i, spec in enumerate(specs)]


Expected = tuple[Severity, int, str] | None

W, E, N = Severity.WARNING, Severity.ERROR, Severity.NOTE

# (id, objects, code, expected)
SERVICE: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns",
                 "namespace": "x"}, "spec": {"clusterIP": "10.96.0.10"}}

CASES: list[tuple[str, list[Obj], str, Expected]] = [
    ("kf101-egress-deny-without-dns", BASE + policies(egress(A)), "KF101",
     (W, 109, "spec.policyTypes")),
    ("kf101-udp-only-is-not-enough",
     BASE + policies(egress(A, {**DNS_RULE, "ports": [{"protocol": "UDP", "port": 53}]})),
     "KF101", (W, 109, "spec.egress")),
    ("kf101-near-miss-dns-allowed", BASE + policies(egress(A, DNS_RULE)), "KF101", None),
    ("kf101-no-kube-dns-checks-externals",
     NO_DNS + policies(egress(A, to({"podSelector": B}))), "KF101", (W, 84, "spec.egress")),
    ("kf101-near-miss-no-kube-dns-external-resolver",
     NO_DNS + policies(egress(A, to({"ipBlock": {"cidr": "0.0.0.0/0"}}, ports=[
         {"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]))),
     "KF101", None),
    ("kf101-near-miss-ingress-only", BASE + policies(ingress(A)), "KF101", None),
    ("kf102-selects-no-pod", BASE + policies(ingress({"matchLabels": {"app": "zzz"}})), "KF102",
     (W, 109, "spec.podSelector")),
    ("kf102-near-miss", BASE + policies(ingress(A)), "KF102", None),
    ("kf103-peer-matches-no-pod",
     BASE + policies(ingress(A, from_({"podSelector": B},
                                      {"podSelector": {"matchLabels": {"app": "zzz"}}}))),
     "KF103", (W, 121, "spec.ingress[0].from[1]")),
    ("kf103-podselector-alone-is-own-namespace",
     BASE + policies(egress(A, DNS_RULE, to({"podSelector": {"matchLabels": {"app": "c"}}}))),
     "KF103", (W, 133, "spec.egress[1].to[0]")),
    ("kf103-near-miss", BASE + policies(ingress(A, from_({"podSelector": B}))), "KF103", None),
    ("kf103-near-miss-namespace-without-pods",
     [*BASE, namespace("empty", team="e"),
      *policies(ingress(A, from_({"namespaceSelector": {"matchLabels": {"team": "e"}}})))],
     "KF103", None),
    ("kf104-named-port-undefined",
     BASE + policies(ingress(A, from_({"podSelector": B}, ports=[{"port": 80},
                                                                {"port": "web"}]))),
     "KF104", (E, 121, "spec.ingress[0].ports[1]")),
    ("kf104-named-port-other-protocol",
     BASE + policies(ingress(A, from_(ports=[{"protocol": "UDP", "port": "http"}]))),
     "KF104", (E, 121, "spec.ingress[0].ports[0]")),
    ("kf104-egress-resolves-on-peer",
     BASE + policies(egress(A, DNS_RULE, to({"podSelector": B}, ports=[{"port": "metrics"}]))),
     "KF104", (E, 133, "spec.egress[1].ports[0]")),
    ("kf104-near-miss-ingress", BASE + policies(ingress(A, from_(ports=[{"port": "http"}]))),
     "KF104", None),
    ("kf104-near-miss-egress",
     BASE + policies(egress(A, DNS_RULE, to({"podSelector": B}, ports=[{"port": "http"}]))),
     "KF104", None),
    ("kf105-and-or-trap",
     BASE + policies(ingress(A, from_({"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                                      {"podSelector": {"matchLabels": {"app": "c"}}}))),
     "KF105", (W, 121, "spec.ingress[0].from")),
    ("kf105-near-miss-one-peer",
     BASE + policies(ingress(A, from_({"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                       "podSelector": {"matchLabels": {"app": "c"}}}))),
     "KF105", None),
    ("kf106-ipblock-covers-pods",
     BASE + policies(ingress(A, from_({"podSelector": B}, {"ipBlock": {"cidr": "10.0.0.0/16"}}))),
     "KF106", (W, 121, "spec.ingress[0].from[1].ipBlock")),
    ("kf106-host-bits",
     BASE + policies(ingress(A, from_({"ipBlock": {"cidr": "203.0.113.7/24"}}))),
     "KF106", (W, 123, "spec.ingress[0].from[0].ipBlock.cidr")),
    ("kf106-near-miss-external-block",
     BASE + policies(ingress(A, from_({"ipBlock": {"cidr": "203.0.113.0/24"}}))),
     "KF106", None),
    ("kf106-near-miss-pods-carved-out",
     BASE + policies(ingress(A, from_({"ipBlock": {"cidr": "10.0.0.0/8",
                                                   "except": ["10.0.0.0/16"]}}))),
     "KF106", None),
    ("kf106-ipblock-covers-a-service-ip",
     BASE + policies(ingress(A, from_({"ipBlock": {"cidr": "10.96.0.0/12"}}))) + [SERVICE],
     "KF106", (W, 121, "spec.ingress[0].from[0].ipBlock")),
    ("kf106-near-miss-service-outside-block",
     BASE + policies(ingress(A, from_({"ipBlock": {"cidr": "203.0.113.0/24"}}))) + [SERVICE],
     "KF106", None),
    ("kf107-duplicate-rule-reported-once",
     BASE + policies(ingress(A, from_({"podSelector": B}), from_({"podSelector": B}))),
     "KF107", (N, 125, "spec.ingress[1]")),
    ("kf107-rule-covered-by-another-policy",
     BASE + policies(ingress(A, from_()),
                     ingress(A, from_({"podSelector": B}, ports=[{"port": 80}]))),
     "KF107", (N, 135, "spec.ingress[0]")),
    ("kf107-near-miss-different-ports",
     BASE + policies(ingress(A, from_({"podSelector": B}, ports=[{"port": 80}]),
                             from_({"podSelector": B}, ports=[{"port": 81}]))),
     "KF107", None),
    ("kf108-no-default-deny", BASE + policies(ingress(A)), "KF108", (W, 109, "spec.podSelector")),
    ("kf108-near-miss-default-deny",
     BASE + policies(ingress(A), {"podSelector": {}, "policyTypes": ["Ingress"]}),
     "KF108", None),
    ("kf108-near-miss-egress-policy-covers-the-rest",
     BASE + policies(ingress(A), egress(B, DNS_RULE)), "KF108", None),
    ("kf109-open-pods", BASE, "KF109", (N, 21, "metadata.labels")),
    ("kf109-near-miss-everything-isolated",
     [namespace("x"), *PODS[:2],
      pod("x", "h", {"app": "h"}, [], "192.168.0.1", host_network=True, host_ip="192.168.0.1"),
      *policies({"podSelector": {}, "policyTypes": ["Ingress"]})],
     "KF109", None),
    ("kf110-hostnetwork-selected",
     [*BASE, pod("x", "h", {"app": "h"}, [], "192.168.0.1", host_network=True,
                 host_ip="192.168.0.1"),
      *policies({"podSelector": {}, "policyTypes": ["Ingress"]})],
     "KF110", (W, 129, "spec.podSelector")),
    ("kf110-near-miss",
     [*BASE, pod("x", "h", {"app": "h"}, [], "192.168.0.1", host_network=True,
                 host_ip="192.168.0.1"),
      *policies(ingress(A))],
     "KF110", None),
]


def run(objects: list[Obj]) -> list[Finding]:
    return run_lints(Analysis(load_texts([(FILE, to_yaml(objects), False)])))


@pytest.mark.parametrize(("objects", "code", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_lint(objects: list[Obj], code: str, expected: Expected) -> None:
    found = [f for f in run(objects) if f.code == code]
    if expected is None:
        assert found == []
        return
    got = [(f.severity, f.location.file, f.location.line, f.location.field) for f in found]
    severity, line, field = expected
    assert (severity, FILE, line, field) in got
    for f in found:
        assert f.location.obj and f.message and f.hint
        assert "\n" not in f.message + f.hint


def test_every_code_has_a_trigger_and_a_near_miss() -> None:
    triggered = {c[2] for c in CASES if c[3] is not None}
    missed = {c[2] for c in CASES if c[3] is None}
    codes = {f"KF1{i:02d}" for i in range(1, 11)}
    assert triggered == codes
    assert missed == codes


def test_kf107_needs_redundancy_for_every_subject() -> None:
    """p0's rule is redundant for x/a (p1 allows the same) but is x/b's only rule."""
    objects = BASE + policies(
        ingress({}, from_({"podSelector": B}, ports=[{"port": 80}])),
        ingress(A, from_({"podSelector": B}, ports=[{"port": 80}])),
    )
    found = [f for f in run(objects) if f.code == "KF107"]
    assert [f.location.obj for f in found] == ["NetworkPolicy x/p1"]


def test_kf101_groups_pods_of_a_namespace() -> None:
    objects = BASE + policies({"podSelector": {}, "policyTypes": ["Egress"]})
    found = [f for f in run(objects) if f.code == "KF101"]
    assert len(found) == 1
    assert "x/a, x/b" in found[0].message


def test_kf109_one_note_per_namespace() -> None:
    found = [f for f in run(BASE) if f.code == "KF109"]
    assert [f.message.split(":")[0] for f in found] == [
        "namespace x", "namespace y", "namespace kube-system"]


def _key(f: Finding) -> tuple[str, int, str]:
    return (f.location.file, f.location.line or 0, f.code)


def test_shop_example_is_deterministic_and_sorted() -> None:
    def lint() -> list[Finding]:
        return run_lints(Analysis(load([str(REPO / "manifests" / "examples" / "shop")])))

    first = lint()
    assert first == lint()
    assert [_key(f) for f in first] == sorted(_key(f) for f in first)
    assert [f.code for f in first] == ["KF101", "KF109", "KF109"]
    dns = first[0]
    assert dns.location.obj == "NetworkPolicy db/default-deny"
    assert "db/postgres" in dns.message
    assert {f.message.split(":")[0] for f in first[1:]} == {
        "namespace monitoring", "namespace kube-system"}
