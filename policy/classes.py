"""Peer classes: endpoints that no policy can tell apart, so the engine computes once for each.

Two pods are in one class when every selector the policies use selects both or neither (label
groups with the same selector signature), both or neither are selectable (hostNetwork pods are
not), every ipBlock the policies mention holds both addresses or neither, and every named port
the policies mention resolves to the same number on both. Everything the engine computes for a
pod, as subject or as peer, is then the same for every pod of its class. Each external peer
(`policy.externals`) is a class of its own, after the pod classes.

Exact, never sampled: the partition is computed from the policies' own selectors, address
blocks and port names, and `tests/test_classes.py` checks against the per-pod reference
evaluator that pods of a class are really interchangeable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from policy.addresses import AddressSet, Family, IPAddress
from policy.cluster import PodInfo
from policy.ports import Protocol

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
NamedPort = tuple[Protocol, str]
_PORT_FIELDS = attrgetter("name", "protocol._value_", "port")  # a ServedPort as a plain tuple


@dataclass(frozen=True, eq=False)
class PeerClasses:
    """A partition of the endpoints (pods, then externals) into classes."""

    class_of: IntArray  # endpoint -> class
    representative: IntArray  # class -> its first endpoint
    n_pod_classes: int  # classes below this are pod classes; the rest are externals, in order
    selectable: BoolArray  # class -> can a selector pick it (no hostNetwork)

    @property
    def count(self) -> int:
        return len(self.representative)

    @cached_property
    def _members(self) -> tuple[IntArray, IntArray]:
        order = np.argsort(self.class_of, kind="stable")
        bounds = np.searchsorted(self.class_of[order], np.arange(self.count + 1))
        return order, bounds

    def members(self, cls: int) -> IntArray:
        """The endpoints of one class, ascending."""
        order, bounds = self._members
        return order[bounds[cls]:bounds[cls + 1]]

    def sizes(self) -> IntArray:
        return np.bincount(self.class_of, minlength=self.count)

    def expand(self, classes: IntArray) -> BoolArray:
        """(endpoint,) booleans: the endpoints of the given classes."""
        mask = np.zeros(self.count, dtype=bool)
        mask[classes] = True
        out: BoolArray = mask[self.class_of]
        return out


def address_vectors(
    addresses: Sequence[IPAddress | None],
) -> tuple[IntArray, list[tuple[int, int]]]:
    """IPv4 addresses as one int vector (-1 where none), IPv6 as (position, int) pairs."""
    v4 = np.array([int(a) if a is not None and a.version == 4 else -1 for a in addresses],
                  dtype=np.int64)
    v6 = [(j, int(a)) for j, a in enumerate(addresses) if a is not None and a.version == 6]
    return v4, v6


def inside(block: AddressSet, v4: IntArray, v6: list[tuple[int, int]]) -> BoolArray:
    """Which of the addresses lie in `block`."""
    out = np.zeros(len(v4), dtype=bool)
    for lo, hi in block.intervals(Family.IPV4):
        out |= (v4 >= lo) & (v4 <= hi)
    ranges = block.intervals(Family.IPV6)
    for j, n in v6:
        out[j] = any(lo <= n <= hi for lo, hi in ranges)
    return out


def entry_ranges(starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
    """For ranges [starts[k], ends[k]): every position in them, and the k it belongs to."""
    lengths = ends - starts
    which = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return which, np.repeat(starts, lengths) + offsets


def sorted_unique(values: IntArray) -> IntArray:
    """The distinct values, ascending: a sort and a neighbour test (np.unique hashes first,
    which is slower on the millions of ids the engine dedupes)."""
    out = np.sort(values)
    if len(out) > 1:
        keep = np.empty(len(out), dtype=bool)
        keep[0] = True
        np.not_equal(out[1:], out[:-1], out=keep[1:])
        out = out[keep]
    return out


def build_classes(
    pods: Sequence[PodInfo],
    n_externals: int,
    group_of: IntArray,
    selections: Sequence[IntArray],
    blocks: Sequence[AddressSet],
    named: Sequence[NamedPort],
    pod_addresses: Sequence[IPAddress | None],
) -> PeerClasses:
    """Partition pods by (selector signature of their label group, selectability, ipBlock
    membership of their address, named-port numbers); `selections` are the group sets of every
    selector the policies use."""
    n = len(pods)
    columns = [_group_signature(group_of, selections)[group_of] if n else np.zeros(0, np.int64),
               np.array([not p.host_network for p in pods], dtype=np.int64)]
    if blocks and n:
        v4, v6 = address_vectors(pod_addresses)
        bits = np.stack([inside(b, v4, v6) for b in blocks], axis=1)
        columns.extend(np.packbits(bits, axis=1).astype(np.int64).T)
    if named and n:
        # Replicas share their container ports: each distinct set is resolved once (row 0 is
        # for pods without ports), and the pods gather their set's row.
        table: list[list[int]] = [[-1] * len(named)]
        by_ports: dict[object, int] = {}
        row_of: list[int] = []
        for pod in pods:
            if not pod.ports:
                row_of.append(0)
                continue
            key = tuple(map(_PORT_FIELDS, pod.ports))  # plain tuples hash faster
            row = by_ports.get(key)
            if row is None:
                row = by_ports[key] = len(table)
                table.append([-1 if (port := pod.resolve_named_port(name, proto)) is None
                              else port for proto, name in named])
            row_of.append(row)
        numbers = np.array(table, dtype=np.int64)[np.array(row_of, dtype=np.int64)]
        columns.extend(numbers.T)
    if n:
        keys = np.stack(columns, axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(first, kind="stable")  # number classes by first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        pod_class = rank[inverse]
        first = first[order]
    else:
        pod_class = np.zeros(0, dtype=np.int64)
        first = np.zeros(0, dtype=np.int64)
    c = len(first)
    class_of = np.concatenate([pod_class, np.arange(c, c + n_externals, dtype=np.int64)])
    representative = np.concatenate([first, np.arange(n, n + n_externals, dtype=np.int64)])
    selectable = np.zeros(c + n_externals, dtype=bool)
    selectable[:c] = [not pods[int(i)].host_network for i in first]
    return PeerClasses(class_of.astype(np.int64), representative.astype(np.int64), c, selectable)


def _group_signature(group_of: IntArray, selections: Sequence[IntArray]) -> IntArray:
    """group -> signature id, equal for groups that every selection holds alike."""
    groups = int(group_of.max()) + 1
    if not selections:
        return np.zeros(groups, dtype=np.int64)
    lengths = np.array([len(s) for s in selections], dtype=np.int64)
    member = np.concatenate(selections)
    feature = np.repeat(np.arange(len(selections), dtype=np.int64), lengths)
    order = np.lexsort((feature, member))
    member, feature = member[order], feature[order]
    bounds = np.searchsorted(member, np.arange(groups + 1))
    signature: dict[bytes, int] = {}
    out = np.empty(groups, dtype=np.int64)
    for g in range(groups):
        out[g] = signature.setdefault(feature[bounds[g]:bounds[g + 1]].tobytes(), len(signature))
    return out
