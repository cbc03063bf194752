"""A deliberately simple reference evaluator of Kubernetes NetworkPolicy (networking.k8s.io/v1).

It answers one question about one packet: may `src` open a connection to `dst` on this
destination protocol and port? It reads the plain dicts the YAML parses to (Namespace, Pod and
NetworkPolicy objects; other kinds are ignored) and imports nothing from the project, so a
mistake in the engine cannot be mirrored here by sharing code. It is written straight from the
API reference, with no caching and no cleverness:

- policies are additive; a connection needs the source's egress AND the destination's ingress;
- a pod is isolated for a direction iff a policy of its namespace selects it and lists that
  direction in policyTypes; policyTypes absent or empty defaults to Ingress, plus Egress when
  spec.egress is non-empty;
- a rule with empty or absent from/to matches every peer, empty or absent ports every port;
- a peer podSelector alone selects pods of the policy's namespace, a namespaceSelector alone every
  pod of the selected namespaces, both together the AND of the two;
- an ipBlock is its cidr (host bits cleared) minus every except, matched against the pod's IP
  (status.podIP: a dual-stack pod is matched on its primary address, as kubefence documents);
- a port's protocol defaults to TCP, an absent port is every port of the protocol, endPort makes
  an inclusive range, a named port resolves against the destination pod's container ports of the
  same protocol (for ingress the policy's own pod, for egress the peer) and matches nothing when
  the destination does not define it;
- hostNetwork pods are never selected by a policy (never isolated) and are matched as peers only
  by ipBlocks, on their node's address (status.hostIP);
- every namespace carries the label kubernetes.io/metadata.name=<its name>.

An endpoint is a pod key `namespace/name` or an IP address outside the cluster (a string such as
`10.0.0.7`); nothing governs an external address's own traffic.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_NAMESPACE = "default"
INGRESS = "Ingress"
EGRESS = "Egress"

Obj = Mapping[str, Any]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _namespace_of(obj: Obj) -> str:
    return _meta(obj).get("namespace") or DEFAULT_NAMESPACE


def pod_key(pod: Obj) -> str:
    return f"{_namespace_of(pod)}/{_meta(pod)['name']}"


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """matchLabels and every matchExpressions requirement, ANDed; `{}` matches everything."""
    if selector is None:
        selector = {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req["key"], req["operator"], req.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"unknown operator {op!r}")
        if not ok:
            return False
    return True


class Cluster:
    """The objects, sorted by kind. Nothing is precomputed beyond that."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        self.namespace_objects: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.policies: list[Obj] = []
        for obj in objects:
            kind = obj.get("kind")
            if kind == "Namespace":
                self.namespace_objects[_meta(obj)["name"]] = obj
            elif kind == "Pod":
                self.pods[pod_key(obj)] = obj
            elif kind == "NetworkPolicy":
                self.policies.append(obj)

    def namespace_labels(self, name: str) -> dict[str, str]:
        obj = self.namespace_objects.get(name)
        labels = dict((_meta(obj).get("labels") or {}) if obj is not None else {})
        labels[NAME_LABEL] = name
        return labels

    # -- one packet ----------------------------------------------------------------------

    def allows(self, src: str, dst: str, protocol: str, port: int) -> bool:
        return (self._direction_allows(src, dst, EGRESS, protocol, port)
                and self._direction_allows(dst, src, INGRESS, protocol, port))

    def _direction_allows(self, subject: str, peer: str, direction: str, protocol: str,
                          port: int) -> bool:
        """Does `subject`'s side of the connection let it through (`peer` is the other end)?"""
        if subject not in self.pods:
            return True  # an external address: no policy governs it
        pod = self.pods[subject]
        policies = [p for p in self.policies
                    if self._selects(p, pod) and direction in policy_types(p)]
        if not policies:
            return True  # not isolated in this direction
        # Named ports resolve on the destination: the subject for ingress, the peer for egress.
        destination = subject if direction == INGRESS else peer
        rules_field, peers_field = ("ingress", "from") if direction == INGRESS else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(rules_field) or []:
                peers = rule.get(peers_field) or []
                if peers and not any(self._peer_matches(x, policy, peer) for x in peers):
                    continue
                ports = rule.get("ports") or []
                if ports and not any(self._port_matches(x, destination, protocol, port)
                                     for x in ports):
                    continue
                return True
        return False

    def _selects(self, policy: Obj, pod: Obj) -> bool:
        if is_host_network(pod):
            return False
        if _namespace_of(pod) != _namespace_of(policy):
            return False
        return selector_matches(policy["spec"].get("podSelector") or {}, _labels(pod))

    def _peer_matches(self, peer: Obj, policy: Obj, endpoint: str) -> bool:
        block = peer.get("ipBlock")
        if block is not None:
            return any(ip_block_contains(block, a) for a in self.addresses_of(endpoint))
        if endpoint not in self.pods:
            return False  # selectors only ever select pods
        pod = self.pods[endpoint]
        if is_host_network(pod):
            return False
        pod_selector = peer.get("podSelector")
        namespace_selector = peer.get("namespaceSelector")
        namespace = _namespace_of(pod)
        if namespace_selector is None:
            namespace_ok = namespace == _namespace_of(policy)
        else:
            namespace_ok = selector_matches(namespace_selector, self.namespace_labels(namespace))
        pod_ok = pod_selector is None or selector_matches(pod_selector, _labels(pod))
        return namespace_ok and pod_ok

    def _port_matches(self, spec: Obj, destination: str, protocol: str, port: int) -> bool:
        if (spec.get("protocol") or "TCP") != protocol:
            return False
        value = spec.get("port")
        if value is None:
            return True
        if isinstance(value, int):
            end = spec.get("endPort")
            return value <= port <= (value if end is None else end)
        if destination not in self.pods:
            return False  # a named port means nothing on an address outside the cluster
        for container_port in served_ports(self.pods[destination]):
            if (container_port.get("name") == value
                    and (container_port.get("protocol") or "TCP") == protocol
                    and container_port["containerPort"] == port):
                return True
        return False

    def addresses_of(self, endpoint: str) -> list[IPAddress]:
        """The address ipBlocks see: the pod's IP (its primary one, status.podIP, on a
        dual-stack pod), a hostNetwork pod's node IP (status.hostIP), or the external address
        itself. A pod without one is never matched by an ipBlock."""
        if endpoint not in self.pods:
            return [ipaddress.ip_address(endpoint)]
        pod = self.pods[endpoint]
        status = pod.get("status") or {}
        if is_host_network(pod):
            text = status.get("hostIP")
        else:
            text = status.get("podIP") or next(
                (p["ip"] for p in status.get("podIPs") or [] if p.get("ip")), None)
        return [ipaddress.ip_address(text)] if text else []


def _labels(pod: Obj) -> Mapping[str, str]:
    return _meta(pod).get("labels") or {}


def is_host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def served_ports(pod: Obj) -> list[Obj]:
    """The ports of the pod's containers and of its sidecars (restartPolicy: Always)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or []
                   if c.get("restartPolicy") == "Always"]
    return [p for c in containers for p in c.get("ports") or []]


def policy_types(policy: Obj) -> set[str]:
    spec = policy["spec"]
    types = spec.get("policyTypes")
    if not types:  # absent or empty: the API server defaults it
        return {INGRESS, EGRESS} if spec.get("egress") else {INGRESS}
    return set(types)


def ip_block_contains(block: Obj, address: IPAddress) -> bool:
    if address not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(address in ipaddress.ip_network(e, strict=False)
                   for e in block.get("except") or [])


def reference_allows(objects: Sequence[Obj] | Cluster, src: str, dst: str, protocol: str,
                     port: int) -> bool:
    """May `src` reach `dst` on `protocol`/`port`? Endpoints are `ns/name` or IP addresses."""
    cluster = objects if isinstance(objects, Cluster) else Cluster(objects)
    return cluster.allows(src, dst, protocol, port)
