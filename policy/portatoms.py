"""Port atoms: the coarsest partition of (protocol, port) space that every policy port respects.

Every port range a rule can allow (numbers, endPort ranges, whole protocols, and the numbers
named ports resolve to) starts and ends on an atom boundary, so a set of allowed ports is
exactly a set of atoms: a bit mask. The engine stores masks as rows of uint64 words so numpy
can OR and AND them for many peers at once; `to_ports` turns a mask back into a `PortSet`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from policy.ports import MAX_PORT, MIN_PORT, PortSet, Protocol

Words = npt.NDArray[np.uint64]


class PortAtoms:
    def __init__(self, ranges: Iterable[tuple[Protocol, int, int]]) -> None:
        cuts: dict[Protocol, set[int]] = {p: {MIN_PORT, MAX_PORT + 1} for p in Protocol}
        for proto, lo, hi in ranges:
            cuts[proto].update((lo, hi + 1))
        self.atoms: list[tuple[Protocol, int, int]] = []
        self._starts: dict[Protocol, list[int]] = {}
        self._first: dict[Protocol, int] = {}
        for proto in Protocol:
            bounds = sorted(cuts[proto])
            self._first[proto] = len(self.atoms)
            self._starts[proto] = bounds[:-1]
            self.atoms.extend((proto, lo, nxt - 1) for lo, nxt in pairwise(bounds))
        self.count = len(self.atoms)
        self.words = (self.count + 63) // 64
        self.all_mask = (1 << self.count) - 1

    def is_cut(self, protocol: Protocol, port: int) -> bool:
        """Does an atom of `protocol` start at `port`?"""
        starts = self._starts[protocol]
        k = bisect_right(starts, port) - 1
        return k >= 0 and starts[k] == port

    def index(self, protocol: Protocol, port: int) -> int:
        return self._first[protocol] + bisect_right(self._starts[protocol], port) - 1

    def mask_range(self, protocol: Protocol, lo: int, hi: int) -> int:
        first = self.index(protocol, lo)
        last = self.index(protocol, hi)
        return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)

    def mask(self, ports: PortSet) -> int:
        m = 0
        for proto, lo, hi in ports.items():
            m |= self.mask_range(proto, lo, hi)
        return m

    def to_ports(self, mask: int) -> PortSet:
        by_proto: dict[Protocol, list[tuple[int, int]]] = {p: [] for p in Protocol}
        i = 0
        while mask:
            if mask & 1:
                proto, lo, hi = self.atoms[i]
                by_proto[proto].append((lo, hi))
            mask >>= 1
            i += 1
        return PortSet(by_proto)

    def to_words(self, mask: int) -> Words:
        return np.array(
            [(mask >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(self.words)], dtype=np.uint64
        )

    def from_words(self, words: Words) -> int:
        m = 0
        for w in range(self.words - 1, -1, -1):
            m = (m << 64) | int(words[w])
        return m

    def word_bit(self, protocol: Protocol, port: int) -> tuple[int, np.uint64]:
        """Which word and bit hold the atom of one port, for probing a whole matrix at once."""
        i = self.index(protocol, port)
        return i // 64, np.uint64(1 << (i % 64))
