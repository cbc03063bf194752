"""One document to what it contributes to a cluster: the loader's per-object step.

`convert(doc)` parses one document with its pydantic model, validates it as the API server
would and applies the defaults (`policy.defaults`), and returns a `Contribution`: the typed
object (a namespace's labels, a pod or a workload standing for its pods, a policy, a Service's
cluster IPs), or the problems that keep it out. It depends on nothing but the document, so it
can run anywhere and in any order: `policy.loader` converts file after file (in parallel across
files for large inputs) and then assembles the contributions in input order, where duplicates
and workloads whose pods are present are sorted out; the node agent converts each object once,
when its watch event arrives, and assembles at every sync.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from policy.addresses import IPAddress
from policy.cluster import Direction, PodInfo, Policy
from policy.defaults import DEFAULT_NAMESPACE, build_pod, build_policy, namespace_labels
from policy.documents import Document
from policy.errors import Location, Problem
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
from policy.validation import (
    FieldError,
    validate_labels,
    validate_meta,
    validate_network_policy,
    validate_pod,
    validate_pod_spec,
)

WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job",
     "CronJob"}
)
POLICY_API_VERSION = "networking.k8s.io/v1"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
Owners = tuple[tuple[str, str], ...]  # (kind, name) of each ownerReference


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one document adds, or why it adds nothing. Exactly one payload is set when the
    document is accepted (`errors` empty, `ignored` and `terminal` false)."""

    obj: str  # "Kind namespace/name", or "" when the document is not an object
    location: Location  # the document's file and line
    kind: str = ""
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()  # kept only if the object is kept
    ignored: bool = False  # a kind kubefence does not read
    terminal: bool = False  # a pod that has finished (Succeeded/Failed)
    namespace_labels: dict[str, str] | None = None  # a Namespace, its labels defaulted
    pod: PodInfo | None = None  # a Pod, or the pod a workload stands for
    owners: Owners = ()  # of the Pod or workload
    policy: Policy | None = None
    service_ips: tuple[IPAddress, ...] | None = None  # a Service: its cluster IPs

    @property
    def is_workload(self) -> bool:
        return self.kind in WORKLOAD_KINDS


def convert(doc: Document) -> Contribution:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return Contribution("", Location(doc.file, doc.line), errors=(
            Problem(Location(doc.file, doc.line), "not a Kubernetes object: no `kind`"),))
    kind = data["kind"]
    obj = obj_name(kind, data)
    here = Location(doc.file, doc.line)
    if kind == "NetworkPolicy" and data.get("apiVersion") != POLICY_API_VERSION:
        return Contribution(obj, here, kind, errors=(_problem(
            doc, obj, "apiVersion", f"unsupported apiVersion {data.get('apiVersion')!r}; "
                                    f"only {POLICY_API_VERSION} is supported"),))
    step: tuple[type[BaseModel], Any] | None = _STEPS.get(kind)
    if step is None and kind in WORKLOAD_KINDS:
        step = (Workload, _workload)
    if step is None:
        return Contribution(obj, here, kind, ignored=True)
    model, build = step
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems: list[Problem] = []
        seen = set()
        for err in exc.errors():
            path = _loc_path(err["loc"])
            if path not in seen:
                seen.add(path)
                problems.append(_problem(doc, obj, path, _pydantic_message(err)))
        return Contribution(obj, here, kind, errors=tuple(problems))
    payload: dict[str, Any] = build(doc, parsed, obj)
    return Contribution(obj, here, kind, **payload)


# -- one kind each ---------------------------------------------------------------------------


Payload = dict[str, Any]  # the fields of a Contribution beyond obj, location and kind


def _namespace(doc: Document, ns: Namespace, obj: str) -> Payload:
    errs = validate_meta(ns.metadata.name, None)
    errs += validate_labels(ns.metadata.labels, "metadata.labels")
    if errs:
        return _failed(doc, obj, errs)
    return {"namespace_labels": namespace_labels(ns.metadata.name, ns.metadata.labels)}


