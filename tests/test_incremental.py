"""Incremental re-analysis after policy changes: the same answers as analysing from scratch.

`Analysis.updated` takes the incremental path when the change needs nothing finer (see
`policy.incremental`), and rebuilds otherwise; either way every answer (ports allowed for every
ordered pair, isolation, explanations) must equal a fresh analysis of the new version.
"""

from __future__ import annotations

import copy
from itertools import product
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from analyzer.diff import diff_analyses
from policy.engine import Analysis
from policy.explain import explain
from policy.loader import load_texts
from tests.builders import namespace, netpol, pod, to_yaml
from tests.strategies import clusters, network_policies

Obj = dict[str, Any]


def _load(objects: list[Obj]) -> Any:
    return load_texts([("c.yaml", to_yaml(objects), False)])


def assert_same_answers(updated: Analysis, fresh: Analysis) -> None:
    assert updated.endpoints.keys() == fresh.endpoints.keys()
    count = fresh.endpoints.count
    for s, d in product(range(count), repeat=2):
        assert updated.allowed(s, d) == fresh.allowed(s, d), (s, d)
        assert explain(updated, s, d) == explain(fresh, s, d), (s, d)
    for j in range(fresh.endpoints.n_pods):
        for direction in ("Ingress", "Egress"):
            side_u, side_f = updated.side(direction), fresh.side(direction)  # type: ignore[arg-type]
            assert [cp.policy for cp in side_u.isolating[j]] == \
                [cp.policy for cp in side_f.isolating[j]]


@st.composite
def policy_changes(draw: st.DrawFn) -> tuple[list[Obj], list[Obj]]:
    """(old objects, new objects): the same pods and namespaces; policies kept, removed,
    replaced (same name, new spec) or added."""
    objects = draw(clusters(max_policies=4))
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    rest = [o for o in objects if o["kind"] != "NetworkPolicy"]
    namespaces = sorted({o["metadata"].get("namespace", "default") for o in rest
                         if o["kind"] == "Pod"} | {o["metadata"]["name"] for o in rest
                                                   if o["kind"] == "Namespace"})
    targets = tuple(sorted({o.get("status", {}).get("podIP") for o in rest
                            if o["kind"] == "Pod"} - {None}))
    new = []
    for p in policies:
        what = draw(st.sampled_from(("keep", "keep", "remove", "replace")))
        if what == "keep":
            new.append(p)
        elif what == "replace":
            other = draw(network_policies(p["metadata"]["name"], namespaces, True, targets))
            other["metadata"] = copy.deepcopy(p["metadata"])
            new.append(other)
    for i in range(draw(st.integers(0, 2))):
        new.append(draw(network_policies(f"added{i}", namespaces, True, targets)))
    return objects, rest + new


@settings(max_examples=150, deadline=None)
@given(policy_changes())
def test_updated_answers_like_a_fresh_analysis(change: tuple[list[Obj], list[Obj]]) -> None:
    old_objects, new_objects = change
    old, new = _load(old_objects), _load(new_objects)
    updated = Analysis(old).updated(new)
    event("incremental" if updated.rebuilt is None else "rebuilt")
    assert_same_answers(updated, Analysis(new))


BASE = [
    namespace("x", team="a"),
    pod("x", "web", {"app": "web"}, [("http", 80, "TCP")], "10.0.0.1"),
    pod("x", "api", {"app": "api"}, [("http", 8080, "TCP")], "10.0.0.2"),
    pod("x", "db", {"app": "db"}, [], "10.0.0.3"),
    netpol("x", "api-in", {"podSelector": {"matchLabels": {"app": "api"}},
                           "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                        "ports": [{"port": 8080}]}]}),
    netpol("x", "db-deny", {"podSelector": {"matchLabels": {"app": "db"}}}),
    netpol("x", "out", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                        "egress": [{"to": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]},
                                   {"ports": [{"port": "http"}]}]}),
]


