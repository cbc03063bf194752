"""The engine against the one-packet-at-a-time reference evaluator in `reference.py`.

Random clusters come from `strategies.py`. Ports are probed on a partition of each protocol's
port space cut at every number the example mentions (and the number after it): every rule range
and every named port starts and ends on a cut, so the reference is constant on each piece and
probing a piece's first and last port covers the neighbours of every mentioned number.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from itertools import pairwise, product
from typing import Any

import numpy as np
import yaml
from hypothesis import given, settings

from policy.addresses import Family
from policy.cluster import ClusterState
from policy.engine import Analysis
from policy.loader import load_texts
from policy.ports import MAX_PORT, MIN_PORT, Protocol
from tests.reference import Cluster, reference_allows
from tests.strategies import clusters, mentioned_ports, to_yaml

Obj = dict[str, Any]
PROTOCOLS = tuple(Protocol)
Case = tuple[str, str, str, int, bool]  # src, dst, protocol, port, expected


def load(objects: list[Obj]) -> ClusterState:
    return load_texts([("cluster.yaml", to_yaml(objects), False)])


def port_pieces(objects: list[Obj]) -> list[tuple[int, int]]:
    """Inclusive (lo, hi) pieces of 1..65535 cut at every mentioned port m and at m + 1."""
    cuts = {MIN_PORT, MAX_PORT + 1}
    for m in mentioned_ports(objects):
        cuts.update((m, m + 1))
    bounds = sorted(c for c in cuts if MIN_PORT <= c <= MAX_PORT + 1)
    return [(lo, nxt - 1) for lo, nxt in pairwise(bounds)]


def endpoints(a: Analysis) -> list[tuple[int, str]]:
    """(engine index, reference endpoint): every pod, and for every external peer its first and
    last address (both stand for the same row and column of the matrix)."""
    out = [(j, pod.key) for j, pod in enumerate(a.endpoints.pods)]
    for k, ext in enumerate(a.endpoints.externals):
        j = a.endpoints.n_pods + k
        addresses = {ext.representative}
        for family in Family:
            ivs = ext.addresses.intervals(family)
            if ivs:
                addresses.add(ipaddress.IPv6Address(ivs[-1][1]) if family is Family.IPV6
                              else ipaddress.IPv4Address(ivs[-1][1]))
        out.extend((j, str(addr)) for addr in sorted(addresses, key=lambda x: (x.version, x)))
    return out


def check_against_reference(objects: list[Obj]) -> None:
    """probe(), allowed() and allowed().contains() agree with the reference, for every pair of
    endpoints except external to external (which the matrix does not govern)."""
    text = to_yaml(objects)
    a = Analysis(load(objects))
    ref = Cluster(objects)
    assert sorted(p.key for p in a.endpoints.pods) == sorted(ref.pods)
    eps = endpoints(a)
    pairs = [(s, d) for s, d in product(eps, repeat=2)
             if not (a.is_external(s[0]) and a.is_external(d[0]))]
    pieces = port_pieces(objects)
    expected: dict[tuple[str, str], list[tuple[Protocol, int, int]]] = defaultdict(list)
    for proto in PROTOCOLS:
        for lo, hi in pieces:
            at_lo, at_hi = a.probe(proto, lo), a.probe(proto, hi)
            for (sj, src), (dj, dst) in pairs:
                want = ref.allows(src, dst, proto.value, lo)
                where = f"{src} -> {dst} {proto.value}/{lo}..{hi}\n---\n{text}"
                assert ref.allows(src, dst, proto.value, hi) == want, f"piece cut: {where}"
                assert bool(at_lo[sj, dj]) == want, f"probe at {lo}: {where}"
                assert bool(at_hi[sj, dj]) == want, f"probe at {hi}: {where}"
                if want:
                    ranges = expected[(src, dst)]
                    if ranges and ranges[-1][0] is proto and ranges[-1][2] == lo - 1:
                        ranges[-1] = (proto, ranges[-1][1], hi)
                    else:
                        ranges.append((proto, lo, hi))
    for (sj, src), (dj, dst) in pairs:
        got = a.allowed(sj, dj)
        where = f"allowed {src} -> {dst}\n---\n{text}"
        assert list(got.items()) == expected[(src, dst)], where
        for proto, lo, hi in expected[(src, dst)]:
            assert got.contains(proto, lo) and got.contains(proto, hi), where
        for proto in PROTOCOLS:
            assert got.contains(proto, MIN_PORT - 1) is False
            assert got.contains(proto, MAX_PORT + 1) is False


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(clusters())
def test_engine_agrees_with_reference(objects: list[Obj]) -> None:
    check_against_reference(objects)


@settings(max_examples=60, deadline=None)
@given(clusters(named_ports=True))
def test_engine_agrees_with_reference_on_named_ports(objects: list[Obj]) -> None:
    """Every policy port and container port named: where they resolve (destination, protocol)
    decides everything."""
    check_against_reference(objects)


@settings(max_examples=60, deadline=None)
@given(clusters())
def test_probe_agrees_with_allowed(objects: list[Obj]) -> None:
    """Internal consistency, on every endpoint pair, externals to externals included: probe and
    allowed are the same answer, and block() holds the same cells as cell_words()."""
    a = Analysis(load(objects))
    count = a.endpoints.count
    allowed = {(s, d): a.allowed(s, d) for s, d in product(range(count), repeat=2)}
    for proto in PROTOCOLS:
        for lo, hi in port_pieces(objects):
            for port in {lo, hi}:
                matrix = a.probe(proto, port)
                assert matrix.shape == (count, count)
                for (s, d), ports in allowed.items():
                    assert bool(matrix[s, d]) == ports.contains(proto, port), (s, d, proto, port)
    for (s, d), ports in allowed.items():
        if a.is_external(s) and a.is_external(d):
            assert ports.is_empty()
    block = a.block(np.arange(count, dtype=np.int64))
    for s, d in product(range(count), repeat=2):
        assert np.array_equal(block[s, d], a.cell_words(s, d))


# -- hand-written cases ----------------------------------------------------------------------


def assert_cases(text: str, cases: list[Case]) -> None:
    """Each case holds for the reference (so the reference is checked too), then for the engine;
    the whole example is then checked against the reference on every pair and port."""
    objects = [o for o in yaml.safe_load_all(text) if o]
    for src, dst, proto, port, want in cases:
        assert reference_allows(objects, src, dst, proto, port) is want, ("reference", src, dst)
    a = Analysis(load(objects))
    for src, dst, proto, port, want in cases:
        sj, dj = _index(a, src), _index(a, dst)
        assert bool(a.probe(Protocol(proto), port)[sj, dj]) is want, ("probe", src, dst, port)
        assert a.allowed(sj, dj).contains(Protocol(proto), port) is want, ("allowed", src, dst)
    check_against_reference(objects)


def _index(a: Analysis, endpoint: str) -> int:
    j = a.index(endpoint)
    if j is not None:
        return j
    address = ipaddress.ip_address(endpoint)
    for k, ext in enumerate(a.endpoints.externals):
        if ext.addresses.contains(address):
            return a.endpoints.n_pods + k
    raise AssertionError(f"no endpoint for {endpoint}")


def _pod(name: str, ip: str | None, labels: str = "{}", ports: str = "[]",
         namespace: str = "default", extra_spec: str = "", host_ip: str | None = None) -> str:
    status = []
    if ip:
        status.append(f"podIP: {ip}")
    if host_ip:
        status.append(f"hostIP: {host_ip}")
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}
spec:
  {extra_spec}
  containers: [{{name: c, ports: {ports}}}]
status: {{{', '.join(status)}}}
---"""


