"""Re-analysis after pods change (and nothing else): pods that join peer classes already there.

Everything the engine computes is per peer class (`policy.classes`), so a pod added, removed,
relabelled or given an address changes nothing but the endpoints and which class each belongs
to, as long as every changed pod lands in a class that exists and no class is left empty. A
changed pod's class is found through a *twin*: a pod of the previous version with the same
namespace, labels, hostNetwork and container ports (so the same label group, selectability and
named-port numbers), whose address lies in exactly the same ipBlocks the policies mention; the
pod's class is the twin's. The profiles, rows and compiled policies are kept as they are; only
the classes (`class_of`, representatives), the endpoints (externals included: their ranges
leave pod addresses out) and the named-port table are made again.

`update_pods` returns the new analysis, or why it cannot (then `Analysis.updated` analyses from
scratch): a changed pod with no twin, a class left with no pod, the external ranges changed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from policy.addresses import AddressSet
from policy.classes import PeerClasses, address_vectors, inside
from policy.cluster import ClusterState, PodInfo
from policy.externals import external_peers
from policy.rules import Endpoints

if TYPE_CHECKING:
    from policy.engine import Analysis

TwinKey = tuple[str, frozenset[tuple[str, str]], bool, tuple[object, ...]]


def _twin_key(pod: PodInfo) -> TwinKey:
    return pod.namespace, frozenset(pod.labels.items()), pod.host_network, tuple(pod.ports)


def update_pods(old: Analysis, cluster: ClusterState) -> Analysis | str:
    """The analysis of `cluster`, whose policies and namespaces are `old`'s, or why not."""
    externals = external_peers(cluster)
    if [e.key for e in externals] != [e.key for e in old.endpoints.externals]:
        return "the pods changed the external address ranges"
    before = old.endpoints.pods
    n_before = len(before)
    old_class = old.classes.class_of
    by_key = old.endpoint_index  # key -> endpoint: pods below n_before
    n = len(cluster.pods)
    keys = [p.key for p in cluster.pods]
    class_of = np.empty(n + len(externals), dtype=np.int64)
    changed = []
    for i, p in enumerate(cluster.pods):
        j = by_key.get(keys[i], n_before)
        if j < n_before and (before[j] is p or before[j] == p):
            class_of[i] = old_class[j]
        else:
            changed.append(i)
    twins: dict[TwinKey, list[int]] = {}
    if changed:
        wanted = {_twin_key(cluster.pods[i]) for i in changed}
        labels = [dict(key[1]) for key in wanted]
        for j, p in enumerate(before):  # cheap tests first: 150,000 pods at scale
            if p.labels in labels:
                key = _twin_key(p)
                if key in wanted:
                    twins.setdefault(key, []).append(j)
    blocks = old.compiler.blocks
    for i in changed:
        pod = cluster.pods[i]
        cls = _twin_class(old, pod, twins.get(_twin_key(pod), []), blocks)
        if cls is None:
            return f"pod {pod.key} needs a peer class of its own"
        class_of[i] = cls
    pod_classes = old.classes.n_pod_classes
    class_of[n:] = np.arange(pod_classes, pod_classes + len(externals))
    present = np.zeros(old.classes.count, dtype=bool)
    present[class_of] = True
    if not present.all():
        return "a peer class lost its last pod"
    representative = np.empty(old.classes.count, dtype=np.int64)
    representative[class_of[::-1]] = np.arange(len(class_of) - 1, -1, -1)  # first endpoint
    classes = PeerClasses(class_of, representative, pod_classes, old.classes.selectable)
    endpoints = Endpoints(cluster.pods, externals)
    index = dict(zip(keys, range(n), strict=True))
    index.update((e.key, n + k) for k, e in enumerate(externals))
    # Named ports are resolved per class, on each class's container ports: the same classes,
    # the same table (`old.named`).
    return old.with_pods(cluster, endpoints, classes, index,
                         replace(old.ingress, classes=classes),
                         replace(old.egress, classes=classes))


def _twin_class(old: Analysis, pod: PodInfo, twins: list[int],
                blocks: list[AddressSet]) -> int | None:
    """The class of a twin whose address is in the same ipBlocks as the pod's, if any."""
    if not twins:
        return None
    family = old.family
    addresses = [pod.address_in(family)] + [old.endpoints.pods[j].address_in(family)
                                            for j in twins]
    v4, v6 = address_vectors(addresses)
    same = np.ones(len(twins), dtype=bool)
    for block in blocks:
        held = inside(block, v4, v6)
        same &= held[1:] == held[0]
        if not same.any():
            return None
    return int(old.classes.class_of[twins[int(np.argmax(same))]])
