"""Why a connection is allowed or denied, read from the same compiled rules as the matrix.

For a (source, destination) pair, each side is explained on its own: the source's egress and the
destination's ingress. A side is either not governed (an external peer), not isolated (no policy
of that direction selects the pod: everything allowed), or isolated by some policies, in which
case the allowed ports are the union of what each of their matching rules contributes. The
connection is allowed on the intersection of the two sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy.cluster import Direction, Policy, Rule
from policy.engine import Analysis
from policy.ports import PortSet


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matches the peer, and the ports it allows toward it."""

    policy: Policy
    rule: Rule
    ports: PortSet


@dataclass(frozen=True)
class SideExplanation:
    direction: Direction
    subject: str  # endpoint key of the side's pod
    governed: bool  # False for an external endpoint: no policy applies to it
    isolating: tuple[Policy, ...]  # the policies of this direction that select the pod
    matches: tuple[RuleMatch, ...]  # their rules that match the peer with some port
    allowed: PortSet

    @property
    def isolated(self) -> bool:
        return bool(self.isolating)


@dataclass(frozen=True)
class PairExplanation:
    source: str
    destination: str
    egress: SideExplanation  # of the source
    ingress: SideExplanation  # of the destination
    allowed: PortSet


def explain_side(
    analysis: Analysis, subject: int, peer: int, direction: Direction
) -> SideExplanation:
    key = analysis.endpoints.key(subject)
    if analysis.is_external(subject):
        return SideExplanation(direction, key, False, (), (), PortSet.all())
    side = analysis.side(direction)
    isolating = tuple(cp.policy for cp in side.isolating[subject])
    if not isolating:
        return SideExplanation(direction, key, True, (), (), PortSet.all())
    matches = []
    allowed = PortSet.empty()
    for rule in side.rules_of[subject]:
        row = analysis.rule_words(rule, subject, peer, direction)
        ports = analysis.atoms.to_ports(analysis.atoms.from_words(row))
        if ports:
            matches.append(RuleMatch(rule.policy, rule.rule, ports))
            allowed = allowed | ports
    return SideExplanation(direction, key, True, isolating, tuple(matches), allowed)


def explain(analysis: Analysis, source: int, destination: int) -> PairExplanation:
    egress = explain_side(analysis, source, destination, Direction.EGRESS)
    ingress = explain_side(analysis, destination, source, Direction.INGRESS)
    allowed = egress.allowed & ingress.allowed
    if analysis.is_external(source) and analysis.is_external(destination):
        allowed = PortSet.empty()
    return PairExplanation(
        analysis.endpoints.key(source),
        analysis.endpoints.key(destination),
        egress,
        ingress,
        allowed,
    )