def test_named_port_egress_resolves_on_the_peer() -> None:
    text = (
        _pod("client", "10.0.0.1", "{app: client}", "[{name: http, containerPort: 80}]")
        + _pod("server-a", "10.0.0.2", ports="[{name: http, containerPort: 8080}]")
        + _pod("server-b", "10.0.0.3",
               ports="[{name: http, containerPort: 9090, protocol: UDP}]")
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-http, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: http}]
"""
    )
    assert_cases(text, [
        ("default/client", "default/server-a", "TCP", 8080, True),
        ("default/client", "default/server-a", "TCP", 80, False),  # not the client's http
        ("default/client", "default/server-b", "TCP", 9090, False),
        ("default/client", "default/server-b", "UDP", 9090, False),  # the rule's http is TCP
        ("default/client", "default/client", "TCP", 80, True),
        ("default/server-a", "default/client", "UDP", 5, True),  # servers are not isolated
    ])


def test_named_port_ingress_resolves_on_the_subject() -> None:
    text = (
        _pod("client", "10.0.0.1", ports="[{name: web, containerPort: 81}]")
        + _pod("server", "10.0.0.2", "{app: s}",
               "[{name: web, containerPort: 8080}, {name: dns, containerPort: 53, "
               "protocol: UDP}]")
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ingress-named, namespace: default}
spec:
  podSelector: {matchLabels: {app: s}}
  ingress:
  - ports: [{port: web}, {port: dns, protocol: UDP}, {port: metrics}]
"""
    )
    assert_cases(text, [
        ("default/client", "default/server", "TCP", 8080, True),
        ("default/client", "default/server", "TCP", 81, False),
        ("default/client", "default/server", "UDP", 53, True),
        ("default/client", "default/server", "TCP", 53, False),
    ])


