"""Intent files: what a team asserts about its network, checked against the engine's answers.

    assertions:
    - name: web reaches the API
      from: {namespace: shop, labels: {app: web}}
      to: {namespace: shop, labels: {app: api}}
      ports: [8080/TCP]
      expect: allowed        # every source reaches every destination on every listed port
    - from: {not: {namespace: db}}
      to: {labels: {app: postgres}}
      expect: denied         # no source reaches any destination (on the listed ports, or any)
    - from: {labels: {app: worker}}
      to: {cidr: 0.0.0.0/0}
      ports: [443/TCP]
      expect: only           # nothing beyond the listed ports (add `allowed` to require them)
    - isolated: {namespace: payments}
      directions: [Ingress, Egress]   # every selected pod is isolated in each direction

A peer picks endpoints by `namespace` (or `namespaces`), `namespaceLabels`, `labels`, `workload`
(a pod or workload name), `cidr` (pods and external ranges in it), or `not: {peer}`; the keys
of one peer are ANDed. Each failing assertion names a concrete source, destination and port,
and the policies and rules (file:line) behind the verdict.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from analyzer.findings import AssertionResult, Counterexample
from policy.addresses import Family
from policy.cluster import Direction
from policy.documents import Document, parse_documents, read_source
from policy.engine import Analysis
from policy.errors import InputError, Location, Problem
from policy.explain import explain
from policy.ports import PortSet, Protocol

_CONFIG = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class PeerSpec(BaseModel):
    model_config = _CONFIG

    namespace: str | None = None
    namespaces: tuple[str, ...] = ()
    namespace_labels: dict[str, str] = Field(default_factory=dict, alias="namespaceLabels")
    labels: dict[str, str] = Field(default_factory=dict)
    workload: str | None = None
    cidr: str | None = None
    not_: PeerSpec | None = Field(default=None, alias="not")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_network(value, strict=False)
        return value


class Intent(BaseModel):
    model_config = _CONFIG

    name: str | None = None
    from_: PeerSpec | None = Field(default=None, alias="from")
    to: PeerSpec | None = None
    ports: tuple[str, ...] = ()
    expect: str | None = None  # allowed | denied | only
    isolated: PeerSpec | None = None
    directions: tuple[Direction, ...] = (Direction.INGRESS, Direction.EGRESS)

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_port(text)
        return value

    @field_validator("expect")
    @classmethod
    def _expect(cls, value: str | None) -> str | None:
        if value is not None and value not in ("allowed", "denied", "only"):
            raise ValueError("must be one of allowed, denied, only")
        return value


class IntentFile(BaseModel):
    model_config = _CONFIG

    assertions: tuple[Intent, ...]


def parse_port(text: str) -> tuple[int, Protocol]:
    port_text, _, proto = str(text).partition("/")
    try:
        port = int(port_text)
        protocol = Protocol((proto or "TCP").upper())
    except ValueError:
        raise ValueError(f"{text!r}: expected PORT or PORT/PROTOCOL, e.g. 443/TCP") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port must be between 1 and 65535")
    return port, protocol


def load_intents(path: str) -> list[tuple[Intent, Location]]:
    """The intents of a file, each with its location; InputError names file, line and field."""
    docs = list(parse_documents(read_source(path), path))
    if len(docs) != 1:
        raise InputError([Problem(Location(path), "expected one document with `assertions:`")])
    doc = docs[0]
    try:
        parsed = IntentFile.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError([_problem(doc, err) for err in exc.errors()]) from exc
    return [(intent, Location(doc.file, doc.line_of(f"assertions[{i}]"), _title(intent, i)))
            for i, intent in enumerate(parsed.assertions)]


def _problem(doc: Document, err: Any) -> Problem:
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = str(err["msg"]).removeprefix("Value error, ")
    return Problem(Location(doc.file, doc.line_of(path), "intents", path), message)


def _title(intent: Intent, i: int) -> str:
    return intent.name or f"assertion {i + 1}"


def select(analysis: Analysis, spec: PeerSpec | None) -> list[int]:
    """The endpoints a peer spec picks, in endpoint order (None: every endpoint)."""
    count = analysis.endpoints.count
    if spec is None:
        return list(range(count))
    return [j for j in range(count) if _matches(analysis, spec, j)]


def _matches(analysis: Analysis, spec: PeerSpec, j: int) -> bool:
    ep = analysis.endpoints
    if spec.not_ is not None and _matches(analysis, spec.not_, j):
        return False
    is_pod = j < ep.n_pods
    if spec.cidr is not None:
        net = ipaddress.ip_network(spec.cidr, strict=False)
        if is_pod:
            addr = ep.pods[j].address
            if addr is None or addr.version != net.version or addr not in net:
                return False
        else:  # an external range is in when any of its addresses is (its verdicts are uniform)
            ext = ep.externals[j - ep.n_pods]
            lo, hi = int(net.network_address), int(net.broadcast_address)
            family = Family.IPV4 if net.version == 4 else Family.IPV6
            if not any(a <= hi and lo <= b for a, b in ext.addresses.intervals(family)):
                return False
    pod_keys = (spec.namespace is not None or spec.namespaces or spec.namespace_labels
                or spec.labels or spec.workload is not None)
    if not pod_keys:
        return True
    if not is_pod:
        return False
    pod = ep.pods[j]
    namespaces = {*spec.namespaces, *([spec.namespace] if spec.namespace else [])}
    if namespaces and pod.namespace not in namespaces:
        return False
    ns_labels = analysis.cluster.namespaces.get(pod.namespace, {})
    if any(ns_labels.get(k) != v for k, v in spec.namespace_labels.items()):
        return False
    if any(pod.labels.get(k) != v for k, v in spec.labels.items()):
        return False
    return spec.workload is None or pod.name == spec.workload


def check(analysis: Analysis, intent: Intent, location: Location) -> AssertionResult:
    title = location.obj
    if intent.isolated is not None:
        return _check_isolated(analysis, intent, location, title)
    if intent.expect is None:
        return AssertionResult(title, False, "says neither `expect:` nor `isolated:`", location)
    sources, destinations = select(analysis, intent.from_), select(analysis, intent.to)
    if not sources or not destinations:
        side = "from" if not sources else "to"
        return AssertionResult(title, False, f"`{side}` matches no pod or address", location)
    wanted = PortSet()
    for text in intent.ports:
        port, proto = parse_port(text)
        wanted = wanted | PortSet.of(proto, port)
    for s in sources:
        for d in destinations:
            if analysis.is_external(s) and analysis.is_external(d):
                continue
            allowed = analysis.allowed(s, d)
            bad = _violation(intent.expect, allowed, wanted)
            if bad is not None:
                return _failure(analysis, title, location, s, d, bad, intent.expect)
    return AssertionResult(title, True, "holds", location)


def _violation(expect: str, allowed: PortSet, wanted: PortSet) -> PortSet | None:
    """The ports that break the expectation for one pair, or None."""
    if expect == "allowed":
        missing = wanted - allowed if wanted else (PortSet.all() if not allowed else PortSet())
        return missing or None
    if expect == "denied":
        extra = allowed & wanted if wanted else allowed
        return extra or None
    extra = allowed - wanted  # only
    return extra or None


def _failure(analysis: Analysis, title: str, location: Location, s: int, d: int,
             ports: PortSet, expect: str) -> AssertionResult:
    proto, lo, _ = next(ports.items())
    src, dst = analysis.endpoints.key(s), analysis.endpoints.key(d)
    why = explain(analysis, s, d)
    if expect == "allowed":
        message = f"{src} cannot reach {dst} on {lo}/{proto.value}"
        culprits = [p.location for side in (why.egress, why.ingress) for p in side.isolating
                    if not side.allowed.contains(proto, lo)]
    else:
        message = f"{src} can reach {dst} on {lo}/{proto.value}"
        culprits = [Location(m.policy.location.file, m.rule.line or m.policy.location.line,
                             f"{m.policy.key} {m.rule.direction.value.lower()}[{m.rule.index}]")
                    for side in (why.egress, why.ingress) for m in side.matches
                    if m.ports.contains(proto, lo)]
        if not culprits:
            message += " (no policy isolates that path)"
    unique = tuple(dict.fromkeys(culprits))  # a policy can isolate both ends
    return AssertionResult(title, False, message, location,
                           Counterexample(src, dst, lo, proto.value), unique)


def _check_isolated(analysis: Analysis, intent: Intent, location: Location,
                    title: str) -> AssertionResult:
    pods = [j for j in select(analysis, intent.isolated) if not analysis.is_external(j)]
    if not pods:
        return AssertionResult(title, False, "`isolated` matches no pod", location)
    for j in pods:
        for direction in intent.directions:
            if not analysis.isolated(j, direction):
                key = analysis.endpoints.key(j)
                return AssertionResult(
                    title, False, f"{key} is not isolated for {direction.value.lower()}: "
                    f"no policy with policyTypes {direction.value} selects it", location,
                    Counterexample(key, key, None, None))
    return AssertionResult(title, True, "holds", location)
