"""The semantic difference between two versions of a cluster: which connections change.

Two `ClusterState`s are analysed on their own; endpoints (pods, workloads standing for pods,
external ranges) are matched by key (`namespace/name`, or the external's range). Endpoints in
only one version are listed as added or removed and not compared; for every ordered pair of
endpoints present in both, the ports added are `new - old` and the ports removed `old - new`.
Between two externals nothing is compared (no policy governs that traffic).

Each changed pair names what changed that bears on it:

- the policies, by key, that were added, removed or modified (compared by value, ignoring where
  they were written: file, line, rule lines) and that apply to the source's egress or the
  destination's ingress in either version: the policies `policy.explain` names as isolating
  either side (their rules are the matching ones), read once per endpoint and direction;
- the endpoints of the pair whose definition changed (labels, container ports, addresses,
  namespace labels): a pod relabelled changes what matches it without any policy changing.

Everything is sorted, so the result (and every format of it) is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from policy.cluster import ClusterState, Direction, PodInfo, Policy
from policy.engine import Analysis
from policy.errors import Location
from policy.explain import explain
from policy.ports import PortSet


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"


class FailOn(StrEnum):
    """`--fail-on`: which connection changes make a pipeline fail."""

    ADDED = "added"
    REMOVED = "removed"
    ANY = "any"


@dataclass(frozen=True)
class PolicyChange:
    """A NetworkPolicy that differs between the versions; `location` is where it is written
    in the new version (in the old one if it was removed)."""

    key: str
    change: ChangeKind
    location: Location


@dataclass(frozen=True)
class PairDiff:
    """One ordered (source, destination) pair whose allowed ports changed."""

    source: str
    destination: str
    added: PortSet  # allowed now, not before
    removed: PortSet  # allowed before, not now
    policies: tuple[PolicyChange, ...]  # changed policies that apply to this pair
    endpoints: tuple[str, ...]  # source and/or destination, if its definition changed


@dataclass(frozen=True)
class DiffResult:
    pairs: tuple[PairDiff, ...]  # sorted by (source, destination)
    endpoints_added: tuple[str, ...]
    endpoints_removed: tuple[str, ...]
    endpoints_modified: tuple[str, ...]  # present in both, defined differently
    policy_changes: tuple[PolicyChange, ...]  # every changed policy, sorted by key

    @property
    def added(self) -> tuple[PairDiff, ...]:
        """The pairs that gained some port."""
        return tuple(p for p in self.pairs if p.added)

    @property
    def removed(self) -> tuple[PairDiff, ...]:
        """The pairs that lost some port."""
        return tuple(p for p in self.pairs if p.removed)

    def is_empty(self) -> bool:
        """No connection changed (endpoints or policies may still have)."""
        return not self.pairs

    def fails(self, on: FailOn) -> bool:
        """Whether `--fail-on on` should fail: a connection was added, removed, or either."""
        if on is FailOn.ADDED:
            return bool(self.added)
        if on is FailOn.REMOVED:
            return bool(self.removed)
        return bool(self.pairs)


def semantic_diff(old: ClusterState, new: ClusterState) -> DiffResult:
    """Compare two versions of a cluster, connection by connection. The new version is analysed
    incrementally from the old one when only policies changed (`Analysis.updated`)."""
    before = Analysis(old)
    return diff_analyses(before, before.updated(new))


def diff_analyses(old: Analysis, new: Analysis) -> DiffResult:
    """`semantic_diff` for versions already analysed (each is analysed once; cheap to reuse)."""
    old_keys, new_keys = old.endpoints.keys(), new.endpoints.keys()
    common = sorted(set(old_keys) & set(new_keys))
    policy_changes = _policy_changes(old.cluster.policies, new.cluster.policies)
    modified = _modified_endpoints(old, new, common)
    changed = {c.key: c for c in policy_changes}
    applying = _Applying(old, new)
    pairs = [
        _pair_diff(src, dst, added, removed, applying, changed, modified)
        for src, dst, added, removed in _changed_cells(old, new, common)
    ]
    return DiffResult(
        pairs=tuple(sorted(pairs, key=lambda p: (p.source, p.destination))),
        endpoints_added=tuple(sorted(set(new_keys) - set(old_keys))),
        endpoints_removed=tuple(sorted(set(old_keys) - set(new_keys))),
        endpoints_modified=tuple(sorted(modified)),
        policy_changes=policy_changes,
    )


# -- cells -------------------------------------------------------------------------------------


def _changed_cells(
    old: Analysis, new: Analysis, common: list[str], block_rows: int = 256
) -> Iterable[tuple[str, str, PortSet, PortSet]]:
    """(source, destination, added, removed) for every common pair that changed."""
    if new.derived_from is not None and new.derived_from() is old:
        yield from _changed_cells_derived(old, new)
        return
    old_idx = np.array([_index(old, k) for k in common], dtype=np.int64)
    new_idx = np.array([_index(new, k) for k in common], dtype=np.int64)
    old_ext = [old.is_external(int(j)) for j in old_idx]
    memo: dict[tuple[bytes, bytes], tuple[PortSet, PortSet]] = {}
    for start in range(0, len(common), block_rows):
        stop = start + block_rows
        old_block = old.block(old_idx[start:stop])[:, old_idx]
        new_block = new.block(new_idx[start:stop])[:, new_idx]
        for r in range(old_block.shape[0]):
            i = start + r
            for j in range(len(common)):
                if old_ext[i] and old_ext[j]:
                    continue
                key = (old_block[r, j].tobytes(), new_block[r, j].tobytes())
                hit = memo.get(key)
                if hit is None:
                    before = old.atoms.to_ports(old.atoms.from_words(old_block[r, j]))
                    after = new.atoms.to_ports(new.atoms.from_words(new_block[r, j]))
                    hit = memo[key] = (after - before, before - after)
                if hit[0] or hit[1]:
                    yield common[i], common[j], hit[0], hit[1]


def _changed_cells_derived(old: Analysis, new: Analysis,
                           ) -> Iterable[tuple[str, str, PortSet, PortSet]]:
    """`_changed_cells` when `new` was updated from `old`: they share endpoints, atoms and
    classes, and a profile number means the same row in both, so only the rows of classes whose
    egress profile changed and the columns of classes whose ingress profile changed can differ;
    they are compared class by class, then expanded to the pods of each class."""
    classes = old.classes
    pod_classes = classes.n_pod_classes
    sources = np.flatnonzero(old.egress.profile_of_class != new.egress.profile_of_class)
    destinations = np.flatnonzero(old.ingress.profile_of_class != new.ingress.profile_of_class)
    cells: dict[tuple[int, int], tuple[PortSet, PortSet]] = {}
    for fixed, compute in ((sources, "rows"), (destinations, "columns")):
        if not len(fixed):
            continue
        if compute == "rows":
            before, after = old.class_block(fixed), new.class_block(fixed)
        else:
            before, after = old.class_block_to(fixed), new.class_block_to(fixed)
        for k, other in zip(*np.nonzero(np.any(before != after, axis=2)), strict=True):
            pair = ((int(fixed[k]), int(other)) if compute == "rows"
                    else (int(other), int(fixed[k])))
            if pair[0] >= pod_classes and pair[1] >= pod_classes:
                continue  # external to external is not a cell
            was = old.atoms.to_ports(old.atoms.from_words(before[k, other]))
            now = new.atoms.to_ports(new.atoms.from_words(after[k, other]))
            cells[pair] = (now - was, was - now)
    key = old.endpoints.key
    for (s, d), (added, removed) in cells.items():
        for i in classes.members(s).tolist():
            for j in classes.members(d).tolist():
                yield key(i), key(j), added, removed


def _index(analysis: Analysis, key: str) -> int:
    j = analysis.index(key)
    assert j is not None
    return j


# -- causes ------------------------------------------------------------------------------------


def _pair_diff(
    src: str,
    dst: str,
    added: PortSet,
    removed: PortSet,
    applying: _Applying,
    changed: dict[str, PolicyChange],
    modified: set[str],
) -> PairDiff:
    keys = applying.of(src, Direction.EGRESS) | applying.of(dst, Direction.INGRESS)
    policies = tuple(changed[k] for k in sorted(keys & changed.keys()))
    endpoints = tuple(sorted({src, dst} & modified))
    return PairDiff(src, dst, added, removed, policies, endpoints)


class _Applying:
    """The policies that apply to an endpoint's side in either version: those
    `policy.explain` names as isolating it (its matching rules belong to them), read once
    per endpoint and direction rather than explained again for every pair."""

    def __init__(self, old: Analysis, new: Analysis) -> None:
        self._analyses = (old, new)
        self._memo: dict[tuple[str, Direction], frozenset[str]] = {}

    def of(self, key: str, direction: Direction) -> frozenset[str]:
        hit = self._memo.get((key, direction))
        if hit is None:
            out: set[str] = set()
            for analysis in self._analyses:
                j = _index(analysis, key)
                if not analysis.is_external(j):
                    out |= {cp.policy.key for cp in analysis.side(direction).isolating[j]}
            hit = self._memo[(key, direction)] = frozenset(out)
        return hit


def applying_policies(analysis: Analysis, source: str, destination: str) -> set[str]:
    """The policies `policy.explain` names for a pair of one version: isolating either side,
    or holding a rule that matches the peer. (`semantic_diff` reads the same per endpoint.)"""
    why = explain(analysis, _index(analysis, source), _index(analysis, destination))
    out: set[str] = set()
    for side in (why.egress, why.ingress):
        out |= {p.key for p in side.isolating}
        out |= {m.policy.key for m in side.matches}
    return out


def _policy_changes(old: Iterable[Policy], new: Iterable[Policy]) -> tuple[PolicyChange, ...]:
    before = {p.key: p for p in old}
    after = {p.key: p for p in new}
    out = []
    for key in sorted(before.keys() | after.keys()):
        b, a = before.get(key), after.get(key)
        if b is None and a is not None:
            out.append(PolicyChange(key, ChangeKind.ADDED, a.location))
        elif a is None and b is not None:
            out.append(PolicyChange(key, ChangeKind.REMOVED, b.location))
        elif a is not None and b is not None and _bare_policy(a) != _bare_policy(b):
            out.append(PolicyChange(key, ChangeKind.MODIFIED, a.location))
    return tuple(out)


def _bare_policy(policy: Policy) -> Policy:
    """The policy without where it was written, so a reformat or a move compares equal."""
    return dataclasses.replace(
        policy,
        location=Location(),
        ingress=tuple(dataclasses.replace(r, line=None) for r in policy.ingress),
        egress=tuple(dataclasses.replace(r, line=None) for r in policy.egress),
    )


def _modified_endpoints(old: Analysis, new: Analysis, common: list[str]) -> set[str]:
    """Common pod endpoints whose pod (labels, ports, addresses, kind) or namespace labels
    differ. Externals are matched by their range, so a common external is the same range."""
    out = set()
    old_ns, new_ns = old.cluster.namespaces, new.cluster.namespaces
    for key in common:
        i, j = _index(old, key), _index(new, key)
        if old.is_external(i) or new.is_external(j):
            continue
        a, b = old.endpoints.pods[i], new.endpoints.pods[j]
        if _bare_pod(a) != _bare_pod(b) or dict(old_ns.get(a.namespace, {})) != dict(
            new_ns.get(b.namespace, {})
        ):
            out.add(key)
    return out


def _bare_pod(pod: PodInfo) -> PodInfo:
    return dataclasses.replace(pod, location=Location(), labels=dict(pod.labels))
