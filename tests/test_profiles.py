"""Shared sets in profile rows (`policy.profiles`, `policy.sides`): a layout, not an answer.

A large constant part of a row is stored once as a shared set instead of as sparse entries. The
generated clusters of the other tests are too small to reach `SHARED_MIN`, so here it is set to
1 (every part with peers may be shared) and every reader of a side must give what the all-sparse
layout gives, and the engine must still agree with the reference evaluator, fresh and updated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import product
from typing import Any
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings

import policy.profiles
from policy.cluster import Direction
from policy.engine import Analysis
from policy.sides import Side
from tests.builders import netpol, pod
from tests.strategies import clusters
from tests.test_engine_vs_reference import check_against_reference, load
from tests.test_incremental import _load, assert_same_answers, policy_changes

Obj = dict[str, Any]


@contextmanager
def shared_from(n: int) -> Iterator[None]:
    with patch.object(policy.profiles, "SHARED_MIN", n):
        yield


def assert_same_side(a: Side, b: Side) -> None:
    """Every reader of a side gives the same answer on both."""
    count = a.classes.count
    assert np.array_equal(a.profile_of_class, b.profile_of_class)
    assert a.profiles == b.profiles
    profiles, classes = np.arange(a.profiles), np.arange(count)
    assert np.array_equal(a.class_rows(profiles), b.class_rows(profiles))
    assert np.array_equal(a.class_columns(classes), b.class_columns(classes))
    for p in range(a.profiles):
        assert np.array_equal(a.class_row(p), b.class_row(p))
        for c in range(count):
            assert np.array_equal(a.lookup(p, c), b.lookup(p, c)), (p, c)
    for word, bit in product(range(a.base.shape[1]), range(64)):
        assert np.array_equal(a.bits(word, np.uint64(1 << bit)), b.bits(word, np.uint64(1 << bit)))


@settings(max_examples=100, deadline=None)
@given(clusters())
def test_shared_sets_read_like_sparse_rows(objects: list[Obj]) -> None:
    cluster = load(objects)
    with shared_from(1):
        shared = Analysis(cluster)
    with shared_from(10**9):
        sparse = Analysis(cluster)
    assert len(sparse.ingress.set_indptr) == len(sparse.egress.set_indptr) == 1
    for direction in Direction:
        assert_same_side(shared.side(direction), sparse.side(direction))


@settings(max_examples=80, deadline=None)
@given(clusters(named_ports=True))
def test_engine_with_shared_sets_agrees_with_reference(objects: list[Obj]) -> None:
    with shared_from(1):
        check_against_reference(objects)


@settings(max_examples=80, deadline=None)
@given(policy_changes())
def test_updated_with_shared_sets_answers_like_a_fresh_analysis(
        change: tuple[list[Obj], list[Obj]]) -> None:
    old_objects, new_objects = change
    old, new = _load(old_objects), _load(new_objects)
    with shared_from(1):
        updated = Analysis(old).updated(new)
    assert_same_answers(updated, Analysis(new))
    with shared_from(1):
        assert_same_answers(updated, Analysis(new))


def test_a_large_selection_is_stored_once() -> None:
    """Two profiles allowing the same large class set share it instead of repeating it."""
    objects: list[Obj] = []
    for i in range(6):
        objects.append(pod("x", f"p{i}", {"app": f"a{i}", "tier": "t"}, [], f"10.0.0.{i + 1}"))
    for i in range(2):
        objects.append(netpol("x", f"in{i}", {
            "podSelector": {"matchLabels": {"app": f"a{i}"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "t"}}}]},
                        {"from": [{"podSelector": {"matchLabels": {"app": "a5"}}}],
                         "ports": [{"port": 80}]}]}))
    with shared_from(3):
        a = Analysis(_load(objects))
    side = a.ingress
    assert a.classes.n_pod_classes == 4  # p0, p1, p5 and the rest
    assert len(side.set_indptr) == 2  # one set, of the tier=t classes, for both profiles
    assert int((side.shared >= 0).sum()) == 2
    with shared_from(10**9):
        assert_same_side(side, Analysis(_load(objects)).ingress)
