"""Structural problems of a rule's peers.

- KF105: the AND/OR trap: a `from`/`to` list holding a namespaceSelector-only peer next to a
  podSelector-only peer. They are ORed; the author usually meant one peer with both (ANDed).
- KF106: ipBlock problems: a block that also matches pods' own addresses (ipBlocks match pod
  IPs as well as external addresses), and a CIDR with host bits set (reported by the loader,
  turned into a finding here).
"""

from __future__ import annotations

from analyzer.findings import Finding, Severity
from analyzer.lints.common import name_pods, peers_field, peers_of, policy_location
from analyzer.lints.selection import peer_compiler
from policy.cluster import Peer
from policy.engine import Analysis

HOST_BITS = "host bits"


def _ns_only(peer: Peer) -> bool:
    return peer.namespace_selector is not None and peer.pod_selector is None


def _pod_only(peer: Peer) -> bool:
    return peer.pod_selector is not None and peer.namespace_selector is None


def and_or_trap(analysis: Analysis) -> list[Finding]:
    """KF105."""
    out = []
    for cp in analysis.policies:
        policy = cp.policy
        for rule in policy.ingress + policy.egress:
            ns_peer = next((p for p in rule.peers if _ns_only(p)), None)
            pod_peer = next((p for p in rule.peers if _pod_only(p)), None)
            if ns_peer is None or pod_peer is None:
                continue
            field = peers_field(rule)
            out.append(Finding(
                "KF105", Severity.WARNING,
                f"NetworkPolicy {policy.key}: {field} lists `{ns_peer}` and `{pod_peer}` as "
                "separate peers, which are ORed",
                "to mean pods matching both, put namespaceSelector and podSelector in one "
                "peer (one `-` item)",
                policy_location(policy, field, rule.line),
            ))
    return out


def ip_blocks(analysis: Analysis) -> list[Finding]:
    """KF106."""
    compiler = peer_compiler(analysis)
    pods = analysis.endpoints.pods
    out = []
    for policy, rule, peer_field, peer in peers_of(analysis):
        if peer.ip_block is None:
            continue
        field = f"{peer_field}.ipBlock"
        services = sorted(key for key, ips in analysis.cluster.service_ips.items()
                          if any(peer.ip_block.addresses.contains(ip) for ip in ips))
        if services:
            out.append(Finding(
                "KF106", Severity.WARNING,
                f"NetworkPolicy {policy.key}: ipBlock {peer.ip_block} covers the "
                f"cluster IP of Service {name_pods(services)}; traffic to a Service is "
                "usually translated to its pods' addresses before policy applies",
                "allow the Service's pods with podSelector/namespaceSelector instead",
                policy_location(policy, field, rule.line),
            ))
        matched = compiler.peer_matches(policy, peer)[: len(pods)]
        hit = [pods[j].key for j in matched.nonzero()[0].tolist()
               if not pods[j].host_network]
        if not hit:
            continue
        out.append(Finding(
            "KF106", Severity.WARNING,
            f"NetworkPolicy {policy.key}: ipBlock {peer.ip_block} also matches the "
            f"pod address(es) of {name_pods(hit)}",
            "select pods with podSelector/namespaceSelector, and carve pod CIDRs out "
            "of the block with `except`",
            policy_location(policy, field, rule.line),
        ))
    for warning in analysis.cluster.warnings:
        if HOST_BITS not in warning.message:
            continue
        obj = warning.location.obj
        out.append(Finding(
            "KF106", Severity.WARNING,
            f"{obj}: {warning.message}" if obj else warning.message,
            "write the CIDR as its network address (host bits zero)",
            warning.location,
        ))
    return out
