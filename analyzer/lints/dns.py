"""KF101: pods isolated for egress that cannot resolve names.

A pod isolated for egress needs an explicit allow toward the cluster DNS: UDP 53 and TCP 53
(large answers and zone transfers fall back to TCP). The DNS servers are the pods labelled
`k8s-app: kube-dns` in `kube-system`; when the input has none, the lint asks instead whether
the pod reaches some external address (a resolver outside the cluster) on both ports, and says
so. Reachability is the engine's answer (`Analysis.allowed`): both ends' policies count.
Affected pods are grouped by namespace and by the policies isolating them: one finding each.
"""

from __future__ import annotations

from analyzer.findings import Finding, Severity
from analyzer.lints.common import name_pods, policy_location
from policy.cluster import Direction
from policy.engine import Analysis
from policy.ports import Protocol
from policy.rules import CompiledPolicy

DNS_NAMESPACE = "kube-system"
DNS_LABEL = ("k8s-app", "kube-dns")
DNS_PORT = 53


def dns_servers(analysis: Analysis) -> list[int]:
    """Endpoint indices of the cluster DNS pods."""
    key, value = DNS_LABEL
    return [j for j, p in enumerate(analysis.endpoints.pods)
            if p.namespace == DNS_NAMESPACE and p.labels.get(key) == value]


def _reaches_dns(analysis: Analysis, src: int, targets: list[int]) -> bool:
    for dst in targets:
        ports = analysis.allowed(src, dst)
        if ports.contains(Protocol.UDP, DNS_PORT) and ports.contains(Protocol.TCP, DNS_PORT):
            return True
    return False


def egress_without_dns(analysis: Analysis) -> list[Finding]:
    """KF101."""
    ep = analysis.endpoints
    servers = dns_servers(analysis)
    targets = servers or list(range(ep.n_pods, ep.count))
    side = analysis.side(Direction.EGRESS)
    groups: dict[tuple[str, tuple[int, ...]], tuple[tuple[CompiledPolicy, ...], list[str]]] = {}
    for i, pod in enumerate(ep.pods):
        if not analysis.isolated(i, Direction.EGRESS) or _reaches_dns(analysis, i, targets):
            continue
        isolating = side.isolating[i]
        key = (pod.namespace, tuple(id(cp) for cp in isolating))
        groups.setdefault(key, (isolating, []))[1].append(pod.key)
    out = []
    for (namespace, _), (isolating, keys) in groups.items():
        first = isolating[0].policy
        names = ", ".join(cp.policy.key for cp in isolating)
        if servers:
            what = f"kube-dns ({DNS_NAMESPACE}, k8s-app=kube-dns)"
        else:
            what = "any external address (the input has no kube-dns pod)"
        field = "spec.egress" if first.egress else "spec.policyTypes"
        out.append(Finding(
            "KF101", Severity.WARNING,
            f"egress of {name_pods(keys)} (isolated by {names}) cannot reach {what} "
            f"on both UDP {DNS_PORT} and TCP {DNS_PORT}",
            f"allow egress to k8s-app=kube-dns in {DNS_NAMESPACE} on UDP and TCP {DNS_PORT} "
            f"for namespace {namespace}",
            policy_location(first, field),
        ))
    return out
