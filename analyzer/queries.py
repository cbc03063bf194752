"""The questions a user asks of one endpoint or pair: `can`, `who-can-reach`, `reach`.

Each answer comes from the engine's `Analysis` (and `policy.explain` for the why); nothing here
evaluates a policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.matrix import ExternalsShown, Probe, endpoint_indexes
from analyzer.resolve import resolve
from policy.engine import Analysis
from policy.explain import PairExplanation, explain
from policy.ports import PortSet


@dataclass(frozen=True)
class CanAnswer:
    source: str
    destination: str
    probe: Probe | None
    allowed: bool  # on the probe's port, or on any port without one
    explanation: PairExplanation


@dataclass(frozen=True)
class Reachable:
    peer: str
    ports: PortSet


@dataclass(frozen=True)
class ReachAnswer:
    endpoint: str
    inbound: bool  # True: who can reach `endpoint`; False: what `endpoint` can reach
    peers: tuple[Reachable, ...]  # sorted by peer name
    denied: tuple[str, ...]  # peers with no port at all


def can(analysis: Analysis, source: str, destination: str, probe: Probe | None) -> CanAnswer:
    src = resolve(analysis, source)
    dst = resolve(analysis, destination)
    why = explain(analysis, src.index, dst.index)
    if probe is None:
        allowed = bool(why.allowed)
    else:
        allowed = why.allowed.contains(probe.protocol, probe.port)
    return CanAnswer(src.label, dst.label, probe, allowed, why)


def _reach(analysis: Analysis, name: str, inbound: bool, shown: ExternalsShown) -> ReachAnswer:
    me = resolve(analysis, name)
    peers, denied = [], []
    for j in endpoint_indexes(analysis, shown):
        if analysis.is_external(j) and analysis.is_external(me.index):
            continue
        ports = analysis.allowed(j, me.index) if inbound else analysis.allowed(me.index, j)
        key = analysis.endpoints.key(j)
        if ports:
            peers.append(Reachable(key, ports))
        else:
            denied.append(key)
    return ReachAnswer(
        me.label, inbound, tuple(sorted(peers, key=lambda r: r.peer)), tuple(sorted(denied))
    )


def who_can_reach(
    analysis: Analysis, destination: str, shown: ExternalsShown = ExternalsShown.ALL
) -> ReachAnswer:
    return _reach(analysis, destination, True, shown)


def reach(
    analysis: Analysis, source: str, shown: ExternalsShown = ExternalsShown.ALL
) -> ReachAnswer:
    return _reach(analysis, source, False, shown)
