"""The lints of `kubefence check`: findings about policies that do not do what they read.

Each module is one family of lints; every lint reads the engine's `Analysis` and returns
`Finding`s (see `analyzer.findings`) with a stable code:

    KF101 warning  egress isolation without DNS                       (dns)
    KF102 warning  a policy that selects no pod                       (selection)
    KF103 warning  a selector peer that matches no pod                (selection)
    KF104 error    a named port no destination pod defines            (ports)
    KF105 warning  namespaceSelector and podSelector as separate peers (peers)
    KF106 warning  an ipBlock covering pod or Service addresses, or host bits set (peers)
    KF107 note     a redundant rule                                   (redundancy)
    KF108 warning  a namespace without default deny beside isolated pods (coverage)
    KF109 note     pods open to every namespace on every port         (coverage)
    KF110 warning  a hostNetwork pod selected by a policy             (selection)
"""

from __future__ import annotations

from collections.abc import Callable

from analyzer.findings import Finding
from analyzer.lints.coverage import no_default_deny, open_pods
from analyzer.lints.dns import egress_without_dns
from analyzer.lints.peers import and_or_trap, ip_blocks
from analyzer.lints.ports import undefined_named_ports
from analyzer.lints.redundancy import redundant_rules
from analyzer.lints.selection import empty_peers, host_network_selected, selects_nothing
from policy.engine import Analysis

Lint = Callable[[Analysis], list[Finding]]

LINTS: tuple[Lint, ...] = (
    egress_without_dns,
    selects_nothing,
    empty_peers,
    undefined_named_ports,
    and_or_trap,
    ip_blocks,
    redundant_rules,
    no_default_deny,
    open_pods,
    host_network_selected,
)


LINT_DOCS: dict[str, str] = {
    "KF101": "pods isolated for egress that cannot reach kube-dns on UDP and TCP 53",
    "KF102": "a policy that selects no pod",
    "KF103": "a selector peer that matches no pod or namespace",
    "KF104": "a named port no destination pod defines (or defines with another protocol)",
    "KF105": "a namespaceSelector-only peer beside a podSelector-only peer (AND/OR trap)",
    "KF106": "an ipBlock covering pod or Service addresses, or a CIDR with host bits set",
    "KF107": "a rule made redundant by other rules",
    "KF108": "a namespace where some pods are isolated and others have no policy",
    "KF109": "pods open to every namespace on every port",
    "KF110": "a hostNetwork pod selected by a policy (no effect on it)",
}


def sort_key(f: Finding) -> tuple[str, int, str, str, str]:
    loc = f.location
    return (loc.file, loc.line or 0, f.code, loc.field, f.message)


def run_lints(analysis: Analysis) -> list[Finding]:
    """Every lint's findings, sorted by (file, line, code)."""
    findings = [f for lint in LINTS for f in lint(analysis)]
    return sorted(findings, key=sort_key)


__all__ = ["LINTS", "LINT_DOCS", "Lint", "run_lints", "sort_key"]