def _pod(doc: Document, pod: Pod, obj: str) -> Payload:
    errs = validate_pod(pod)
    if errs:
        return _failed(doc, obj, errs)
    if pod.status.phase in TERMINAL_PHASES:
        return {"terminal": True}
    meta = pod.metadata
    info = build_pod(meta.namespace, meta.name, meta.labels, pod.spec, pod.status, "Pod",
                     Location(doc.file, doc.line, obj))
    return {"pod": info, "owners": tuple((o.kind, o.name) for o in meta.owner_references)}


def _policy(doc: Document, np: NetworkPolicy, obj: str) -> Payload:
    errs = validate_network_policy(np)
    if errs:
        return _failed(doc, obj, errs)
    lines: dict[tuple[Direction, int], int] = {}
    if doc.node is not None:  # YAML: rule lines are cheap; JSON: only on error
        for direction, rules in ((Direction.INGRESS, np.spec.ingress),
                                 (Direction.EGRESS, np.spec.egress)):
            for i in range(len(rules)):
                line = doc.line_of(f"spec.{direction.value.lower()}[{i}]")
                if line is not None:
                    lines[(direction, i)] = line
    warnings: list[Problem] = []
    policy = build_policy(np, Location(doc.file, doc.line, obj), lines, warnings)
    located = tuple(Problem(Location(doc.file, doc.line_of(w.location.field), obj,
                                     w.location.field), w.message) for w in warnings)
    return {"policy": policy, "warnings": located}


def _service(doc: Document, svc: Service, obj: str) -> Payload:
    """Only the cluster IPs are kept (for lints); headless Services have none."""
    texts = [t for t in (*svc.spec.cluster_ips, svc.spec.cluster_ip or "") if t and t != "None"]
    ips: list[IPAddress] = []
    for i, text in enumerate(texts):
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            path = "spec.clusterIP" if i >= len(svc.spec.cluster_ips) else f"spec.clusterIPs[{i}]"
            return {"errors": (_problem(doc, obj, path, f"{text!r}: not a valid IP address"),)}
        if ip not in ips:
            ips.append(ip)
    return {"service_ips": tuple(ips)}


def _workload(doc: Document, wl: Workload, obj: str) -> Payload:
    return _standing(doc, obj, wl.metadata, wl.spec.template, "spec.template")


def _cronjob(doc: Document, cj: CronJob, obj: str) -> Payload:
    return _standing(doc, obj, cj.metadata, cj.spec.job_template.spec.template,
                     "spec.jobTemplate.spec.template")


def _standing(doc: Document, obj: str, meta: ObjectMeta,
              template: PodTemplateSpec | None, path: str) -> Payload:
    """A workload stands for its pods through its pod template."""
    labels = template.metadata.labels if template else {}
    spec = template.spec if template else PodSpec()
    errs = validate_meta(meta.name, meta.namespace)
    errs += validate_labels(labels, f"{path}.metadata.labels")
    errs += validate_pod_spec(spec, f"{path}.spec")
    if errs:
        return _failed(doc, obj, errs)
    pod = build_pod(meta.namespace, meta.name, labels, spec, None, obj.split(" ", 1)[0],
                    Location(doc.file, doc.line, obj))
    return {"pod": pod, "owners": tuple((o.kind, o.name) for o in meta.owner_references)}


_STEPS: dict[str, tuple[type[BaseModel], Any]] = {
    "Namespace": (Namespace, _namespace),
    "Pod": (Pod, _pod),
    "NetworkPolicy": (NetworkPolicy, _policy),
    "CronJob": (CronJob, _cronjob),
    "Service": (Service, _service),
}


# -- plumbing --------------------------------------------------------------------------------


def _failed(doc: Document, obj: str, errs: list[FieldError]) -> Payload:
    return {"errors": tuple(_problem(doc, obj, e.path, e.message) for e in errs)}


def _problem(doc: Document, obj: str, path: str, message: str) -> Problem:
    return Problem(Location(doc.file, doc.line_of(path), obj, path), message)


def obj_name(kind: str, data: dict[str, Any]) -> str:
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
        msg = msg[len("Value error, "):]
    value = err.get("input")
    if err["type"] == "missing":
        return "required field is missing"
    if isinstance(value, dict | list):
        return msg
    return f"{msg} (got {value!r})"
