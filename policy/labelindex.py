"""Selector matching at cluster scale: an inverted index of pod labels, per namespace.

Pods with the same namespace and labels form one *label group*; every selector answer is a set
of groups. The index maps each (key, value) and each key of a namespace to its groups, so a
`matchLabels` selector is an intersection of a few small sets and a selector never looks at
pods it cannot match; namespaces are indexed the same way for namespaceSelectors.
`policy.classes` refines groups into peer classes; `policy.rules` turns
group sets into class sets.

Semantics (`metav1.LabelSelector`): `matchLabels` and every `matchExpressions` requirement are
ANDed; NotIn and DoesNotExist also match pods without the key. A peer with only a podSelector
means pods of the policy's own namespace; with only a namespaceSelector, every pod of the
selected namespaces; with both, the pods matching the podSelector in those namespaces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from policy.cluster import PodInfo
from policy.selectors import LabelSelector, Operator

IntArray = npt.NDArray[np.int64]
SelectorKey = tuple[object, object, str | None]


class _Index:
    """Labelled items (the label groups of one namespace, or the namespaces), indexed by label
    pair and by label key."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.by_pair: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
        self.by_key: defaultdict[str, set[int]] = defaultdict(set)

    def add(self, group: int, labels: Iterable[tuple[str, str]]) -> None:
        self.groups.add(group)
        by_pair, by_key = self.by_pair, self.by_key
        for pair in labels:
            by_pair[pair].add(group)
            by_key[pair[0]].add(group)

    def match(self, selector: LabelSelector) -> set[int]:
        result: set[int] | None = None
        for key, value in selector.match_labels.items():
            hit = self.by_pair.get((key, value), set())
            result = hit if result is None else result & hit
            if not result:
                return set()
        for req in selector.match_expressions:
            if req.operator == Operator.EXISTS:
                hit = self.by_key.get(req.key, set())
            elif req.operator == Operator.DOES_NOT_EXIST:
                hit = self.groups - self.by_key.get(req.key, set())
            else:
                named = set().union(*(self.by_pair.get((req.key, v), set()) for v in req.values))
                hit = named if req.operator == Operator.IN else self.groups - named
            result = hit if result is None else result & hit
            if not result:
                return set()
        return set(self.groups) if result is None else result


class LabelIndex:
    """Label groups of a cluster's pods and the selector answers over them, cached."""

    def __init__(self, pods: Sequence[PodInfo], namespaces: Mapping[str, Mapping[str, str]]
                 ) -> None:
        self.namespace_labels = namespaces
        keys: dict[tuple[str, frozenset[tuple[str, str]]], int] = {}
        self.group_of: IntArray = np.array(  # pod -> label group
            [keys.setdefault((pod.namespace, frozenset(pod.labels.items())), len(keys))
             for pod in pods], dtype=np.int64)
        self.count = len(keys)
        self._namespaces: dict[str, _Index] = {}
        for (ns, labels), group in keys.items():
            self._namespaces.setdefault(ns, _Index()).add(group, labels)
        self._names = list(namespaces)
        self._by_labels = _Index()
        for i, ns_labels in enumerate(namespaces.values()):
            self._by_labels.add(i, tuple(ns_labels.items()))
        self._cache: dict[SelectorKey, IntArray] = {}
        self._ns_cache: dict[object, list[str]] = {}

    def key(self, pod_selector: LabelSelector | None, namespace_selector: LabelSelector | None,
            own_namespace: str) -> SelectorKey:
        """The identity of a selection: equal keys select the same groups."""
        return (
            None if pod_selector is None else selector_key(pod_selector),
            None if namespace_selector is None else selector_key(namespace_selector),
            own_namespace if namespace_selector is None else None,
        )

    def groups(self, pod_selector: LabelSelector | None,
               namespace_selector: LabelSelector | None, own_namespace: str,
               key: SelectorKey | None = None) -> IntArray:
        """Sorted group ids: a policy's podSelector (no namespaceSelector), or a peer's. `key`:
        the selection's `key`, when the caller has it already."""
        if key is None:
            key = self.key(pod_selector, namespace_selector, own_namespace)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        found: set[int] = set()
        for ns in self._selected_namespaces(namespace_selector, own_namespace):
            index = self._namespaces.get(ns)
            if index is None:
                continue
            found |= index.groups if pod_selector is None else index.match(pod_selector)
        result = np.array(sorted(found), dtype=np.int64)
        self._cache[key] = result
        return result

    def _selected_namespaces(self, selector: LabelSelector | None, own: str) -> list[str]:
        if selector is None:
            return [own]
        key = selector_key(selector)
        hit = self._ns_cache.get(key)
        if hit is None:
            hit = [self._names[i] for i in sorted(self._by_labels.match(selector))]
            self._ns_cache[key] = hit
        return hit


def selector_key(selector: LabelSelector) -> object:
    """A hashable identity of a selector: equal keys match the same labels (`matchLabels` and
    requirements sorted, so their order does not matter)."""
    exprs = selector.match_expressions
    labels = tuple(sorted(selector.match_labels.items()))
    if not exprs:
        return labels, ()
    return labels, tuple(sorted((r.key, r.operator, tuple(sorted(r.values))) for r in exprs))
