"""KF107: a rule whose removal would not change what any pod allows.

For each pod a policy selects, the engine's profile row (`Side.row(profile)`) is the OR of
the contributions of the rules applying to the pod (`Side.rules_of`). A rule is redundant for a
pod when the OR of the *other* rules' contributions (`Analysis.add_rule`) already
equals that row; it is reported only when redundant for every pod the policy selects.
Rules are considered last first, and a rule found redundant is left out when judging the
others, so two identical rules yield one finding (for the later one), and every reported rule
can be removed together.
"""

from __future__ import annotations

import numpy as np

from analyzer.findings import Finding, Severity
from analyzer.lints.common import policy_location, rule_field
from policy.cluster import Direction
from policy.engine import Analysis
from policy.rules import CompiledRule


def _redundant_for(analysis: Analysis, rule: CompiledRule, subject: int,
                   direction: Direction, removed: set[int]) -> bool:
    side = analysis.side(direction)
    ep, words = analysis.endpoints, analysis.atoms.words
    rest = np.zeros((ep.count, words), dtype=np.uint64)
    for other in side.rules_of[subject]:
        if other is not rule and other.id not in removed:
            analysis.add_rule(rest, other, subject, direction)
    return bool(np.array_equal(rest, side.row(int(side.profile_of[subject]))))


def redundant_rules(analysis: Analysis) -> list[Finding]:
    """KF107."""
    candidates: list[tuple[CompiledRule, Direction, list[int]]] = []
    for cp in analysis.policies:
        subjects = analysis.subjects_of(cp).nonzero()[0].tolist()
        if not subjects:
            continue
        for direction in Direction:
            if direction in cp.policy.policy_types:
                candidates.extend((r, direction, subjects) for r in cp.rules[direction])
    removed: set[int] = set()
    out = []
    for rule, direction, subjects in sorted(candidates, key=lambda c: -c[0].id):
        side = analysis.side(direction)
        # Pods of one profile see the same rules and the same arrays: one of each suffices.
        reps = {int(side.profile_of[s]): s for s in subjects}
        if not all(_redundant_for(analysis, rule, s, direction, removed) for s in reps.values()):
            continue
        removed.add(rule.id)
        policy = rule.policy
        out.append(Finding(
            "KF107", Severity.NOTE,
            f"NetworkPolicy {policy.key}: {rule_field(rule.rule)} allows nothing the other "
            f"{direction.value.lower()} rules of the pods it applies to do not already allow",
            "delete the rule, or fix its peers or ports if it was meant to allow more",
            policy_location(policy, rule_field(rule.rule), rule.rule.line),
        ))
    return out
