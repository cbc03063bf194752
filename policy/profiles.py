"""Building one side of the engine's answer: classes grouped into profiles, each profile's row.

The classes that see the same rules of a direction (for ingress also the same numbers for the
named ports, which resolve on the subject) share a profile, numbered by that key; only a new
key gets its row built. A row is built from its rules' parts (a sorted class set and the words
allowed toward it): rules without peers go to the base, the largest constant part over at
least `SHARED_MIN` classes becomes the profile's shared set (stored once for all profiles that
use that same set: toward whole namespaces, such rows would otherwise repeat thousands of
entries), the rest is merged into the sparse row. All new rows are laid out in one pass at the
end. `policy.sides` reads the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

import numpy as np

from policy.classes import PeerClasses
from policy.cluster import Direction
from policy.namedports import NamedPorts
from policy.portatoms import PortAtoms, Words
from policy.rules import BoolArray, CompiledPolicy, CompiledRule, IntArray, NamedPort
from policy.sides import UNRESTRICTED, Side

SHARED_MIN = 128  # classes a part needs to be stored as a shared set
Part = tuple[IntArray, Words]  # sorted classes, and one (word,) row for all or one per class


def build_side(direction: Direction, policies: Sequence[CompiledPolicy], classes: PeerClasses,
               atoms: PortAtoms, named: NamedPorts,
               tick: Callable[[float], None] | None = None) -> Side:
    """Group the classes into profiles and build every profile's row."""
    count = classes.count
    rules_of: list[list[CompiledRule]] = [[] for _ in range(count)]
    isolating: list[list[CompiledPolicy]] = [[] for _ in range(count)]
    for cp in policies:
        if direction not in cp.policy.policy_types:
            continue
        rules = cp.rules[direction]
        for c in cp.subject_classes.tolist():
            isolating[c].append(cp)
            rules_of[c].extend(rules)
    profiles = _Profiles(direction, classes, atoms, named, None)
    profile_of = np.full(count, UNRESTRICTED, dtype=np.int64)
    for c in range(classes.n_pod_classes):
        if isolating[c]:
            profile_of[c] = profiles.profile(c, rules_of[c])
        if tick is not None and c % 4000 == 0:
            tick(c / classes.n_pod_classes)
    return profiles.side(profile_of, tuple(tuple(r) for r in rules_of),
                         tuple(tuple(p) for p in isolating))


def update_side(side: Side, changed: Mapping[int, tuple[list[CompiledRule], list[CompiledPolicy]]],
                atoms: PortAtoms, named: NamedPorts) -> Side:
    """`side` with new rules for some classes: their profiles found again (an existing one when
    the same rules give the same key), rows built only for profiles not seen before. Profiles no
    class uses any more are kept: nothing reads them."""
    profiles = _Profiles(side.direction, side.classes, atoms, named, side)
    profile_of = side.profile_of_class.copy()
    class_rules, class_isolating = list(side.class_rules), list(side.class_isolating)
    for c, (rules, isolating) in changed.items():
        class_rules[c], class_isolating[c] = tuple(rules), tuple(isolating)
        profile_of[c] = profiles.profile(c, rules) if isolating else UNRESTRICTED
    return profiles.side(profile_of, tuple(class_rules), tuple(class_isolating))


