"""The API server's validation of the objects kubefence reads, as pure functions.

Mirrors upstream's `ValidateNetworkPolicy` (names, label selectors, ports and endPort, peers,
ipBlock CIDRs and excepts, policyTypes) and the parts of Pod validation that NetworkPolicy
semantics depend on (container port names, numbers and protocols, pod IPs). Each function
returns `FieldError`s with a field path; the loader turns them into located `Problem`s.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from policy.addresses import parse_cidr
from policy.models import (
    Container,
    NetworkPolicy,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    Pod,
    PodSpec,
)
from policy.ports import MAX_PORT, MIN_PORT, Protocol
from policy.selectors import LabelSelector, Operator


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SVC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROTOCOLS = tuple(p.value for p in Protocol)


def dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1123_LABEL.match(value):
        return (
            "must be a lowercase RFC 1123 label "
            "(a-z, 0-9 and '-', starting and ending alphanumeric)"
        )
    return None


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(value):
        return (
            "must be a lowercase RFC 1123 subdomain "
            "(a-z, 0-9, '-' and '.', starting and ending alphanumeric)"
        )
    return None


def qualified_name(value: str) -> str | None:
    """A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 chars."""
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        if dns1123_subdomain(prefix):
            return "prefix part must be a DNS-1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumerics, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return None


def label_value(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL_VALUE.match(value):
        return "must be empty or alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def port_name(value: str) -> str | None:
    """IANA_SVC_NAME: at most 15 characters, a-z 0-9 '-', at least one letter, no '--'."""
    if len(value) > 15:
        return "must be no more than 15 characters"
    if not _SVC_NAME.match(value):
        return "must contain only lowercase alphanumerics and '-', starting and ending alphanumeric"
    if "--" in value:
        return "must not contain consecutive hyphens"
    if not any(c.isalpha() for c in value):
        return "must contain at least one letter"
    return None


def port_number(value: int) -> str | None:
    if not MIN_PORT <= value <= MAX_PORT:
        return f"must be between {MIN_PORT} and {MAX_PORT}, inclusive"
    return None


def validate_labels(labels: dict[str, str], path: str) -> list[FieldError]:
    errs = []
    for k, v in labels.items():
        if msg := qualified_name(k):
            errs.append(FieldError(f"{path}[{k}]", f"invalid label key {k!r}: {msg}"))
        if msg := label_value(v):
            errs.append(FieldError(f"{path}[{k}]", f"invalid label value {v!r}: {msg}"))
    return errs


def validate_selector(sel: LabelSelector, path: str) -> list[FieldError]:
    errs = validate_labels(sel.match_labels, f"{path}.matchLabels")
    for i, req in enumerate(sel.match_expressions):
        rpath = f"{path}.matchExpressions[{i}]"
        if msg := qualified_name(req.key):
            errs.append(FieldError(f"{rpath}.key", f"invalid key {req.key!r}: {msg}"))
        ops = [o.value for o in Operator]
        if req.operator not in ops:
            errs.append(
                FieldError(
                    f"{rpath}.operator",
                    f"unsupported operator {req.operator!r}; supported: {', '.join(ops)}",
                )
            )
        elif req.operator in (Operator.IN, Operator.NOT_IN) and not req.values:
            errs.append(
                FieldError(
                    f"{rpath}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
        elif req.operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and req.values:
            errs.append(
                FieldError(
                    f"{rpath}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
        for j, v in enumerate(req.values):
            if msg := label_value(v):
                errs.append(FieldError(f"{rpath}.values[{j}]", f"invalid value {v!r}: {msg}"))
    return errs


def validate_meta(name: str, namespace: str | None, path: str = "metadata") -> list[FieldError]:
    errs = []
    if not name:
        errs.append(FieldError(f"{path}.name", "name is required"))
    elif msg := dns1123_subdomain(name):
        errs.append(FieldError(f"{path}.name", f"invalid name {name!r}: {msg}"))
    if namespace is not None and (msg := dns1123_label(namespace)):
        errs.append(FieldError(f"{path}.namespace", f"invalid namespace {namespace!r}: {msg}"))
    return errs


def validate_policy_port(port: NetworkPolicyPort, path: str) -> list[FieldError]:
    errs = []
    if port.protocol is not None and port.protocol not in _PROTOCOLS:
        errs.append(
            FieldError(
                f"{path}.protocol",
                f"unsupported protocol {port.protocol!r}; supported: {', '.join(_PROTOCOLS)}",
            )
        )
    if isinstance(port.port, int):
        if msg := port_number(port.port):
            errs.append(FieldError(f"{path}.port", f"{port.port}: {msg}"))
        if port.end_port is not None:
            if port.end_port < port.port:
                errs.append(
                    FieldError(
                        f"{path}.endPort",
                        f"{port.end_port}: must be greater than or equal to `port`",
                    )
                )
            if msg := port_number(port.end_port):
                errs.append(FieldError(f"{path}.endPort", f"{port.end_port}: {msg}"))
    elif isinstance(port.port, str):
        if port.end_port is not None:
            errs.append(
                FieldError(f"{path}.endPort", "may not be specified when `port` is non-numeric")
            )
        if msg := port_name(port.port):
            errs.append(FieldError(f"{path}.port", f"invalid port name {port.port!r}: {msg}"))
    elif port.end_port is not None:
        errs.append(
            FieldError(f"{path}.endPort", "may not be specified when `port` is not specified")
        )
    return errs


def validate_peer(peer: NetworkPolicyPeer, path: str) -> list[FieldError]:
    errs = []
    kinds = 0
    if peer.pod_selector is not None:
        kinds += 1
        errs += validate_selector(peer.pod_selector, f"{path}.podSelector")
    if peer.namespace_selector is not None:
        kinds += 1
        errs += validate_selector(peer.namespace_selector, f"{path}.namespaceSelector")
    if peer.ip_block is not None:
        kinds += 1
        errs += _validate_ip_block(peer.ip_block.cidr, peer.ip_block.except_, f"{path}.ipBlock")
    if kinds == 0:
        errs.append(FieldError(path, "must specify a peer"))
    elif kinds > 1 and peer.ip_block is not None:
        errs.append(FieldError(path, "may not specify both ipBlock and another peer"))
    return errs


def _validate_ip_block(cidr: str, excepts: tuple[str, ...], path: str) -> list[FieldError]:
    if not cidr:
        return [FieldError(f"{path}.cidr", "cidr is required")]
    try:
        net, _ = parse_cidr(cidr)
    except ValueError:
        return [FieldError(f"{path}.cidr", f"{cidr!r}: not a valid CIDR")]
    errs = []
    for i, text in enumerate(excepts):
        epath = f"{path}.except[{i}]"
        try:
            exc, _ = parse_cidr(text)
        except ValueError:
            errs.append(FieldError(epath, f"{text!r}: not a valid CIDR"))
            continue
        # Upstream: cidrIPNet.Contains(exceptIP) && cidrMaskLen < exceptMaskLen
        if (
            exc.version != net.version
            or exc.network_address not in net
            or exc.prefixlen <= net.prefixlen
        ):
            errs.append(FieldError(epath, f"{text!r}: must be a strict subset of `cidr` {cidr!r}"))
    return errs


def validate_network_policy(np: NetworkPolicy) -> list[FieldError]:
    errs = validate_meta(np.metadata.name, np.metadata.namespace)
    spec = np.spec
    if spec.pod_selector is None:
        errs.append(FieldError("spec.podSelector", "podSelector is required ({} selects all pods)"))
    else:
        errs += validate_selector(spec.pod_selector, "spec.podSelector")
    for i, ingress in enumerate(spec.ingress):
        for j, port in enumerate(ingress.ports):
            errs += validate_policy_port(port, f"spec.ingress[{i}].ports[{j}]")
        for j, peer in enumerate(ingress.from_):
            errs += validate_peer(peer, f"spec.ingress[{i}].from[{j}]")
    for i, egress in enumerate(spec.egress):
        for j, port in enumerate(egress.ports):
            errs += validate_policy_port(port, f"spec.egress[{i}].ports[{j}]")
        for j, peer in enumerate(egress.to):
            errs += validate_peer(peer, f"spec.egress[{i}].to[{j}]")
    if spec.policy_types is not None:
        if len(spec.policy_types) > 2:
            errs.append(FieldError("spec.policyTypes", "may not specify more than two policyTypes"))
        for i, t in enumerate(spec.policy_types):
            if t not in ("Ingress", "Egress"):
                errs.append(
                    FieldError(
                        f"spec.policyTypes[{i}]",
                        f"unsupported value {t!r}; supported: Ingress, Egress",
                    )
                )
        if len(set(spec.policy_types)) != len(spec.policy_types):
            errs.append(FieldError("spec.policyTypes", "duplicate value"))
    return errs


def _validate_containers(
    containers: tuple[Container, ...], path: str, seen: set[str]
) -> list[FieldError]:
    errs = []
    for i, c in enumerate(containers):
        for j, p in enumerate(c.ports):
            ppath = f"{path}[{i}].ports[{j}]"
            if msg := port_number(p.container_port):
                errs.append(FieldError(f"{ppath}.containerPort", f"{p.container_port}: {msg}"))
            if p.protocol is not None and p.protocol not in _PROTOCOLS:
                errs.append(
                    FieldError(
                        f"{ppath}.protocol",
                        f"unsupported protocol {p.protocol!r}; supported: {', '.join(_PROTOCOLS)}",
                    )
                )
            if p.name is not None:
                if msg := port_name(p.name):
                    errs.append(FieldError(f"{ppath}.name", f"invalid port name {p.name!r}: {msg}"))
                elif p.name in seen:
                    errs.append(
                        FieldError(
                            f"{ppath}.name",
                            f"duplicate port name {p.name!r}: must be unique within the pod",
                        )
                    )
                seen.add(p.name)
    return errs


def validate_pod_spec(spec: PodSpec, path: str) -> list[FieldError]:
    seen: set[str] = set()
    return _validate_containers(spec.containers, f"{path}.containers", seen) + _validate_containers(
        spec.init_containers, f"{path}.initContainers", seen
    )


def validate_pod(pod: Pod) -> list[FieldError]:
    errs = validate_meta(pod.metadata.name, pod.metadata.namespace)
    errs += validate_labels(pod.metadata.labels, "metadata.labels")
    errs += validate_pod_spec(pod.spec, "spec")
    st = pod.status
    ips = [("status.podIP", st.pod_ip)] + [
        (f"status.podIPs[{i}].ip", p.ip) for i, p in enumerate(st.pod_ips)
    ]
    if st.host_ip:
        ips.append(("status.hostIP", st.host_ip))
    for path, ip in ips:
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                errs.append(FieldError(path, f"{ip!r}: not a valid IP address"))
    return errs
