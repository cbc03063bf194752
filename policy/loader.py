"""Loading a cluster: documents in, one validated and defaulted `ClusterState` out.

Recognised kinds: Namespace, Pod, NetworkPolicy (networking.k8s.io/v1), and the workloads
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob, each
standing for its pods through its pod template (CI YAML has no Pod objects). A workload whose
pods, or whose owning workload, are also in the input is not counted twice. Other kinds are
ignored and counted in a note. Every problem of every file is collected and raised together as
one `InputError`, unless `keep_going` is set: then the objects in error are left out and the
problems are returned as warnings.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from policy.addresses import IPAddress
from policy.cluster import ClusterState, Direction, PodInfo, Policy
from policy.defaults import DEFAULT_NAMESPACE, build_pod, build_policy, namespace_labels
from policy.documents import Document, expand_paths, parse_documents, read_source
from policy.errors import InputError, Location, Problem
from policy.gcpause import gc_paused
from policy.models import (
    CronJob,
    Namespace,
    NetworkPolicy,
    ObjectMeta,
    Pod,
    PodSpec,
    PodTemplateSpec,
    Service,
    Workload,
)
from policy.progress import Progress, no_progress
from policy.validation import (
    FieldError,
    validate_labels,
    validate_meta,
    validate_network_policy,
    validate_pod,
    validate_pod_spec,
)

WORKLOAD_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    }
)
POLICY_API_VERSION = "networking.k8s.io/v1"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


def load(paths: list[str], keep_going: bool = False,
         progress: Progress = no_progress) -> ClusterState:
    """Load files, folders and `-` (stdin). Raises InputError for bad input."""
    sources = [(name, read_source(name), walked) for name, walked in expand_paths(paths)]
    return load_texts(sources, keep_going, progress)


def load_texts(sources: list[tuple[str, str, bool]], keep_going: bool = False,
               progress: Progress = no_progress) -> ClusterState:
    """Load (name, text, found in a folder) triples. The name is used in messages and to tell
    JSON from YAML; a file found in a folder that holds no Kubernetes object (a Helm values
    file, a Chart.yaml) is skipped with a note instead of being an error."""
    state = _LoadState()
    total = max(1, sum(len(text) for _, text, _ in sources))
    done = 0

    def position(at: int) -> None:
        progress("loading", (done + at) / total)

    with gc_paused():
        for name, text, walked in sources:
            _read_source(state, name, text, walked, position)
            done += len(text)
            progress("loading", done / total)
    pods = state.unique_pods()
    if state.errors and not keep_going:
        raise InputError(state.errors)
    return state.finish(pods)


def _read_source(state: _LoadState, name: str, text: str, walked: bool,
                 position: Callable[[int], None] | None = None) -> None:
    """Add a source's objects as they are parsed. A file found in a folder is held back until
    its first Kubernetes object, so that one holding none can be skipped."""
    held: list[Document] | None = [] if walked else None
    try:
        for doc in parse_documents(text, name, position):
            if held is not None:
                if not _is_object(doc.data):
                    held.append(doc)
                    continue
                for earlier in held:
                    state.add(earlier)
                held = None
            state.add(doc)
    except InputError as exc:
        if held is not None and "apiVersion" not in text and "kind" not in text:
            state.skipped_files += 1  # unparseable, and no sign of being a manifest
        else:
            state.errors.extend(exc.problems)
        return
    if held:
        state.skipped_files += 1


@dataclass
class _Workload:
    kind: str
    namespace: str
    name: str
    owners: tuple[tuple[str, str], ...]
    pod: PodInfo


@dataclass
class _LoadState:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    pods: list[PodInfo] = field(default_factory=list)
    pod_owners: list[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=list)
    workloads: list[_Workload] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    seen: dict[str, Location] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    terminal: int = 0
    skipped_files: int = 0
    service_ips: dict[str, tuple[IPAddress, ...]] = field(default_factory=dict)

    def add(self, doc: Document) -> None:
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            self.errors.append(
                Problem(Location(doc.file, doc.line), "not a Kubernetes object: no `kind`")
            )
            return
        kind = data["kind"]
        if kind == "Namespace":
            self._parse(doc, Namespace, self._namespace)
        elif kind == "Pod":
            self._parse(doc, Pod, self._pod)
        elif kind == "NetworkPolicy":
            if data.get("apiVersion") != POLICY_API_VERSION:
                self._error(
                    doc,
                    _obj_name(kind, data),
                    "apiVersion",
                    f"unsupported apiVersion {data.get('apiVersion')!r}; "
                    f"only {POLICY_API_VERSION} is supported",
                )
                return
            self._parse(doc, NetworkPolicy, self._policy)
        elif kind == "CronJob":
            self._parse(doc, CronJob, self._cronjob)
        elif kind in WORKLOAD_KINDS:
            self._parse(doc, Workload, self._workload)
        elif kind == "Service":
            self._parse(doc, Service, self._service)
        else:
            self.ignored[kind] += 1

    # -- one kind each -------------------------------------------------------------------

    def _namespace(self, doc: Document, ns: Namespace, obj: str) -> None:
        errs = validate_meta(ns.metadata.name, None)
        errs += validate_labels(ns.metadata.labels, "metadata.labels")
        if self._report(doc, obj, errs) or not self._unique(doc, obj):
            return
        self.namespaces[ns.metadata.name] = namespace_labels(ns.metadata.name, ns.metadata.labels)

    def _pod(self, doc: Document, pod: Pod, obj: str) -> None:
        if self._report(doc, obj, validate_pod(pod)) or not self._unique(doc, obj):
            return
        if pod.status.phase in TERMINAL_PHASES:
            self.terminal += 1
            return
        meta = pod.metadata
        info = build_pod(
            meta.namespace,
            meta.name,
            meta.labels,
            pod.spec,
            pod.status,
            "Pod",
            Location(doc.file, doc.line, obj),
        )
        self.pods.append(info)
        self.pod_owners.append(
            (info.namespace, tuple((o.kind, o.name) for o in meta.owner_references))
        )

    def _policy(self, doc: Document, np: NetworkPolicy, obj: str) -> None:
        if self._report(doc, obj, validate_network_policy(np)) or not self._unique(doc, obj):
            return
        lines: dict[tuple[Direction, int], int] = {}
        if doc.node is not None:  # YAML: rule lines are cheap; JSON: only on error
            for direction, rules in (
                (Direction.INGRESS, np.spec.ingress),
                (Direction.EGRESS, np.spec.egress),
            ):
                for i in range(len(rules)):
                    line = doc.line_of(f"spec.{direction.value.lower()}[{i}]")
                    if line is not None:
                        lines[(direction, i)] = line
        warnings: list[Problem] = []
        self.policies.append(build_policy(np, Location(doc.file, doc.line, obj), lines, warnings))
        self.warnings.extend(
            Problem(
                Location(doc.file, doc.line_of(w.location.field), obj, w.location.field), w.message
            )
            for w in warnings
        )

    def _service(self, doc: Document, svc: Service, obj: str) -> None:
        """Only the cluster IPs are kept (for lints); headless Services have none."""
        texts = [t for t in (*svc.spec.cluster_ips, svc.spec.cluster_ip or "")
                 if t and t != "None"]
        ips = []
        for i, text in enumerate(texts):
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                path = ("spec.clusterIP" if i >= len(svc.spec.cluster_ips)
                        else f"spec.clusterIPs[{i}]")
                self._error(doc, obj, path, f"{text!r}: not a valid IP address")
                return
            if ip not in ips:
                ips.append(ip)
        namespace = svc.metadata.namespace or DEFAULT_NAMESPACE
        self.service_ips[f"{namespace}/{svc.metadata.name}"] = tuple(ips)

    def _workload(self, doc: Document, wl: Workload, obj: str) -> None:
        self._add_workload(doc, obj, wl.metadata, wl.spec.template, "spec.template")

    def _cronjob(self, doc: Document, cj: CronJob, obj: str) -> None:
        self._add_workload(doc, obj, cj.metadata, cj.spec.job_template.spec.template,
                           "spec.jobTemplate.spec.template")

    def _add_workload(self, doc: Document, obj: str, meta: ObjectMeta,
                      template: PodTemplateSpec | None, path: str) -> None:
        """A workload stands for its pods through its pod template."""
        labels = template.metadata.labels if template else {}
        spec = template.spec if template else PodSpec()
        errs = validate_meta(meta.name, meta.namespace)
        errs += validate_labels(labels, f"{path}.metadata.labels")
        errs += validate_pod_spec(spec, f"{path}.spec")
        if self._report(doc, obj, errs) or not self._unique(doc, obj):
            return
        kind = obj.split(" ", 1)[0]
        pod = build_pod(
            meta.namespace, meta.name, labels, spec, None, kind, Location(doc.file, doc.line, obj)
        )
        owners = tuple((o.kind, o.name) for o in meta.owner_references)
        self.workloads.append(_Workload(kind, pod.namespace, meta.name, owners, pod))

    # -- plumbing --------------------------------------------------------------------------

    def _parse(self, doc: Document, model: type[BaseModel], add: Any) -> None:
        obj = _obj_name(doc.data["kind"], doc.data)
        try:
            parsed = model.model_validate(doc.data)
        except ValidationError as exc:
            seen = set()
            for err in exc.errors():
                path = _loc_path(err["loc"])
                if path not in seen:
                    seen.add(path)
                    self._error(doc, obj, path, _pydantic_message(err))
            return
        add(doc, parsed, obj)

    def _report(self, doc: Document, obj: str, errs: list[FieldError]) -> bool:
        for e in errs:
            self._error(doc, obj, e.path, e.message)
        return bool(errs)

    def _error(self, doc: Document, obj: str, path: str, message: str) -> None:
        self.errors.append(Problem(Location(doc.file, doc.line_of(path), obj, path), message))

    def _unique(self, doc: Document, obj: str) -> bool:
        first = self.seen.get(obj)
        if first is not None:
            self.errors.append(
                Problem(
                    Location(doc.file, doc.line, obj),
                    f"duplicate object (first at {first.render()})",
                )
            )
            return False
        self.seen[obj] = Location(doc.file, doc.line)
        return True

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

    def finish(self, pods: list[PodInfo]) -> ClusterState:
        namespaces = dict(self.namespaces)
        for ns in sorted({p.namespace for p in pods} | {p.namespace for p in self.policies}):
            if ns not in namespaces:
                namespaces[ns] = namespace_labels(ns, {})
        pods.sort(key=lambda p: (p.namespace, p.name))
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
            pods=tuple(pods),
            policies=tuple(sorted(self.policies, key=lambda p: (p.namespace, p.name))),
            warnings=tuple(warnings),
            notes=tuple(notes),
            service_ips=dict(self.service_ips),
        )

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


def _obj_name(kind: str, data: dict[str, Any]) -> str:
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = meta.get("name") or "<unnamed>"
    if kind == "Namespace":
        return f"{kind} {name}"
    return f"{kind} {meta.get('namespace') or DEFAULT_NAMESPACE}/{name}"


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _pydantic_message(err: Any) -> str:
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = err.get("input")
    if err["type"] == "missing":
        return "required field is missing"
    if isinstance(value, dict | list):
        return msg
    return f"{msg} (got {value!r})"
