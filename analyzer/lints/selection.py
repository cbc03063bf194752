"""Selectors that select nothing, or select what a policy cannot act on.

- KF102: a policy whose podSelector selects no pod of its namespace (it isolates nothing).
- KF103: a selector peer of a rule that matches no pod (and, for a namespaceSelector alone,
  no namespace): the rule allows less than it reads.
- KF110: a hostNetwork pod matched by a policy's podSelector: policies never apply to such pods.
"""

from __future__ import annotations

from analyzer.findings import Finding, Severity
from analyzer.lints.common import name_pods, peers_of, policy_location
from policy.cluster import Peer
from policy.engine import Analysis
from policy.rules import PolicyCompiler


def peer_compiler(analysis: Analysis) -> PolicyCompiler:
    """The analysis' own compiler, for per-peer questions."""
    return analysis.compiler


def selects_nothing(analysis: Analysis) -> list[Finding]:
    """KF102."""
    out = []
    for cp in analysis.policies:
        if analysis.subjects_of(cp).any():
            continue
        policy = cp.policy
        out.append(Finding(
            "KF102", Severity.WARNING,
            f"NetworkPolicy {policy.key}: podSelector {policy.pod_selector} selects no pod "
            f"in namespace {policy.namespace}",
            "fix the podSelector's labels (or the pods'), or delete the policy",
            policy_location(policy, "spec.podSelector"),
        ))
    return out


def _namespace_exists(analysis: Analysis, peer: Peer) -> bool:
    """A namespaceSelector-only peer that matches a namespace (even one without pods yet)."""
    sel = peer.namespace_selector
    if sel is None or peer.pod_selector is not None:
        return False
    return any(sel.matches(labels) for labels in analysis.cluster.namespaces.values())


def empty_peers(analysis: Analysis) -> list[Finding]:
    """KF103."""
    compiler = peer_compiler(analysis)
    n = analysis.endpoints.n_pods
    out = []
    for policy, rule, field, peer in peers_of(analysis):
        if peer.ip_block is not None:
            continue
        if compiler.peer_matches(policy, peer)[:n].any():
            continue
        if _namespace_exists(analysis, peer):
            continue
        out.append(Finding(
            "KF103", Severity.WARNING,
            f"NetworkPolicy {policy.key}: {field} ({peer}) matches no pod",
            "check the selector's labels against the pods' and namespaces' labels "
            "(a podSelector alone only looks in the policy's namespace)",
            policy_location(policy, field, rule.line),
        ))
    return out


def host_network_selected(analysis: Analysis) -> list[Finding]:
    """KF110: the raw podSelector match, since the engine leaves hostNetwork pods out."""
    host_pods = [p for p in analysis.cluster.pods if p.host_network]
    out = []
    for cp in analysis.policies:
        policy = cp.policy
        hit = [p.key for p in host_pods
               if p.namespace == policy.namespace and policy.pod_selector.matches(p.labels)]
        if not hit:
            continue
        out.append(Finding(
            "KF110", Severity.WARNING,
            f"NetworkPolicy {policy.key}: podSelector {policy.pod_selector} matches hostNetwork "
            f"pod(s) {name_pods(hit)}, which no policy can isolate",
            "protect hostNetwork pods with host firewall rules; narrow the podSelector "
            "to make the policy's scope explicit",
            policy_location(policy, "spec.podSelector"),
        ))
    return out
