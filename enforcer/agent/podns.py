"""A pod's traffic to itself, which never reaches the node: programmed in the pod's namespace.

A connection from a pod to its own address goes over `lo` inside the pod's network namespace,
so the node's table never sees it, yet the policies decide it like any other pair (the pod is
both subject and peer). When the agent can find each local pod's namespace, it also installs
there the loopback table `enforcer.render.loopback_replace` renders from the pod's own rules,
the same one `kubefence lab probe` installs: only loopback traffic is dispatched, to the pod's
egress chain and then its ingress chain.

Where a pod's namespace is depends on the runtime; the agent is told a prefix and the pod's
namespace is /run/netns/PREFIX<pod uid> (the lab's kubelet stand-in names them so). The uid is
set by the API server, never by whoever creates the pod, so a pod cannot point the agent at
another namespace. Without a prefix (the DaemonSet), pods' traffic to themselves is left alone,
as most CNIs leave it; upstream's e2e tests don't grade it either.

A pod's table is replaced whole when its rules change and at every full sync; a namespace that
is not there yet (the pod's sandbox not made, or already gone) is skipped and tried again at the
next sync. Nothing is removed: a pod's namespace goes with the pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from enforcer.agent.netns import NetnsDataplane, NetnsError
from enforcer.dataplane import DataplaneError
from enforcer.render import loopback_replace
from enforcer.ruleset import NodeRuleset, PodRules


@dataclass(frozen=True, slots=True)
class PodNamespacesResult:
    programmed: int  # pods whose table was (re)placed in this sync
    missing: tuple[str, ...]  # pods with an address whose namespace was not there
    failed: tuple[str, ...]  # "pod: error" for transactions the kernel refused


@dataclass
class PodNamespaces:
    prefix: str
    _applied: dict[str, PodRules] = field(default_factory=dict)  # pod uid -> rules committed

    def netns(self, uid: str) -> str:
        return f"{self.prefix}{uid}"

    def sync(self, ruleset: NodeRuleset, uids: Mapping[str, str],
             full: bool) -> PodNamespacesResult:
        """Program every local pod whose rules differ from what its namespace holds (all of
        them when `full`). `uids` maps the node's pods (namespace/name) to their uids."""
        programmed, missing, failed = 0, [], []
        live: dict[str, PodRules] = {}
        for rules in ruleset.pods:
            uid = uids.get(rules.key)
            if not uid:
                continue
            if not full and self._applied.get(uid) == rules:
                live[uid] = rules
                continue
            try:
                NetnsDataplane(self.netns(uid)).apply(loopback_replace(rules))
            except NetnsError:
                if rules.addresses:  # no address, no traffic to itself to decide yet
                    missing.append(rules.key)
                continue
            except DataplaneError as exc:
                failed.append(f"{rules.key}: {exc}")
                continue
            live[uid] = rules
            programmed += 1
        self._applied = live
        return PodNamespacesResult(programmed, tuple(missing), tuple(failed))
