"""KF104: a named port that no destination pod defines.

A named port resolves against the *destination* pod's container ports with the same protocol:
for an ingress rule the pods the policy selects, for an egress rule the pods the rule's peers
match (toward an external address a named port matches nothing). When no destination pod
defines the name for that protocol, the port allows nothing; the message says when some pod
defines the name with another protocol, the usual slip.
"""

from __future__ import annotations

from analyzer.findings import Finding, Severity
from analyzer.lints.common import name_pods, policy_location, rule_field
from policy.cluster import Direction, PodInfo
from policy.engine import Analysis
from policy.rules import CompiledRule


def _destinations(analysis: Analysis, subjects: list[int], rule: CompiledRule,
                  ) -> tuple[list[PodInfo], bool]:
    """The destination pods of a rule's named ports, and whether it also reaches externals."""
    pods = analysis.endpoints.pods
    n = len(pods)
    if rule.rule.direction is Direction.INGRESS:
        return [pods[i] for i in subjects], False
    peers = analysis.peers_of(rule)
    return [pods[j] for j in peers[:n].nonzero()[0].tolist()], bool(peers[n:].any())


def undefined_named_ports(analysis: Analysis) -> list[Finding]:
    """KF104."""
    out = []
    for cp in analysis.policies:
        policy = cp.policy
        subjects = analysis.subjects_of(cp).nonzero()[0].tolist()
        for direction in Direction:
            for rule in cp.rules[direction]:
                dests, external = _destinations(analysis, subjects, rule)
                if not dests and not external:
                    continue  # the rule reaches nothing: KF102/KF103 say why
                for k, port in enumerate(rule.rule.ports):
                    if not isinstance(port.port, str):
                        continue
                    name, proto = port.port, port.protocol
                    if any(p.resolve_named_port(name, proto) is not None for p in dests):
                        continue
                    other = sorted({f"{p.key} ({s.protocol.value})" for p in dests
                                    for s in p.ports if s.name == name})
                    if other:
                        why = f"; it is defined with another protocol on {name_pods(other)}"
                    elif dests:
                        why = f" (destinations: {name_pods(p.key for p in dests)})"
                    else:
                        why = " (the rule's peers are external addresses only)"
                    field = f"{rule_field(rule.rule)}.ports[{k}]"
                    out.append(Finding(
                        "KF104", Severity.ERROR,
                        f"NetworkPolicy {policy.key}: named port {name}/{proto.value} is "
                        f"defined by no destination pod{why}",
                        "use a container port name the destination pods define with that "
                        "protocol, or a port number",
                        policy_location(policy, field, rule.rule.line),
                    ))
    return out
