"""Namespaces and pods left open.

- KF108: a namespace where some pods are isolated for ingress while others are selected by no
  policy at all: the namespace has no default deny, and new pods there start open.
- KF109: pods not isolated for ingress, which every pod of every namespace (and every external
  address) may reach on every port, as far as their own ingress goes; one note per namespace.
hostNetwork pods are left out of both: no policy can isolate them (KF110 is about them).
"""

from __future__ import annotations

import numpy as np

from analyzer.findings import Finding, Severity
from analyzer.lints.common import name_pods, pod_location, policy_location
from policy.cluster import Direction, PodInfo
from policy.engine import Analysis
from policy.errors import Location


def _by_namespace(analysis: Analysis) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, pod in enumerate(analysis.endpoints.pods):
        if not pod.host_network:
            out.setdefault(pod.namespace, []).append(i)
    return out


def no_default_deny(analysis: Analysis) -> list[Finding]:
    """KF108."""
    pods = analysis.endpoints.pods
    selected = np.zeros(len(pods), dtype=bool)
    for cp in analysis.policies:
        selected |= analysis.subjects_of(cp)
    ingress = analysis.side(Direction.INGRESS)
    out = []
    for namespace, members in sorted(_by_namespace(analysis).items()):
        isolated = [i for i in members if ingress.isolating[i]]
        open_pods = [pods[i].key for i in members if not selected[i]]
        if not isolated or not open_pods:
            continue
        policy = ingress.isolating[isolated[0]][0].policy
        out.append(Finding(
            "KF108", Severity.WARNING,
            f"namespace {namespace} has no default deny: selected by no policy: "
            f"{name_pods(open_pods)}; isolated for ingress: "
            f"{name_pods(pods[i].key for i in isolated)}",
            f"add a default-deny policy to namespace {namespace} (podSelector: {{}}, "
            "policyTypes: [Ingress]) and allow what each pod needs",
            policy_location(policy, "spec.podSelector"),
        ))
    return out


def open_pods(analysis: Analysis) -> list[Finding]:
    """KF109."""
    pods = analysis.endpoints.pods
    out = []
    for namespace, members in sorted(_by_namespace(analysis).items()):
        open_ = [pods[i] for i in members if not analysis.isolated(i, Direction.INGRESS)]
        if not open_:
            continue
        out.append(Finding(
            "KF109", Severity.NOTE,
            f"namespace {namespace}: not isolated for ingress, so open to every namespace "
            f"on every port: {name_pods(p.key for p in open_)}",
            f"select these pods with an ingress policy in namespace {namespace} "
            "(a default deny, then the allows they need)",
            _anchor(open_),
        ))
    return out


def _anchor(open_: list[PodInfo]) -> Location:
    """The first open pod's (or workload's) object, in input order: no policy is about it."""
    first = min(open_, key=lambda p: (p.location.file, p.location.line or 0, p.key))
    return pod_location(first, "metadata.labels")
