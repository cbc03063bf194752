"""One direction of the engine's answer: each class's profile and each profile's row.

A *profile* is what the classes that see exactly the same rules of one direction share (for
ingress also the same numbers for the named ports, which resolve on the subject). Its row says
which port atoms it allows toward each class, as the OR of three parts: a `base` mask toward
every endpoint, from rules without peers; at most one *shared set*, a large class set that many
profiles allow alike (a rule toward whole namespaces), stored once and referenced with the
profile's words for it; and a sparse row over classes (CSR), from the other rules with peers.
A class may be in the shared set and in the sparse row: readers OR them. Profile 0 is
UNRESTRICTED: the pods no policy of the direction selects, and the externals. `policy.engine`
combines both sides into cells; `policy.profiles` builds a side; this module reads one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar, overload

import numpy as np

from policy.classes import PeerClasses, entry_ranges
from policy.cluster import Direction
from policy.portatoms import Words
from policy.rules import BoolArray, CompiledPolicy, CompiledRule, IntArray

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
    shared: IntArray  # profile -> its shared set, -1 for none
    shared_words: Words  # profile x word: allowed toward every class of its shared set
    set_indptr: IntArray  # shared set -> its classes, CSR
    set_indices: IntArray  # set entry -> class, ascending within a set
    class_rules: tuple[tuple[CompiledRule, ...], ...]  # class -> the rules that apply to it
    class_isolating: tuple[tuple[CompiledPolicy, ...], ...]  # class -> policies isolating it
    keys: Mapping[object, int]  # profile key -> profile, to find profiles again on an update
    members: tuple[int, ...]  # profile -> a class of it (-1 for UNRESTRICTED)
    set_keys: Mapping[bytes, int]  # a shared set's classes (as bytes) -> the set

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

    def set_classes(self, s: int) -> IntArray:
        """The classes of one shared set, ascending."""
        out: IntArray = self.set_indices[self.set_indptr[s]:self.set_indptr[s + 1]]
        return out

    def class_row(self, profile: int) -> Words:
        """(class x word): what one profile allows toward each class."""
        out = np.repeat(self.base[profile][None, :], self.classes.count, axis=0)
        s = int(self.shared[profile])
        if s >= 0:
            out[self.set_classes(s)] |= self.shared_words[profile]
        lo, hi = self.indptr[profile], self.indptr[profile + 1]
        out[self.indices[lo:hi]] |= self.data[lo:hi]
        return out

    def row(self, profile: int) -> Words:
        """(endpoint x word): what one profile allows toward each endpoint."""
        out: Words = self.class_row(profile)[self.classes.class_of]
        return out

    def lookup(self, profile: int, cls: int) -> Words:
        """(word,): what one profile allows toward one class."""
        out: Words = self.base[profile]
        lo, hi = int(self.indptr[profile]), int(self.indptr[profile + 1])
        k = lo + int(np.searchsorted(self.indices[lo:hi], cls))
        if k < hi and self.indices[k] == cls:
            out = out | self.data[k]
        s = int(self.shared[profile])
        if s >= 0:
            members = self.set_classes(s)
            k = int(np.searchsorted(members, cls))
            if k < len(members) and members[k] == cls:
                out = out | self.shared_words[profile]
        return out

    @cached_property
    def _columns(self) -> tuple[IntArray, IntArray, Words]:
        """The rows transposed (CSC): for each class, the profiles with an entry for it."""
        order = np.argsort(self.indices, kind="stable")
        profile_of_entry = np.repeat(np.arange(self.profiles), np.diff(self.indptr))
        bounds = np.searchsorted(self.indices[order], np.arange(self.classes.count + 1))
        return bounds, profile_of_entry[order], self.data[order]

    @cached_property
    def _set_columns(self) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """For each class the shared sets holding it, and for each set the profiles using it,
        both CSR: (class bounds, set ids, set bounds, profiles)."""
        order = np.argsort(self.set_indices, kind="stable")
        sets = len(self.set_indptr) - 1
        set_of_entry = np.repeat(np.arange(sets), np.diff(self.set_indptr))[order]
        class_bounds = np.searchsorted(self.set_indices[order], np.arange(self.classes.count + 1))
        users = np.flatnonzero(self.shared >= 0)
        users = users[np.argsort(self.shared[users], kind="stable")]
        user_bounds = np.searchsorted(self.shared[users], np.arange(sets + 1))
        return class_bounds, set_of_entry, user_bounds, users

    def class_rows(self, profiles: IntArray) -> Words:
        """(len(profiles) x class x word): `class_row` of many profiles at once."""
        out = np.repeat(self.base[profiles][:, None, :], self.classes.count, axis=1)
        sets = self.shared[profiles]
        having = np.flatnonzero(sets >= 0)
        if len(having):
            which, entries = entry_ranges(self.set_indptr[sets[having]],
                                          self.set_indptr[sets[having] + 1])
            out[having[which], self.set_indices[entries]] |= \
                self.shared_words[profiles[having]][which]
        which, entries = entry_ranges(self.indptr[profiles], self.indptr[profiles + 1])
        out[which, self.indices[entries]] |= self.data[entries]
        return out

    def class_columns(self, classes: IntArray) -> Words:
        """(len(classes) x profile x word): what each profile allows toward each of these
        classes (the rows read by column, through the CSC)."""
        bounds, profiles, data = self._columns
        out = np.repeat(self.base[None, :, :], len(classes), axis=0)
        class_bounds, set_of_entry, user_bounds, users = self._set_columns
        which, entries = entry_ranges(class_bounds[classes], class_bounds[classes + 1])
        sets = set_of_entry[entries]
        pairs, positions = entry_ranges(user_bounds[sets], user_bounds[sets + 1])
        using = users[positions]  # one set a profile: no (class, profile) twice
        out[which[pairs], using] |= self.shared_words[using]
        which, entries = entry_ranges(bounds[classes], bounds[classes + 1])
        out[which, profiles[entries]] |= data[entries]
        return out

    def bits(self, word: int, bit: np.uint64) -> BoolArray:
        """(profile x class) booleans: does the profile allow the atom at (word, bit)."""
        out = np.zeros((self.profiles, self.classes.count), dtype=bool)
        rows = np.repeat(np.arange(self.profiles), np.diff(self.indptr))
        out[rows, self.indices] = (self.data[:, word] & bit) != 0
        having = np.flatnonzero((self.shared >= 0) & ((self.shared_words[:, word] & bit) != 0))
        sets = self.shared[having]
        which, entries = entry_ranges(self.set_indptr[sets], self.set_indptr[sets + 1])
        out[having[which], self.set_indices[entries]] = True
        out |= ((self.base[:, word] & bit) != 0)[:, None]
        return out
