"""One direction of the engine's answer: each class's profile and each profile's row.

A *profile* is what the classes that see exactly the same rules of one direction share (for
ingress also the same numbers for the named ports, which resolve on the subject). Its row says
which port atoms it allows toward each class: a `base` mask toward every endpoint, from rules
without peers, ORed with a sparse row over classes (CSR), from rules with peers. Profile 0 is
UNRESTRICTED: the pods no policy of the direction selects, and the externals. `policy.engine`
builds both sides and combines them into cells; this module only builds and reads one side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Generic, TypeVar, overload

import numpy as np

from policy.classes import PeerClasses, entry_ranges
from policy.cluster import Direction
from policy.portatoms import PortAtoms, Words
from policy.rules import BoolArray, CompiledPolicy, CompiledRule, Endpoints, IntArray, NamedPort
from policy.rules import named_mask as _named_mask

UNRESTRICTED = 0  # profile index of "not isolated": every peer, every port
T = TypeVar("T")


class PerEndpoint(Sequence[tuple[T, ...]], Generic[T]):
    """A per-class tuple seen per endpoint (externals have none)."""

    def __init__(self, per_class: Sequence[tuple[T, ...]], class_of: IntArray) -> None:
        self._per_class = per_class
        self._class_of = class_of

    def __len__(self) -> int:
        return len(self._class_of)

    @overload
    def __getitem__(self, j: int) -> tuple[T, ...]: ...
    @overload
    def __getitem__(self, j: slice) -> Sequence[tuple[T, ...]]: ...
    def __getitem__(self, j: int | slice) -> tuple[T, ...] | Sequence[tuple[T, ...]]:
        if isinstance(j, slice):
            return [self._per_class[int(c)] for c in self._class_of[j]]
        return self._per_class[int(self._class_of[j])]


@dataclass(frozen=True, eq=False)
class Side:
    """One direction's answer: each class's profile, and each profile's row over classes."""

    direction: Direction
    classes: PeerClasses
    profile_of_class: IntArray  # class -> profile; externals are UNRESTRICTED
    base: Words  # profile x word: allowed toward every endpoint
    indptr: IntArray  # profile -> its entries, CSR
    indices: IntArray  # entry -> class, ascending within a profile
    data: Words  # entry x word
    class_rules: tuple[tuple[CompiledRule, ...], ...]  # class -> the rules that apply to it
    class_isolating: tuple[tuple[CompiledPolicy, ...], ...]  # class -> policies isolating it
    keys: Mapping[object, int]  # profile key -> profile, to find profiles again on an update
    members: tuple[int, ...]  # profile -> a class of it (-1 for UNRESTRICTED)

    @property
    def profiles(self) -> int:
        return len(self.base)

    @cached_property
    def profile_of(self) -> IntArray:
        """endpoint -> profile."""
        out: IntArray = self.profile_of_class[self.classes.class_of]
        return out

    @property
    def rules_of(self) -> PerEndpoint[CompiledRule]:
        return PerEndpoint(self.class_rules, self.classes.class_of)

    @property
    def isolating(self) -> PerEndpoint[CompiledPolicy]:
        return PerEndpoint(self.class_isolating, self.classes.class_of)

    def class_row(self, profile: int) -> Words:
        """(class x word): what one profile allows toward each class."""
        out = np.repeat(self.base[profile][None, :], self.classes.count, axis=0)
        lo, hi = self.indptr[profile], self.indptr[profile + 1]
        out[self.indices[lo:hi]] |= self.data[lo:hi]
        return out

    def row(self, profile: int) -> Words:
        """(endpoint x word): what one profile allows toward each endpoint."""
        out: Words = self.class_row(profile)[self.classes.class_of]
        return out

    def lookup(self, profile: int, cls: int) -> Words:
        """(word,): what one profile allows toward one class."""
        lo, hi = int(self.indptr[profile]), int(self.indptr[profile + 1])
        k = lo + int(np.searchsorted(self.indices[lo:hi], cls))
        if k < hi and self.indices[k] == cls:
            out: Words = self.base[profile] | self.data[k]
            return out
        base: Words = self.base[profile]
        return base

    @cached_property
    def _columns(self) -> tuple[IntArray, IntArray, Words]:
        """The rows transposed (CSC): for each class, the profiles with an entry for it."""
        order = np.argsort(self.indices, kind="stable")
        profile_of_entry = np.repeat(np.arange(self.profiles), np.diff(self.indptr))
        bounds = np.searchsorted(self.indices[order], np.arange(self.classes.count + 1))
        return bounds, profile_of_entry[order], self.data[order]

    def class_rows(self, profiles: IntArray) -> Words:
        """(len(profiles) x class x word): `class_row` of many profiles at once."""
        out = np.repeat(self.base[profiles][:, None, :], self.classes.count, axis=1)
        which, entries = entry_ranges(self.indptr[profiles], self.indptr[profiles + 1])
        out[which, self.indices[entries]] |= self.data[entries]
        return out

    def class_columns(self, classes: IntArray) -> Words:
        """(len(classes) x profile x word): what each profile allows toward each of these
        classes (the rows read by column, through the CSC)."""
        bounds, profiles, data = self._columns
        out = np.repeat(self.base[None, :, :], len(classes), axis=0)
        which, entries = entry_ranges(bounds[classes], bounds[classes + 1])
        out[which, profiles[entries]] |= data[entries]
        return out

    def bits(self, word: int, bit: np.uint64) -> BoolArray:
        """(profile x class) booleans: does the profile allow the atom at (word, bit)."""
        out = np.zeros((self.profiles, self.classes.count), dtype=bool)
        rows = np.repeat(np.arange(self.profiles), np.diff(self.indptr))
        out[rows, self.indices] = (self.data[:, word] & bit) != 0
        out |= ((self.base[:, word] & bit) != 0)[:, None]
        return out


