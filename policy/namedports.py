"""Named ports per peer class: the port atoms a class's pods give to a rule's named ports.

A named port resolves on the destination pod: the subject for an ingress rule, each peer for
an egress rule. Pods of one class resolve every named port the policies use to the same number
(`policy.classes`), and what a pod resolves depends only on its container ports, which replicas
share; so each rule's named ports are resolved once per distinct set of container ports, and
every class reads its set's answer. `policy.sides` builds profile rows from these answers and
`policy.engine` the explanations' per-rule words, so both see the same numbers.
"""

from __future__ import annotations

import numpy as np

from policy.classes import PeerClasses
from policy.cluster import PodInfo, ServedPort
from policy.portatoms import PortAtoms, Words
from policy.rules import Endpoints, IntArray, NamedPort, named_mask


class NamedPorts:
    """Named ports resolved per class, cached per (container-port set, named ports)."""

    def __init__(self, endpoints: Endpoints, classes: PeerClasses, atoms: PortAtoms) -> None:
        self.atoms = atoms
        n = endpoints.n_pods
        sets: dict[tuple[ServedPort, ...], int] = {}
        self._pods: list[PodInfo] = []  # port set -> a pod with those container ports
        group_of: list[int] = []  # class -> its port set, -1 for none (externals, no ports)
        for j in classes.representative.tolist():
            pod = endpoints.pods[j] if j < n else None
            if pod is None or not pod.ports:
                group_of.append(-1)
                continue
            g = sets.get(pod.ports)
            if g is None:
                g = sets[pod.ports] = len(self._pods)
                self._pods.append(pod)
            group_of.append(g)
        self._group_of = group_of
        self._group_array: IntArray = np.array(group_of, dtype=np.int64)
        self._masks: dict[tuple[int, tuple[NamedPort, ...]], int] = {}
        self._words: dict[tuple[NamedPort, ...], Words] = {}

    def mask(self, cls: int, named: tuple[NamedPort, ...]) -> int:
        """The atom mask the pods of class `cls` give to these named ports (0 if undefined)."""
        g = self._group_of[cls]
        if g < 0 or not named:
            return 0
        hit = self._masks.get((g, named))
        if hit is None:
            hit = self._masks[g, named] = named_mask(self.atoms, self._pods[g], named)
        return hit

    def words(self, named: tuple[NamedPort, ...]) -> Words:
        """(class x word): the atoms each class's pods give to these named ports."""
        hit = self._words.get(named)
        if hit is None:
            table = np.zeros((len(self._pods) + 1, self.atoms.words), dtype=np.uint64)
            for g, pod in enumerate(self._pods):  # the last row, for -1, stays empty
                m = named_mask(self.atoms, pod, named)
                if m:
                    table[g] = self.atoms.to_words(m)
            hit = self._words[named] = table[self._group_array]
        return hit
