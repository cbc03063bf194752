"""Re-analysis after NetworkPolicies change: recompute only what the change touches.

When the pods and namespaces are the same and only policies were added, removed or changed, the
new analysis shares the old one's endpoints, port atoms, peer classes and compiled policies. It
compiles only the changed policies, and finds profiles again only for the classes those policies
select, before or after the change; a profile whose rules were seen before is reused, and only
new profiles get rows built.

That is exact when the change needs nothing finer than what is there: every port number it
mentions already starts or ends a port atom, every named port it uses is one the classes already
agree on, every CIDR it mentions (and every CIDR it stops mentioning) leaves the external ranges
as they are, and each of its selectors and ipBlocks takes every peer class whole. Otherwise
`update` returns the reason, and `Analysis.updated` analyses from scratch.

When pods changed too, they are taken first, against the old policies (`policy.podchanges`:
pods that join peer classes already there), and the policies after that, as above. The
namespaces must be the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from policy.classes import inside
from policy.cluster import ClusterState, Direction, Policy
from policy.podchanges import update_pods
from policy.ports import MAX_PORT
from policy.profiles import update_side
from policy.rules import CompiledPolicy, CompiledRule

if TYPE_CHECKING:
    from policy.engine import Analysis

Networks = Counter[str]


def cidr_counts(policies: Iterable[Policy]) -> Networks:
    """How many times each CIDR is mentioned (as `cidr` or in `except`; both are in the API
    server's canonical form since loading, so equal networks are equal strings)."""
    out: Networks = Counter()
    for policy in policies:
        for rule in policy.ingress + policy.egress:
            for peer in rule.peers:
                if peer.ip_block is not None:
                    out[peer.ip_block.cidr] += 1
                    out.update(peer.ip_block.excepts)
    return out


def update(old: Analysis, cluster: ClusterState) -> Analysis | str:
    """The analysis of `cluster` built from `old`, or why it cannot be."""
    if dict(cluster.namespaces) != dict(old.cluster.namespaces):
        return "the namespaces changed"
    if cluster.pods is not old.cluster.pods and cluster.pods != old.cluster.pods:
        # Pods first, against the old policies; then the policies, as below.
        step = update_pods(old, replace(cluster, policies=old.cluster.policies))
        if isinstance(step, str) or cluster.policies is old.cluster.policies:
            return step if isinstance(step, str) else step.with_cluster(cluster)
        old = step
    old_keys = [cp.policy.key for cp in old.policies]
    new_keys = [p.key for p in cluster.policies]
    new_by_key = dict(zip(new_keys, cluster.policies, strict=True))
    old_by_key = dict(zip(old_keys, old.policies, strict=True))
    removed = [cp for k, cp in zip(old_keys, old.policies, strict=True)
               if not _same(new_by_key.get(k), cp.policy)]
    added = [p for k, p in zip(new_keys, cluster.policies, strict=True)
             if k not in old_by_key or not _same(old_by_key[k].policy, p)]
    counts = old.cidr_counts()
    after = counts - cidr_counts(cp.policy for cp in removed) + cidr_counts(added)
    if set(after) != set(counts):
        return "the external address ranges changed"
    reason = _needs_finer(old, added)
    if reason:
        return reason
    compiled = {p.key: old.compiler.compile_policy(p) for p in added}
    policies = [compiled.get(k) or old_by_key[k] for k in new_keys]
    order = {k: i for i, k in enumerate(new_keys)}
    gone = {id(cp) for cp in removed}
    sides = {}
    for direction in Direction:
        side = old.side(direction)
        touched = {c for cp in [*removed, *compiled.values()]
                   if direction in cp.policy.policy_types
                   for c in cp.subject_classes.tolist()}
        changed = {}
        for c in touched:
            rules: list[CompiledRule] = [r for r in side.class_rules[c]
                                         if id(old_by_key.get(r.policy.key)) not in gone]
            isolating: list[CompiledPolicy] = [cp for cp in side.class_isolating[c]
                                               if id(cp) not in gone]
            for cp in compiled.values():
                if direction in cp.policy.policy_types and _selects(cp, c):
                    rules.extend(cp.rules[direction])
                    isolating.append(cp)
            rules.sort(key=lambda r: (order[r.policy.key], r.rule.index))
            isolating.sort(key=lambda cp: order[cp.policy.key])
            changed[c] = (rules, isolating)
        sides[direction] = update_side(side, changed, old.atoms, old.named)
    return old.derived(cluster, policies, sides[Direction.INGRESS], sides[Direction.EGRESS],
                       +after)


def _same(a: Policy | None, b: Policy) -> bool:
    return a is b or a == b


def _selects(cp: CompiledPolicy, c: int) -> bool:
    k = int(np.searchsorted(cp.subject_classes, c))
    return k < len(cp.subject_classes) and int(cp.subject_classes[k]) == c


def _needs_finer(old: Analysis, added: list[Policy]) -> str | None:
    """Why the added policies need finer port atoms or classes than `old` has, if they do."""
    atoms, compiler = old.atoms, old.compiler
    n = old.endpoints.n_pods
    for policy in added:
        if not compiler.consistent(policy.pod_selector, None, policy.namespace):
            return f"{policy.key}: its podSelector splits a peer class"
        for rule in policy.ingress + policy.egress:
            for port in rule.ports:
                if isinstance(port.port, str):
                    if (port.protocol, port.port) not in compiler.named:
                        return f"{policy.key}: named port {port.port} is new"
                elif isinstance(port.port, int):
                    hi = (port.end_port or port.port) + 1
                    if not atoms.is_cut(port.protocol, port.port) or (
                            hi <= MAX_PORT and not atoms.is_cut(port.protocol, hi)):
                        return f"{policy.key}: port {port.port} needs a new port atom"
            for peer in rule.peers:
                if peer.ip_block is not None:
                    v4, v6 = old.pod_addresses(old.family)
                    held = inside(peer.ip_block.addresses, v4, v6)
                    of = old.classes.class_of[:n]
                    if len(np.intersect1d(of[held], of[~held])):
                        return f"{policy.key}: ipBlock {peer.ip_block} splits a peer class"
                elif not compiler.consistent(peer.pod_selector, peer.namespace_selector,
                                             policy.namespace):
                    return f"{policy.key}: peer {peer} splits a peer class"
    return None