class _Profiles:
    """Numbering profiles by key and building the rows of new ones, from scratch or on top of
    an existing side's (`before`)."""

    def __init__(self, direction: Direction, classes: PeerClasses, atoms: PortAtoms,
                 named: NamedPorts, before: Side | None) -> None:
        self.direction = direction
        self.classes = classes
        self.atoms = atoms
        self.named = named
        self.before = before
        self.keys: dict[object, int] = {} if before is None else dict(before.keys)
        self.members = [-1] if before is None else list(before.members)
        self.set_keys: dict[bytes, int] = {} if before is None else dict(before.set_keys)
        self.sets_before = 0 if before is None else len(before.set_indptr) - 1
        self._set_of: dict[int, tuple[IntArray, int]] = {}  # id(array) -> (array, set)
        self.rows = _RowBuilder(direction, atoms, named)
        w = atoms.words
        self.base: list[Words] = [] if before else [atoms.to_words(atoms.all_mask)]
        self.shared: list[int] = [] if before else [-1]
        self.shared_words: list[Words] = [] if before else [np.zeros(w, dtype=np.uint64)]
        self.lengths: list[int] = [] if before else [0]  # entries per new profile
        self.parts: list[Part] = []  # the entries of the new profiles, in order
        self.sets: list[IntArray] = []  # the new shared sets

    def profile(self, c: int, rules: Sequence[CompiledRule]) -> int:
        ids = tuple(r.id for r in rules)
        key: object = ids
        masks: tuple[int, ...] = ()
        if self.direction is Direction.INGRESS:  # named ports resolve on the subject itself
            masks = tuple(self.named.mask(c, r.named) for r in rules if r.named)
            key = (ids, masks)
        p = self.keys.get(key)
        if p is None:
            p = self.keys[key] = len(self.members)
            self.members.append(c)
            base, shared, parts = self.rows.row(rules, masks)
            self.base.append(base)
            if shared is None:
                self.shared.append(-1)
                self.shared_words.append(np.zeros(self.atoms.words, dtype=np.uint64))
            else:
                self.shared.append(self._set(shared[0]))
                self.shared_words.append(shared[1])
            self.parts.extend(parts)
            self.lengths.append(sum(len(part[0]) for part in parts))
        return p

    def _set(self, classes: IntArray) -> int:
        """The shared set of these classes: one already there, or a new one."""
        hit = self._set_of.get(id(classes))
        if hit is None:
            key = classes.tobytes()
            s = self.set_keys.get(key)
            if s is None:
                s = self.set_keys[key] = self.sets_before + len(self.sets)
                self.sets.append(classes)
            hit = self._set_of[id(classes)] = classes, s
        return hit[1]

    def side(self, profile_of: IntArray, class_rules: tuple[tuple[CompiledRule, ...], ...],
             class_isolating: tuple[tuple[CompiledPolicy, ...], ...]) -> Side:
        """A Side: the rows of `before`, then the new ones."""
        w = self.atoms.words
        b = self.before
        empty, no_words = np.zeros(0, dtype=np.int64), np.zeros((0, w), dtype=np.uint64)
        base = np.array(self.base, dtype=np.uint64).reshape(-1, w)
        shared = np.array(self.shared, dtype=np.int64)
        shared_words = np.array(self.shared_words, dtype=np.uint64).reshape(-1, w)
        lengths = np.array(self.lengths, dtype=np.int64)
        set_lengths = np.array([len(s) for s in self.sets], dtype=np.int64)
        if b is None:
            indptr = np.concatenate([[0], np.cumsum(lengths)])
            set_indptr = np.concatenate([[0], np.cumsum(set_lengths)])
            indices, data = _lay_out(self.parts, w)
            set_indices = np.concatenate([empty, *self.sets])
        else:
            base = np.concatenate([b.base, base])
            shared = np.concatenate([b.shared, shared])
            shared_words = np.concatenate([b.shared_words, shared_words])
            indptr = np.concatenate([b.indptr, b.indptr[-1] + np.cumsum(lengths)])
            set_indptr = np.concatenate([b.set_indptr, b.set_indptr[-1] + np.cumsum(set_lengths)])
            indices, data = _lay_out([(b.indices, b.data), *self.parts], w)
            set_indices = np.concatenate([b.set_indices, *self.sets])
        if not len(indices):
            indices, data = empty, no_words
        return Side(
            self.direction, self.classes, profile_of, base, indptr.astype(np.int64), indices,
            data, shared, shared_words, set_indptr.astype(np.int64),
            set_indices.astype(np.int64), class_rules, class_isolating, self.keys,
            tuple(self.members), self.set_keys,
        )


