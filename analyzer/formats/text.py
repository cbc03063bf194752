"""Plain-text answers for `can`, `who-can-reach` and `reach`, meant to be read by a person."""

from __future__ import annotations

from analyzer.queries import CanAnswer, ReachAnswer
from policy.cluster import Direction, Policy
from policy.explain import SideExplanation
from policy.ports import PortSet


def _where(policy: Policy, line: int | None = None) -> str:
    loc = policy.location
    if not loc.file:
        return ""
    return f" ({loc.file}:{line or loc.line})" if (line or loc.line) else f" ({loc.file})"


def _side(side: SideExplanation, me: str, peer: str, wanted: str, probe_ok: bool) -> list[str]:
    what = "egress of" if side.direction is Direction.EGRESS else "ingress of"
    head = f"  {what} {me}: "
    if not side.governed:
        return [head + "outside the cluster; no policy governs it"]
    if not side.isolated:
        kind = side.direction.value
        return [
            head + f"not isolated (no policy with policyTypes {kind} selects it): "
            "everything allowed"
        ]
    names = ", ".join(f"{p.key}{_where(p)}" for p in side.isolating)
    lines = [head + f"isolated by {names}"]
    if not side.matches:
        lines.append(f"    ✗ no rule of these policies matches {peer}")
        return lines
    for m in side.matches:
        rule = f"{m.rule.direction.value.lower()}[{m.rule.index}]"
        lines.append(
            f"    {'✓' if probe_ok else '·'} {m.policy.key} {rule}"
            f"{_where(m.policy, m.rule.line)} allows {_ports(m.ports)}"
        )
    if not probe_ok:
        lines.append(f"    ✗ none of them allows {wanted}")
    return lines


def can_text(answer: CanAnswer) -> str:
    why = answer.explanation
    verdict = "ALLOWED" if answer.allowed else "DENIED"
    if answer.probe is not None:
        wanted = str(answer.probe)
        head = f"{verdict}: {answer.source} -> {answer.destination} on {wanted}"
    else:
        wanted = "any port"
        ports = f"on {_ports(why.allowed)}" if why.allowed else "on every port"
        head = f"{verdict}: {answer.source} -> {answer.destination} {ports}"
    lines = [head, ""]
    for side, me, peer in (
        (why.egress, answer.source, answer.destination),
        (why.ingress, answer.destination, answer.source),
    ):
        lines += _side(side, me, peer, wanted, _side_ok(side.allowed, answer))
    if not answer.allowed and why.egress.allowed and why.ingress.allowed:
        lines.append("  both ends allow some ports, but not the same ones")
    return "\n".join(lines) + "\n"


def _ports(ports: PortSet) -> str:
    return "all ports" if ports.is_all() else str(ports)


def _side_ok(allowed: PortSet, answer: CanAnswer) -> bool:
    if answer.probe is None:
        return bool(allowed)
    return allowed.contains(answer.probe.protocol, answer.probe.port)


def reach_text(answer: ReachAnswer) -> str:
    if answer.inbound:
        head = f"Who can reach {answer.endpoint}:"
        none = "  nobody"
    else:
        head = f"What {answer.endpoint} can reach:"
        none = "  nothing"
    lines = [head]
    width = max((len(r.peer) for r in answer.peers), default=0)
    lines += [f"  {r.peer.ljust(width)}  {_ports(r.ports)}" for r in answer.peers] or [none]
    if answer.denied:
        lines.append(f"Denied on every port: {', '.join(answer.denied)}")
    return "\n".join(lines) + "\n"