def test_ip_block_except_with_host_bits() -> None:
    text = (
        _pod("excepted", "10.0.0.2") + _pod("inside", "10.0.0.9")
        + _pod("server", "10.0.0.20", "{app: s}") + _pod("outside", "10.0.1.9")
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-block, namespace: default}
spec:
  podSelector: {matchLabels: {app: s}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.77/24, except: [10.0.0.1/30]}}]
"""
    )
    assert_cases(text, [
        ("default/excepted", "default/server", "TCP", 80, False),
        ("default/inside", "default/server", "TCP", 80, True),
        ("default/server", "default/server", "TCP", 80, True),  # itself, by its own IP
        ("default/outside", "default/server", "TCP", 80, False),
        ("10.0.0.100", "default/server", "SCTP", 9, True),
        ("10.0.0.3", "default/server", "TCP", 80, False),
    ])


def test_not_in_and_does_not_exist_match_an_absent_key() -> None:
    text = (
        _pod("none", "10.0.0.1") + _pod("db", "10.0.0.2", "{tier: db}")
        + _pod("web", "10.0.0.3", "{tier: web}") + _pod("server", "10.0.0.4", "{app: s}")
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: not-db, namespace: default}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [s]}]}
  ingress:
  - from: [{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}}]
    ports: [{port: 80}]
  - from: [{podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}}]
    ports: [{port: 81}]
"""
    )
    assert_cases(text, [
        ("default/none", "default/server", "TCP", 80, True),
        ("default/db", "default/server", "TCP", 80, False),
        ("default/web", "default/server", "TCP", 80, True),
        ("default/none", "default/server", "TCP", 81, True),
        ("default/web", "default/server", "TCP", 81, False),
        ("default/server", "default/server", "TCP", 81, True),
    ])


def test_host_network_pods_are_never_selected() -> None:
    host = "hostNetwork: true"
    text = (
        _pod("host", "10.0.1.1", "{app: a}", extra_spec=host, host_ip="10.0.1.1")
        + _pod("plain", "10.0.0.5", "{app: a}", host_ip="10.0.1.1")
        + _pod("other", "10.0.0.6", host_ip="10.0.1.1")
        + _pod("server", "10.0.0.7", "{tier: s}")
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-app-a, namespace: default}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-nodes, namespace: default}
spec:
  podSelector: {matchLabels: {tier: s}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.1.0/24}}]
"""
    )
    assert_cases(text, [
        ("default/plain", "default/server", "TCP", 80, True),
        ("default/host", "default/server", "TCP", 80, True),  # by its node IP, not app=a
        ("default/other", "default/server", "TCP", 80, False),  # a pod's hostIP is not its IP
        ("default/server", "default/host", "TCP", 80, True),  # never isolated
        ("default/server", "default/plain", "TCP", 80, False),
        ("default/host", "default/plain", "TCP", 80, False),
    ])


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    text = (
        _pod("here", "10.0.0.1", "{app: a}", namespace="alpha")
        + _pod("there", "10.0.0.2", "{app: a}", namespace="beta")
        + _pod("server", "10.0.0.3", "{app: s}", namespace="alpha")
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-a, namespace: alpha}
spec:
  podSelector: {matchLabels: {app: s}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a}}}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: beta}}}]
    ports: [{port: 53, protocol: UDP}]
"""
    )
    assert_cases(text, [
        ("alpha/here", "alpha/server", "TCP", 80, True),
        ("beta/there", "alpha/server", "TCP", 80, False),
        ("beta/there", "alpha/server", "UDP", 53, True),
        ("alpha/here", "alpha/server", "UDP", 53, True),
    ])


