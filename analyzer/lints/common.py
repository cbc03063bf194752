"""Shared helpers of the lints: where a finding points, and how groups of pods are named.

Every lint reads the engine's `Analysis` (and the `ClusterState` it was built from); nothing
here evaluates policy semantics. A finding about a policy points at the policy's `Location`
with `field` set to the path concerned and `line` to the rule's line when it is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from policy.cluster import Direction, Peer, PodInfo, Policy, Rule
from policy.engine import Analysis
from policy.errors import Location

MAX_NAMED = 3  # pods named in a message before "and N more"


def policy_location(policy: Policy, field: str, line: int | None = None) -> Location:
    """The policy's location, pointing at `field` (and at `line` when known)."""
    loc = policy.location
    return Location(loc.file, line if line is not None else loc.line, loc.obj, field)


def pod_location(pod: PodInfo, field: str) -> Location:
    loc = pod.location
    return Location(loc.file, loc.line, loc.obj, field)


def rule_field(rule: Rule) -> str:
    """`spec.ingress[0]` or `spec.egress[2]`."""
    return f"spec.{rule.direction.value.lower()}[{rule.index}]"


def peers_field(rule: Rule) -> str:
    """`spec.ingress[0].from` or `spec.egress[2].to`."""
    return rule_field(rule) + (".from" if rule.direction is Direction.INGRESS else ".to")


def rule_location(policy: Policy, rule: Rule, suffix: str = "") -> Location:
    return policy_location(policy, rule_field(rule) + suffix, rule.line)


def peers_of(analysis: Analysis) -> Iterator[tuple[Policy, Rule, str, Peer]]:
    """Every peer of every rule, with the field path that points at it (`...from[1]`)."""
    for cp in analysis.policies:
        policy = cp.policy
        for rule in policy.ingress + policy.egress:
            for i, peer in enumerate(rule.peers):
                yield policy, rule, f"{peers_field(rule)}[{i}]", peer


def name_pods(keys: Iterable[str]) -> str:
    """`a, b, c and 2 more`: a short, deterministic list of pod keys."""
    ordered = sorted(set(keys))
    shown = ", ".join(ordered[:MAX_NAMED])
    rest = len(ordered) - MAX_NAMED
    return f"{shown} and {rest} more" if rest > 0 else shown