NamedWords = Callable[[tuple[NamedPort, ...]], Words]  # named ports -> (class x word)


def build_side(direction: Direction, policies: Sequence[CompiledPolicy], endpoints: Endpoints,
               classes: PeerClasses, atoms: PortAtoms, named_words: NamedWords,
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
    profiles = _Profiles(direction, endpoints, classes, atoms, named_words, {}, [-1])
    profile_of = np.full(count, UNRESTRICTED, dtype=np.int64)
    for c in range(classes.n_pod_classes):
        if isolating[c]:
            profile_of[c] = profiles.profile(c, rules_of[c])
        if tick is not None and c % 4000 == 0:
            tick(c / classes.n_pod_classes)
    everything = atoms.to_words(atoms.all_mask)[None, :]
    empty_row = (np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64),
                 np.zeros((0, atoms.words), dtype=np.uint64))
    return profiles.side(profile_of, (everything, *empty_row),
                         tuple(tuple(r) for r in rules_of), tuple(tuple(p) for p in isolating))


def update_side(side: Side, changed: Mapping[int, tuple[list[CompiledRule], list[CompiledPolicy]]],
                endpoints: Endpoints, atoms: PortAtoms, named_words: NamedWords) -> Side:
    """`side` with new rules for some classes: their profiles found again (an existing one when
    the same rules give the same key), rows built only for profiles not seen before. Profiles no
    class uses any more are kept: nothing reads them."""
    profiles = _Profiles(side.direction, endpoints, side.classes, atoms, named_words,
                         dict(side.keys), list(side.members))
    profile_of = side.profile_of_class.copy()
    class_rules, class_isolating = list(side.class_rules), list(side.class_isolating)
    for c, (rules, isolating) in changed.items():
        class_rules[c], class_isolating[c] = tuple(rules), tuple(isolating)
        profile_of[c] = profiles.profile(c, rules) if isolating else UNRESTRICTED
    return profiles.side(profile_of, (side.base, side.indptr, side.indices, side.data),
                         tuple(class_rules), tuple(class_isolating))