class _RowBuilder:
    """One profile's row from its rules: the base mask, the shared part, the sparse parts."""

    def __init__(self, direction: Direction, atoms: PortAtoms, named: NamedPorts) -> None:
        self.direction = direction
        self.atoms = atoms
        self.named = named
        self._words: dict[int, Words] = {}
        self._defined: dict[tuple[NamedPort, ...], tuple[BoolArray, IntArray]] = {}
        # (id(peer classes), all peers, named ports) -> (the part, the peer classes: kept
        # alive so that the id is not reused while the builder lives)
        self._named_parts: dict[tuple[int, bool, tuple[NamedPort, ...]],
                                tuple[Part, IntArray]] = {}

    def words(self, mask: int) -> Words:
        hit = self._words.get(mask)
        if hit is None:
            hit = self._words[mask] = self.atoms.to_words(mask)
        return hit

    def defined(self, named: tuple[NamedPort, ...], table: Words) -> tuple[BoolArray, IntArray]:
        """Which classes give these named ports a number: as a mask and as class ids."""
        hit = self._defined.get(named)
        if hit is None:
            defined: BoolArray = np.any(table, axis=1)
            hit = self._defined[named] = defined, np.flatnonzero(defined).astype(np.int64)
        return hit

    def named_part(self, rule: CompiledRule) -> Part:
        """An egress rule's named ports, resolved on each peer class that defines them: once
        per distinct peer classes and named ports (rules of many profiles share both)."""
        key = (id(rule.peer_classes), rule.all_peers, rule.named)
        hit = self._named_parts.get(key)
        if hit is None:
            table = self.named.words(rule.named)
            defined, where = self.defined(rule.named, table)
            if not rule.all_peers:
                where = rule.peer_classes[defined[rule.peer_classes]]
            hit = self._named_parts[key] = (where, table[where]), rule.peer_classes
        return hit[0]

    def row(self, rules: Sequence[CompiledRule], masks: tuple[int, ...]
            ) -> tuple[Words, Part | None, list[Part]]:
        """(base, shared part or None, disjoint ascending parts). `masks`: for ingress, what
        the subject gives to each rule's named ports, in the order of the rules with some."""
        base = 0
        parts: list[Part] = []
        ingress = self.direction is Direction.INGRESS
        k = 0
        shared: Part | None = None
        for rule in rules:
            fixed = rule.fixed
            if ingress and rule.named:
                fixed |= masks[k]
                k += 1
            if rule.all_peers:
                base |= fixed
            elif fixed:
                part = (rule.peer_classes, self.words(fixed))
                if len(part[0]) >= SHARED_MIN and (shared is None or len(part[0]) > len(shared[0])):
                    if shared is not None:
                        parts.append(shared)
                    shared = part
                else:
                    parts.append(part)
            if not ingress and rule.named:  # resolve on each peer
                parts.append(self.named_part(rule))
        return self.words(base), shared, _merge(parts, self.atoms.words)


def _merge(parts: list[Part], w: int) -> list[Part]:
    """A row's parts made disjoint and ascending: as they are when they already are (rules
    toward different apps), else merged into one, ORing the words of a class in several."""
    parts = [p for p in parts if len(p[0])]
    if len(parts) < 2:
        return parts
    parts.sort(key=lambda p: int(p[0][0]))
    if all(int(a[0][-1]) < int(b[0][0]) for a, b in pairwise(parts)):
        return parts
    idx = np.concatenate([p[0] for p in parts])
    words = np.empty((len(idx), w), dtype=np.uint64)
    end = 0
    for part_idx, part_words in parts:  # a (word,) row is broadcast over its part's classes
        start, end = end, end + len(part_idx)
        words[start:end] = part_words
    order = np.argsort(idx, kind="stable")
    idx, words = idx[order], words[order]
    first = np.empty(len(idx), dtype=bool)
    first[0] = True
    np.not_equal(idx[1:], idx[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return [(idx[starts], np.bitwise_or.reduceat(words, starts, axis=0))]


def _lay_out(parts: list[Part], w: int) -> tuple[IntArray, Words]:
    """The parts one after the other: every class id and every word row, in one pass each."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, w), dtype=np.uint64)
    lengths = np.fromiter((len(p[0]) for p in parts), dtype=np.int64, count=len(parts))
    indices: IntArray = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
    zero = np.zeros(w, dtype=np.uint64)
    data: Words = np.repeat(np.stack([p[1] if p[1].ndim == 1 else zero for p in parts]),
                            lengths, axis=0)
    ends = np.cumsum(lengths).tolist()
    for (_, words), end, n in zip(parts, ends, lengths.tolist(), strict=True):
        if words.ndim == 2 and n:
            data[end - n:end] = words
    return indices, data