def _db_ingress(spec_from: list[Obj], ports: list[Obj] | None = None) -> Obj:
    rule: Obj = {"from": spec_from}
    if ports is not None:
        rule["ports"] = ports
    return netpol("x", "db-deny", {"podSelector": {"matchLabels": {"app": "db"}},
                                   "ingress": [rule]})


@pytest.mark.parametrize(("name", "new_policies", "rebuilt"), [
    ("a policy removed", [BASE[4], BASE[6]], None),
    ("a policy changed to known selectors and ports",
     [BASE[4], _db_ingress([{"podSelector": {"matchLabels": {"app": "api"}}}],
                           [{"port": 8080}]), BASE[6]], None),
    ("a policy added with a known named port",
     [*BASE[4:], netpol("x", "web-in", {"podSelector": {"matchLabels": {"app": "web"}},
                                        "ingress": [{"ports": [{"port": "http"}]}]})], None),
    ("a new port number needs a new atom",
     [BASE[4], _db_ingress([{"podSelector": {}}], [{"port": 5432}]), BASE[6]],
     "x/db-deny: port 5432 needs a new port atom"),
    ("a selector that matches no pod takes every class whole",
     [BASE[4], _db_ingress([{"podSelector": {"matchLabels": {"tier": "x"}}}]), BASE[6]],
     None),
    ("a new CIDR changes the external ranges",
     [BASE[4], _db_ingress([{"ipBlock": {"cidr": "172.16.0.0/12"}}]), BASE[6]],
     "the external address ranges changed"),
    ("a new named port",
     [BASE[4], _db_ingress([{"podSelector": {}}], [{"port": "grpc"}]), BASE[6]],
     "x/db-deny: named port grpc is new"),
])
def test_which_changes_are_incremental(name: str, new_policies: list[Obj],
                                       rebuilt: str | None) -> None:
    old, new = _load(BASE), _load(BASE[:4] + new_policies)
    updated = Analysis(old).updated(new)
    assert updated.rebuilt == rebuilt, name
    assert_same_answers(updated, Analysis(new))


def test_a_selector_that_splits_a_class_rebuilds() -> None:
    """web and web-2 differ only in a label no policy uses: one class, until a policy does."""
    twins = [*BASE[:4], pod("x", "web-2", {"app": "web", "track": "canary"},
                            [("http", 80, "TCP")], "10.0.0.4"), *BASE[4:]]
    split = netpol("x", "canary", {"podSelector": {"matchLabels": {"track": "canary"}}})
    old, new = _load(twins), _load([*twins, split])
    analysis = Analysis(old)
    assert analysis.classes.class_of[analysis.index("x/web")] == \
        analysis.classes.class_of[analysis.index("x/web-2")]
    updated = analysis.updated(new)
    assert updated.rebuilt == "x/canary: its podSelector splits a peer class"
    assert_same_answers(updated, Analysis(new))


@st.composite
def pod_changes(draw: st.DrawFn) -> tuple[list[Obj], list[Obj]]:
    """(old objects, new objects): the same policies and namespaces; pods kept, removed,
    copied under a new name (a replica: the same labels and ports, a fresh address), relabelled
    like another pod, or moved to a fresh address (ipBlocks may or may not hold it)."""
    objects = draw(clusters(max_policies=4))
    pods = [o for o in objects if o["kind"] == "Pod"]
    rest = [o for o in objects if o["kind"] != "Pod"]
    fresh = iter(draw(st.permutations(range(16, 64))))

    def readdress(q: Obj) -> None:
        status = q.get("status") or {}
        if status.get("podIP") and not q["spec"].get("hostNetwork"):
            status["podIP"] = f"10.0.0.{next(fresh)}"
            status.pop("podIPs", None)

    new = []
    for i, p in enumerate(pods):
        what = draw(st.sampled_from(("keep", "keep", "remove", "replica", "relabel", "move")))
        q = copy.deepcopy(p)
        if what == "remove":
            continue
        if what == "relabel":
            q["metadata"]["labels"] = copy.deepcopy(
                draw(st.sampled_from(pods))["metadata"].get("labels", {}))
        if what == "move":
            readdress(q)
        new.append(q)
        if what == "replica":
            r = copy.deepcopy(p)
            r["metadata"]["name"] = f"{p['metadata']['name']}-r{i}"
            readdress(r)
            new.append(r)
    return objects, rest + new


