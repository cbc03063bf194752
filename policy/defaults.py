"""The API server's defaulting, applied once at load: models in, typed cluster objects out.

- a port without a protocol is TCP (`If not specified, this field defaults to TCP.`);
- policyTypes, when absent, is Ingress plus Egress when the policy has egress rules (`If this
  field is not specified, it will default based on the existence of ingress or egress rules`);
- a CIDR with host bits set is read as its network, as API servers before strict CIDR
  validation (KEP-4858) accepted it and enforcers read it, with a warning returned as a value
  (1.37's API server refuses it: `check --fail-on warning` catches it, lint KF106);
- every namespace carries `kubernetes.io/metadata.name: <name>`.
Only validated models come here: nothing is re-checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from policy.addresses import AddressSet, IPAddress, parse_cidr
from policy.cluster import (
    NAMESPACE_NAME_LABEL,
    Direction,
    IPBlockPeer,
    Peer,
    PodInfo,
    Policy,
    PolicyPort,
    Rule,
    ServedPort,
)
from policy.errors import Location, Problem
from policy.models import (
    IPBlock,
    NetworkPolicy,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    PodSpec,
    PodStatus,
)
from policy.ports import Protocol

DEFAULT_NAMESPACE = "default"


def namespace_labels(name: str, labels: Mapping[str, str]) -> dict[str, str]:
    """The API server sets the immutable name label on every namespace, overriding any value."""
    return {**labels, NAMESPACE_NAME_LABEL: name}


def _masked_cidr(text: str, loc: Location, warnings: list[Problem]) -> str:
    net, host_bits = parse_cidr(text)
    if host_bits:
        warnings.append(
            Problem(loc, f"{text} has host bits set: read as {net}; API servers with strict "
                         f"CIDR validation (KEP-4858, on in 1.37) refuse it")
        )
    return str(net)


def _ip_block(block: IPBlock, loc: Location, warnings: list[Problem]) -> IPBlockPeer:
    cidr = _masked_cidr(block.cidr, _sub(loc, "cidr"), warnings)
    excepts = tuple(
        _masked_cidr(e, _sub(loc, f"except[{i}]"), warnings) for i, e in enumerate(block.except_)
    )
    addresses = AddressSet.from_cidr(cidr)
    for e in excepts:
        addresses = addresses - AddressSet.from_cidr(e)
    return IPBlockPeer(cidr=cidr, excepts=excepts, addresses=addresses)


def _sub(loc: Location, child: str) -> Location:
    return Location(loc.file, loc.line, loc.obj, f"{loc.field}.{child}")


def _peer(peer: NetworkPolicyPeer, loc: Location, warnings: list[Problem]) -> Peer:
    block = None
    if peer.ip_block is not None:
        block = _ip_block(peer.ip_block, _sub(loc, "ipBlock"), warnings)
    return Peer(peer.pod_selector, peer.namespace_selector, block)


def _port(port: NetworkPolicyPort) -> PolicyPort:
    return PolicyPort(Protocol(port.protocol or "TCP"), port.port, port.end_port)


def build_policy(
    np: NetworkPolicy,
    location: Location,
    rule_lines: Mapping[tuple[Direction, int], int],
    warnings: list[Problem],
) -> Policy:
    """A validated NetworkPolicy, defaulted. `rule_lines` gives each rule's source line."""
    spec = np.spec
    namespace = np.metadata.namespace or DEFAULT_NAMESPACE
    rules: dict[Direction, list[Rule]] = {Direction.INGRESS: [], Direction.EGRESS: []}
    sources = [(Direction.INGRESS, r.from_, r.ports, "ingress", "from") for r in spec.ingress]
    sources += [(Direction.EGRESS, r.to, r.ports, "egress", "to") for r in spec.egress]
    for direction, peers, ports, field, peer_field in sources:
        index = len(rules[direction])
        base = Location(location.file, location.line, location.obj, f"spec.{field}[{index}]")
        rules[direction].append(
            Rule(
                direction=direction,
                index=index,
                peers=tuple(
                    _peer(p, _sub(base, f"{peer_field}[{i}]"), warnings)
                    for i, p in enumerate(peers)
                ),
                ports=tuple(_port(p) for p in ports),
                line=rule_lines.get((direction, index)),
            )
        )
    if spec.policy_types:  # upstream defaults when len(policyTypes) == 0, not only when absent
        types = frozenset(Direction(t) for t in spec.policy_types)
    else:
        types = frozenset({Direction.INGRESS} | ({Direction.EGRESS} if spec.egress else set()))
    assert spec.pod_selector is not None  # validated
    return Policy(
        namespace=namespace,
        name=np.metadata.name,
        pod_selector=spec.pod_selector,
        policy_types=types,
        ingress=tuple(rules[Direction.INGRESS]),
        egress=tuple(rules[Direction.EGRESS]),
        location=location,
    )


def served_ports(spec: PodSpec) -> tuple[ServedPort, ...]:
    containers = spec.containers + tuple(
        c for c in spec.init_containers if c.restart_policy == "Always"
    )
    return tuple(
        ServedPort(p.name, Protocol(p.protocol or "TCP"), p.container_port)
        for c in containers
        for p in c.ports
    )


def pod_ips(status: PodStatus) -> tuple[IPAddress, ...]:
    """`podIPs` (primary first), falling back to `podIP`; duplicates dropped."""
    texts = [p.ip for p in status.pod_ips] or ([status.pod_ip] if status.pod_ip else [])
    if status.pod_ip and status.pod_ip not in texts:
        texts.insert(0, status.pod_ip)
    out: list[IPAddress] = []
    for t in texts:
        ip = ipaddress.ip_address(t)
        if ip not in out:
            out.append(ip)
    return tuple(out)


def build_pod(
    namespace: str | None,
    name: str,
    labels: Mapping[str, str],
    spec: PodSpec,
    status: PodStatus | None,
    kind: str,
    location: Location,
) -> PodInfo:
    status = status or PodStatus()
    return PodInfo(
        namespace=namespace or DEFAULT_NAMESPACE,
        name=name,
        labels=dict(labels),
        ports=served_ports(spec),
        ips=pod_ips(status),
        host_network=spec.host_network,
        host_ip=ipaddress.ip_address(status.host_ip) if status.host_ip else None,
        node_name=spec.node_name,
        kind=kind,
        location=location,
    )