class _Profiles:
    """Numbering profiles by key and building the rows of new ones, from scratch or on top of
    an existing side's."""

    def __init__(self, direction: Direction, endpoints: Endpoints, classes: PeerClasses,
                 atoms: PortAtoms, named_words: NamedWords, keys: dict[object, int],
                 members: list[int]) -> None:
        self.direction = direction
        self.endpoints = endpoints
        self.classes = classes
        self.atoms = atoms
        self.keys = keys
        self.members = members  # profile -> a class of it (-1 for UNRESTRICTED)
        self.rows = _RowBuilder(direction, endpoints, classes, atoms, named_words)
        self.base: list[Words] = []
        self.indices: list[IntArray] = []
        self.data: list[Words] = []

    def profile(self, c: int, rules: Sequence[CompiledRule]) -> int:
        key: object = tuple(r.id for r in rules)
        subject = int(self.classes.representative[c])
        if self.direction is Direction.INGRESS:  # named ports resolve on the subject itself
            pod = self.endpoints.pods[subject]
            key = (key, tuple(_named_mask(self.atoms, pod, r.named) for r in rules if r.named))
        p = self.keys.get(key)
        if p is None:
            p = self.keys[key] = len(self.members)
            self.members.append(c)
            base, idx, words = self.rows.row(rules, subject)
            self.base.append(base)
            self.indices.append(idx)
            self.data.append(words)
        return p

    def side(self, profile_of: IntArray, before: tuple[Words, IntArray, IntArray, Words],
             class_rules: tuple[tuple[CompiledRule, ...], ...],
             class_isolating: tuple[tuple[CompiledPolicy, ...], ...]) -> Side:
        """A Side: the rows `before` (base, indptr, indices, data), then the new ones."""
        base, indptr, indices, data = before
        lengths = np.array([len(i) for i in self.indices], dtype=np.int64)
        return Side(
            self.direction, self.classes, profile_of,
            np.concatenate([base, *[b[None, :] for b in self.base]]),
            np.concatenate([indptr, indptr[-1] + np.cumsum(lengths)]),
            np.concatenate([indices, *self.indices]), np.concatenate([data, *self.data]),
            class_rules, class_isolating, self.keys, tuple(self.members),
        )


class _RowBuilder:
    """One profile's row from its rules: the base mask and the sparse entries."""

    def __init__(self, direction: Direction, endpoints: Endpoints, classes: PeerClasses,
                 atoms: PortAtoms, named_words: NamedWords) -> None:
        self.direction = direction
        self.pods = endpoints.pods
        self.atoms = atoms
        self.named_words = named_words
        self._words: dict[int, Words] = {}
        self._named_classes: dict[tuple[NamedPort, ...], tuple[BoolArray, IntArray]] = {}

    def words(self, mask: int) -> Words:
        hit = self._words.get(mask)
        if hit is None:
            hit = self._words[mask] = self.atoms.to_words(mask)
        return hit

    def _defined(self, named: tuple[NamedPort, ...], table: Words) -> tuple[BoolArray, IntArray]:
        """Which classes give these named ports a number: as a mask and as class ids."""
        hit = self._named_classes.get(named)
        if hit is None:
            defined: BoolArray = np.any(table, axis=1)
            hit = self._named_classes[named] = defined, np.flatnonzero(defined).astype(np.int64)
        return hit

    def row(self, rules: Sequence[CompiledRule], subject: int) -> tuple[Words, IntArray, Words]:
        base = 0
        parts: list[tuple[IntArray, Words]] = []
        w = self.atoms.words
        for rule in rules:
            if self.direction is Direction.INGRESS:
                fixed = rule.fixed | _named_mask(self.atoms, self.pods[subject], rule.named)
            else:
                fixed = rule.fixed
            if rule.all_peers:
                base |= fixed
            elif fixed:
                parts.append((rule.peer_classes, self.words(fixed)))
            if self.direction is Direction.EGRESS and rule.named:  # resolve on each peer
                table = self.named_words(rule.named)
                defined, where = self._defined(rule.named, table)
                if not rule.all_peers:
                    where = rule.peer_classes[defined[rule.peer_classes]]
                parts.append((where, table[where]))
        return self.words(base), *_merge(parts, w)


def _merge(parts: list[tuple[IntArray, Words]], w: int) -> tuple[IntArray, Words]:
    """One sorted sparse row from several, ORing the words of a class that appears twice. A
    part's words are one (word,) row for all its classes, or one row per class."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, w), dtype=np.uint64)
    # Parts over disjoint, ordered class ranges (rules toward different apps) just concatenate.
    parts.sort(key=lambda p: int(p[0][0]))
    disjoint = all(int(a[0][-1]) < int(b[0][0]) for a, b in pairwise(parts))
    idx = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    if all(p[1].ndim == 1 for p in parts):
        words = np.repeat(np.stack([p[1] for p in parts]), [len(p[0]) for p in parts], axis=0)
    else:
        words = np.concatenate([p[1] if p[1].ndim == 2 else np.broadcast_to(p[1], (len(p[0]), w))
                                for p in parts])
    if len(parts) == 1 or disjoint:
        return idx, words
    order = np.argsort(idx, kind="stable")
    idx, words = idx[order], words[order]
    first = np.empty(len(idx), dtype=bool)
    first[0] = True
    np.not_equal(idx[1:], idx[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return idx[starts], np.bitwise_or.reduceat(words, starts, axis=0)