@settings(max_examples=150, deadline=None)
@given(pod_changes())
def test_updated_after_pod_changes_answers_like_a_fresh_analysis(
        change: tuple[list[Obj], list[Obj]]) -> None:
    """Pods that join classes already there are handled without a rebuild (`policy.podchanges`);
    either way every answer equals a fresh analysis."""
    old_objects, new_objects = change
    old, new = _load(old_objects), _load(new_objects)
    updated = Analysis(old).updated(new)
    event("incremental" if updated.rebuilt is None else f"rebuilt: {updated.rebuilt[:30]}")
    assert_same_answers(updated, Analysis(new))
    # and a policy change after it is still right
    later = _load(old_objects[:0] + new_objects[:-1] if new_objects[-1]["kind"] ==
                  "NetworkPolicy" else new_objects)
    assert_same_answers(updated.updated(later), Analysis(later))


def test_a_replica_joins_its_class_without_a_rebuild() -> None:
    scaled = copy.deepcopy(BASE)
    replica = copy.deepcopy(scaled[1])
    replica["metadata"]["name"] = "web-2"
    replica["status"] = {"podIP": "10.0.0.9"}
    scaled.insert(2, replica)
    analysis = Analysis(_load(BASE))
    updated = analysis.updated(_load(scaled))
    assert updated.rebuilt is None
    assert updated.classes.class_of[updated.index("x/web-2")] == \
        updated.classes.class_of[updated.index("x/web")]
    assert_same_answers(updated, Analysis(_load(scaled)))


def test_a_pod_that_needs_a_class_of_its_own_rebuilds() -> None:
    moved = copy.deepcopy(BASE)
    moved[1]["metadata"]["labels"] = {"app": "api"}  # api's labels, but web's ports
    updated = Analysis(_load(BASE)).updated(_load(moved))
    assert updated.rebuilt == "pod x/web needs a peer class of its own"
    assert_same_answers(updated, Analysis(_load(moved)))


@settings(max_examples=100, deadline=None)
@given(policy_changes())
def test_diff_of_an_updated_analysis_equals_the_diff_of_a_fresh_one(
        change: tuple[list[Obj], list[Obj]]) -> None:
    """The diff's fast path (only re-profiled classes compared) finds the same changes as the
    pair-by-pair comparison of two independent analyses."""
    old_objects, new_objects = change
    before = Analysis(_load(old_objects))
    after = before.updated(_load(new_objects))
    event("incremental" if after.rebuilt is None else "rebuilt")
    assert diff_analyses(before, after) == diff_analyses(before, Analysis(_load(new_objects)))


def _moved(name: str, ip: str) -> list[Obj]:
    out = copy.deepcopy(BASE)
    for o in out:
        if o["kind"] == "Pod" and o["metadata"]["name"] == name:
            o["status"] = {"podIP": ip}
    return out


DB_FROM_WEB_BLOCK = netpol("x", "db-in", {
    "podSelector": {"matchLabels": {"app": "db"}},
    "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/31"}}]}]})  # 10.0.0.0 and 10.0.0.1


@pytest.mark.parametrize(("name", "new_objects", "rebuilt"), [
    ("a pod moves within every block it was in", _moved("db", "10.0.0.7"), None),
    ("a pod moves out of an ipBlock", _moved("web", "10.0.0.9"),
     "pod x/web needs a peer class of its own"),
    ("its only pod removed: the class is gone", [o for o in BASE if o["metadata"]["name"] != "db"],
     "a peer class lost its last pod"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_which_pod_changes_are_incremental(name: str, new_objects: list[Obj],
                                           rebuilt: str | None) -> None:
    old = _load([*BASE, DB_FROM_WEB_BLOCK])
    new = _load([*new_objects, DB_FROM_WEB_BLOCK])
    updated = Analysis(old).updated(new)
    assert updated.rebuilt == rebuilt, name
    assert_same_answers(updated, Analysis(new))
