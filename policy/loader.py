"""Loading a cluster: documents in, one validated and defaulted `ClusterState` out.

Recognised kinds: Namespace, Pod, NetworkPolicy (networking.k8s.io/v1), and the workloads
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob, each
standing for its pods through its pod template (CI YAML has no Pod objects). A workload whose
pods, or whose owning workload, are also in the input is not counted twice. Other kinds are
ignored and counted in a note. Every problem of every file is collected and raised together as
one `InputError`, unless `keep_going` is set: then the objects in error are left out and the
problems are returned as warnings.

Two steps: each document is converted on its own (`policy.convert`), then the contributions
are assembled in input order (`Assembly`: duplicates, standing workloads, implicit namespaces,
sorting). Large inputs of several files are converted in worker processes, a file each, and
assembled in order, so the result, messages included, is the same as loading them one by one.
`assemble` is the second step alone, for callers that convert objects as they come (the agent).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from policy.addresses import IPAddress
from policy.cluster import ClusterState, PodInfo, Policy
from policy.convert import Contribution, Owners, convert
from policy.defaults import namespace_labels
from policy.documents import Document, expand_paths, parse_documents, read_source
from policy.errors import InputError, Location, Problem
from policy.gcpause import gc_paused
from policy.progress import Progress, no_progress

PARALLEL_BYTES = 4 << 20  # below this much input, worker processes cost more than they save
Source = tuple[str, str, bool]  # (name, text, found in a folder)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """One source converted: its contributions in order, or the problem that stopped it."""

    contributions: tuple[Contribution, ...] = ()
    errors: tuple[Problem, ...] = ()  # the source could not be parsed
    skipped: bool = False  # found in a folder and holding no Kubernetes object


def load(paths: list[str], keep_going: bool = False,
         progress: Progress = no_progress) -> ClusterState:
    """Load files, folders and `-` (stdin). Raises InputError for bad input."""
    sources = [(name, read_source(name), walked) for name, walked in expand_paths(paths)]
    return load_texts(sources, keep_going, progress)


def load_texts(sources: list[Source], keep_going: bool = False,
               progress: Progress = no_progress, workers: int | None = None) -> ClusterState:
    """Load (name, text, found in a folder) triples. The name is used in messages and to tell
    JSON from YAML; a file found in a folder that holds no Kubernetes object (a Helm values
    file, a Chart.yaml) is skipped with a note instead of being an error. `workers`: processes
    to convert sources in (default: the CPUs, when there are several sources and at least
    PARALLEL_BYTES of text; 1 converts here)."""
    total = max(1, sum(len(text) for _, text, _ in sources))
    if workers is None:
        workers = min(len(sources), os.cpu_count() or 1) if total >= PARALLEL_BYTES else 1
    with gc_paused():
        if workers > 1 and len(sources) > 1:
            results = _convert_parallel(sources, workers, total, progress)
        else:
            results = _convert_here(sources, total, progress)
        assembly = Assembly()
        for result in results:
            assembly.add_source(result)
    return assembly.finish(keep_going)


def assemble(contributions: Iterable[Contribution], keep_going: bool = False) -> ClusterState:
    """The cluster of already converted objects, in this order (`policy.convert.convert`)."""
    assembly = Assembly()
    for c in contributions:
        assembly.add(c)
    return assembly.finish(keep_going)


@dataclass(frozen=True, slots=True)
class Base:
    """Namespaces and pods assembled once, to be completed with policies many times
    (`assemble_with`): the agent keeps one while only policies change. No workloads."""

    namespaces: dict[str, dict[str, str]]  # the Namespace objects'
    pods: tuple[PodInfo, ...]  # sorted, as in the cluster
    pod_namespaces: frozenset[str]
    warnings: tuple[Problem, ...]
    errors: tuple[Problem, ...]
    terminal: int


def assemble_base(contributions: Iterable[Contribution]) -> Base:
    """Namespace and Pod contributions (in this order) assembled, for `assemble_with`."""
    assembly = Assembly()
    for c in contributions:
        assembly.add(c)
    pods = assembly.unique_pods()
    pods.sort(key=lambda p: (p.namespace, p.name))
    return Base(dict(assembly.namespaces), tuple(pods), frozenset(p.namespace for p in pods),
                tuple(assembly.warnings), tuple(assembly.errors), assembly.terminal)


def assemble_with(base: Base, policies: Iterable[Contribution],
                  keep_going: bool = False) -> ClusterState:
    """`assemble` of the base's contributions followed by `policies` (NetworkPolicy
    contributions), equal to it, the base's pods tuple itself kept (so that an analysis can
    tell at once that the pods did not change)."""
    assembly = Assembly(errors=list(base.errors), warnings=list(base.warnings),
                        namespaces=dict(base.namespaces), terminal=base.terminal)
    for c in policies:
        assembly.add(c)
    return assembly.finish(keep_going, base)


def _convert_here(sources: list[Source], total: int, progress: Progress) -> list[SourceResult]:
    results = []
    done = 0
    for name, text, walked in sources:
        def position(at: int, done: int = done) -> None:
            progress("loading", (done + at) / total)

        results.append(convert_source(name, text, walked, position))
        done += len(text)
        progress("loading", done / total)
    return results


def _convert_parallel(sources: list[Source], workers: int, total: int,
                      progress: Progress) -> list[SourceResult]:
    """A source per task in forked worker processes; results come back in input order.
    Largest first, so that the last task to start is a short one."""
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i][1]))
    results: dict[int, SourceResult] = {}
    done = 0
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        tasks = pool.map(_convert_task, (sources[i] for i in order))
        for index, result in zip(order, tasks, strict=True):
            results[index] = result
            done += len(sources[index][1])
            progress("loading", done / total)
    return [results[i] for i in range(len(sources))]


def _convert_task(source: Source) -> SourceResult:
    name, text, walked = source
    return convert_source(name, text, walked)


def convert_source(name: str, text: str, walked: bool,
                   position: Callable[[int], None] | None = None) -> SourceResult:
    """Every document of a source converted, in order. A file found in a folder is held back
    until its first Kubernetes object, so that one holding none can be skipped."""
    out: list[Contribution] = []
    held: list[Document] | None = [] if walked else None
    try:
        for doc in parse_documents(text, name, position):
            if held is not None:
                if not _is_object(doc.data):
                    held.append(doc)
                    continue
                out.extend(convert(earlier) for earlier in held)
                held = None
            out.append(convert(doc))
    except InputError as exc:
        if held is not None and "apiVersion" not in text and "kind" not in text:
            return SourceResult(skipped=True)  # unparseable, and no sign of being a manifest
        return SourceResult(tuple(out), tuple(exc.problems))
    if held:
        return SourceResult(skipped=True)
    return SourceResult(tuple(out))


@dataclass
class _Workload:
    kind: str
    namespace: str
    name: str
    owners: Owners
    pod: PodInfo


@dataclass
class Assembly:
    """Contributions in, in input order; the cluster out (`finish`)."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    pods: list[PodInfo] = field(default_factory=list)
    pod_owners: list[tuple[str, Owners]] = field(default_factory=list)
    workloads: list[_Workload] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    seen: dict[str, Location] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    terminal: int = 0
    skipped_files: int = 0
    service_ips: dict[str, tuple[IPAddress, ...]] = field(default_factory=dict)

    def add_source(self, result: SourceResult) -> None:
        if result.skipped:
            self.skipped_files += 1
            return
        for c in result.contributions:
            self.add(c)
        self.errors.extend(result.errors)

    def add(self, c: Contribution) -> None:
        if c.errors:
            self.errors.extend(c.errors)
            return
        if c.ignored:
            self.ignored[c.kind] += 1
            return
        first = self.seen.get(c.obj)
        if first is not None:
            self.errors.append(Problem(Location(c.location.file, c.location.line, c.obj),
                                       f"duplicate object (first at {first.render()})"))
            return
        self.seen[c.obj] = c.location
        self.warnings.extend(c.warnings)
        if c.terminal:
            self.terminal += 1
        elif c.namespace_labels is not None:
            self.namespaces[c.obj.split(" ", 1)[1]] = c.namespace_labels
        elif c.policy is not None:
            self.policies.append(c.policy)
        elif c.service_ips is not None:
            self.service_ips[c.obj.split(" ", 1)[1]] = c.service_ips
        elif c.pod is not None and c.is_workload:
            self.workloads.append(_Workload(c.kind, c.pod.namespace, c.pod.name, c.owners,
                                            c.pod))
        elif c.pod is not None:
            self.pods.append(c.pod)
            self.pod_owners.append((c.pod.namespace, c.owners))

    def finish(self, keep_going: bool, base: Base | None = None) -> ClusterState:
        """The cluster; with `base`, its pods are the pods (this assembly has none)."""
        if base is None:
            pods = self.unique_pods()
            pods.sort(key=lambda p: (p.namespace, p.name))
            pod_namespaces: Iterable[str] = {p.namespace for p in pods}
        else:
            pods, pod_namespaces = [], base.pod_namespaces
        if self.errors and not keep_going:
            raise InputError(self.errors)
        namespaces = dict(self.namespaces)
        for ns in sorted(set(pod_namespaces) | {p.namespace for p in self.policies}):
            if ns not in namespaces:
                namespaces[ns] = namespace_labels(ns, {})
        notes = []
        if self.ignored:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.ignored.items()))
            notes.append(f"ignored {sum(self.ignored.values())} objects of other kinds ({kinds})")
        if self.skipped_files:
            notes.append(
                f"skipped {self.skipped_files} files in folders that hold no Kubernetes objects"
            )
        if self.terminal:
            notes.append(f"left out {self.terminal} pods that have finished (Succeeded/Failed)")
        warnings = list(self.warnings) + list(self.errors)  # errors only get here with keep_going
        return ClusterState(
            namespaces=namespaces,
            pods=base.pods if base is not None else tuple(pods),
            policies=tuple(sorted(self.policies, key=lambda p: (p.namespace, p.name))),
            warnings=tuple(warnings),
            notes=tuple(notes),
            service_ips=dict(self.service_ips),
        )

    def unique_pods(self) -> list[PodInfo]:
        """Pods and standing workloads; a workload named like another pod or workload is an
        error, since both would be `namespace/name` in every answer."""
        out: list[PodInfo] = []
        seen: dict[str, PodInfo] = {}
        for pod in self.pods + self._standing_workloads():
            first = seen.get(pod.key)
            if first is None:
                seen[pod.key] = pod
                out.append(pod)
                continue
            loc = pod.location
            self.errors.append(Problem(
                Location(loc.file, loc.line, loc.obj),
                f"{first.location.obj} ({_file_line(first.location)}) has the "
                f"same namespace/name; kubefence names pods and workloads by namespace/name, "
                "so rename one",
            ))
        return out

    def _standing_workloads(self) -> list[PodInfo]:
        """Workloads that stand for pods not otherwise in the input."""
        loaded = {(w.namespace, w.kind, w.name): w for w in self.workloads}
        covered: set[tuple[str, str, str]] = set()
        todo = [(ns, kind, name) for ns, owners in self.pod_owners for kind, name in owners]
        todo += [(w.namespace, k, n) for w in self.workloads for k, n in w.owners]
        while todo:
            key = todo.pop()
            if key in covered:
                continue
            covered.add(key)
            owner = loaded.get(key)
            if owner is not None:
                todo.extend((owner.namespace, k, n) for k, n in owner.owners)
        return [w.pod for key, w in loaded.items() if key not in covered]


def _file_line(loc: Location) -> str:
    return Location(loc.file, loc.line).render()


def _is_object(data: Any) -> bool:
    return isinstance(data, dict) and "kind" in data and "apiVersion" in data