def test_egress_rules_without_policy_types_isolate_both_directions() -> None:
    text = _pod("a", "10.0.0.1") + _pod("b", "10.0.0.2") + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: default}
spec:
  podSelector: {}
  egress: [{}]
"""
    assert_cases(text, [
        ("default/a", "default/b", "TCP", 80, False),  # b's ingress is isolated, no rules
        ("default/a", "default/a", "UDP", 53, False),
        ("10.0.0.3", "default/a", "TCP", 80, False),
    ])


def test_namespace_selector_by_name_label() -> None:
    text = (
        _pod("client", "10.0.0.1", namespace="implied")
        + _pod("other", "10.0.0.2", namespace="declared")
        + _pod("server", "10.0.0.3", namespace="default")
        + """
apiVersion: v1
kind: Namespace
metadata: {name: declared, labels: {kubernetes.io/metadata.name: implied, team: x}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-implied, namespace: default}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: implied}}
      podSelector: {}
"""
    )
    assert_cases(text, [
        ("implied/client", "default/server", "TCP", 80, True),
        ("declared/other", "default/server", "TCP", 80, False),  # its name label is overwritten
        ("default/server", "default/server", "TCP", 80, False),
    ])


def test_sidecar_ports_are_served_init_container_ports_are_not() -> None:
    spec = ("initContainers: [{name: side, restartPolicy: Always, ports: [{name: metrics, "
            "containerPort: 9100}]}, {name: init, ports: [{name: dns, containerPort: 5353}]}]")
    text = (
        _pod("client", "10.0.0.1") + _pod("server", "10.0.0.2", "{app: s}", extra_spec=spec)
        + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: default}
spec:
  podSelector: {matchLabels: {app: s}}
  ingress:
  - ports: [{port: metrics}, {port: dns}]
"""
    )
    assert_cases(text, [
        ("default/client", "default/server", "TCP", 9100, True),
        ("default/client", "default/server", "TCP", 5353, False),
    ])


def test_many_port_atoms_span_several_words() -> None:
    ports = ", ".join(f"{{port: {p}}}" for p in range(1000, 1080, 2))
    text = _pod("a", "10.0.0.1", "{app: a}") + _pod("b", "10.0.0.2") + f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: many, namespace: default}}
spec:
  podSelector: {{matchLabels: {{app: a}}}}
  ingress:
  - ports: [{ports}, {{port: 2000, endPort: 2100, protocol: SCTP}}]
"""
    assert_cases(text, [
        ("default/b", "default/a", "TCP", 1078, True),
        ("default/b", "default/a", "TCP", 1079, False),
        ("default/b", "default/a", "SCTP", 2100, True),
        ("default/b", "default/a", "SCTP", 2101, False),
    ])


def test_empty_policy_types_default_like_absent() -> None:
    """Upstream defaults policyTypes when len(policyTypes) == 0, so `[]` is Ingress here. (Found
    by this file: the engine first read `[]` as "no types", isolating nothing.)"""
    text = _pod("a", "10.0.0.1") + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: default}
spec:
  podSelector: {}
  policyTypes: []
"""
    assert_cases(text, [("default/a", "default/a", "TCP", 80, False)])


def test_ip_blocks_covering_every_address() -> None:
    text = _pod("a", "10.0.0.1") + """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-anywhere, namespace: default}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0}}, {ipBlock: {cidr: "::/0"}}]
"""
    assert_cases(text, [
        ("default/a", "192.168.0.1", "TCP", 80, True),
        ("default/a", "fd00::1", "UDP", 53, True),
        ("default/a", "default/a", "TCP", 80, True),
    ])
