"""Peer classes: pods of one class are interchangeable, and only what a policy can see splits them.

The property is checked against the one-packet reference evaluator (which knows nothing of
classes): for two pods of one class, every other endpoint gets the same answer from both, in
both directions, on every port piece; and between themselves they answer as each does to itself.
"""

from __future__ import annotations

import copy
from itertools import combinations, product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.ports import Protocol
from tests.builders import analyze, namespace, netpol, pod
from tests.reference import Cluster
from tests.strategies import POD_NET, clusters
from tests.test_engine_vs_reference import endpoints, port_pieces

Obj = dict[str, Any]


@st.composite
def clusters_with_replicas(draw: st.DrawFn) -> list[Obj]:
    """A random cluster in which some pods get copies (new name and address, and a label no
    selector can use), as a workload's replicas would."""
    objects = draw(clusters())
    pods = [o for o in objects if o["kind"] == "Pod"]
    out = list(objects)
    for k, original in enumerate(draw(st.lists(st.sampled_from(pods), max_size=3))):
        replica = copy.deepcopy(original)
        replica["metadata"]["name"] = f"{original['metadata']['name']}-r{k}"
        replica["metadata"].setdefault("labels", {})["pod-template-hash"] = f"h{k}"
        status = replica.get("status") or {}
        if "podIP" in status and not (replica["spec"].get("hostNetwork")):
            ip = str(POD_NET + 100 + k)  # inside 10.0.0.0/23, away from the drawn ones
            if status.get("podIPs"):
                status["podIPs"] = [{"ip": ip}, *status["podIPs"][1:]]
            status["podIP"] = ip
        out.append(replica)
    return out


@settings(max_examples=120, deadline=None)
@given(clusters_with_replicas())
def test_pods_of_a_class_are_interchangeable_for_the_reference(objects: list[Obj]) -> None:
    a = analyze(objects)
    ref = Cluster(objects)
    eps = endpoints(a)
    pods = [(j, key) for j, key in eps if not a.is_external(j)]
    pieces = [(proto, port) for proto in Protocol for lo, hi in port_pieces(objects)
              for port in {lo, hi}]
    by_class: dict[int, list[str]] = {}
    for j, key in pods:
        by_class.setdefault(int(a.classes.class_of[j]), []).append(key)
    for members in by_class.values():
        for x, y in combinations(members, 2):
            for (_, other), (proto, port) in product(eps, pieces):
                if other in (x, y):
                    continue
                where = f"{x} ~ {y} vs {other} {proto.value}/{port}"
                assert ref.allows(x, other, proto.value, port) == \
                    ref.allows(y, other, proto.value, port), where
                assert ref.allows(other, x, proto.value, port) == \
                    ref.allows(other, y, proto.value, port), where
            for proto, port in pieces:
                answers = {ref.allows(s, d, proto.value, port)
                           for s, d in ((x, y), (y, x), (x, x), (y, y))}
                assert len(answers) == 1, f"{x} ~ {y} among themselves {proto.value}/{port}"


POLICY = netpol("x", "p", {
    "podSelector": {"matchLabels": {"app": "web"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                          {"ipBlock": {"cidr": "10.0.0.0/30"}}],
                 "ports": [{"port": "http"}]}],
})


def _same_class(objects: list[Obj], a_key: str, b_key: str) -> bool:
    analysis = analyze(objects)
    a, b = analysis.index(a_key), analysis.index(b_key)
    assert a is not None and b is not None
    return bool(analysis.classes.class_of[a] == analysis.classes.class_of[b])


@pytest.mark.parametrize(("name", "second", "same"), [
    ("a label no selector uses does not split",
     pod("x", "b", {"app": "web", "pod-template-hash": "2"}, [("http", 80, "TCP")], "10.0.1.2"),
     True),
    ("a label a peer selector uses splits",
     pod("x", "b", {"app": "web", "role": "client"}, [("http", 80, "TCP")], "10.0.1.2"), False),
    ("a label the podSelector uses splits",
     pod("x", "b", {"app": "db"}, [("http", 80, "TCP")], "10.0.1.2"), False),
    ("another namespace splits",
     pod("y", "b", {"app": "web"}, [("http", 80, "TCP")], "10.0.1.2"), False),
    ("an address inside an ipBlock splits",
     pod("x", "b", {"app": "web"}, [("http", 80, "TCP")], "10.0.0.2"), False),
    ("a mentioned named port on another number splits",
     pod("x", "b", {"app": "web"}, [("http", 8080, "TCP")], "10.0.1.2"), False),
    ("an unmentioned named port does not split",
     pod("x", "b", {"app": "web"}, [("http", 80, "TCP"), ("metrics", 9090, "TCP")],
         "10.0.1.2"), True),
    ("hostNetwork splits",
     pod("x", "b", {"app": "web"}, [("http", 80, "TCP")], "192.168.0.1", host_network=True,
         host_ip="192.168.0.1"), False),
])
def test_what_splits_a_class(name: str, second: Obj, same: bool) -> None:
    first = pod("x", "a", {"app": "web", "pod-template-hash": "1"}, [("http", 80, "TCP")],
                "10.0.1.1")
    objects = [namespace("x"), namespace("y"), first, second, POLICY]
    assert _same_class(objects, "x/a", second["metadata"]["namespace"] + "/b") is same, name


def test_replicas_share_one_class_and_one_profile() -> None:
    replicas = [pod("x", f"web-{i}", {"app": "web", "pod-template-hash": "abc"},
                    [("http", 80, "TCP")], f"10.0.1.{i + 1}") for i in range(5)]
    analysis = analyze([namespace("x"), *replicas, POLICY])
    assert analysis.classes.n_pod_classes == 1
    assert analysis.ingress.profiles == 2  # UNRESTRICTED and the web pods'
