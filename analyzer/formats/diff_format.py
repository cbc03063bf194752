"""`kubefence diff` output: text for a person, JSON for tools, markdown for a pull request.

Every format starts from the same summary ("N connections added, M removed": pairs that gained,
and pairs that lost, some port) and lists each changed (source, destination) pair with its port
ranges and the policy changes and endpoint changes behind it, in the result's sorted order.
"""

from __future__ import annotations

import json
from typing import Any

from analyzer.diff import DiffResult, PairDiff, PolicyChange
from analyzer.formats.cells import port_ranges
from policy.ports import PortSet


def diff_summary(result: DiffResult) -> str:
    """`N connections added, M removed`."""
    n = len(result.added)
    return f"{n} connection{'' if n == 1 else 's'} added, {len(result.removed)} removed"


def _ports(ports: PortSet) -> str:
    return "all ports" if ports.is_all() else str(ports)


def _where(change: PolicyChange) -> str:
    loc = change.location
    if not loc.file:
        return ""
    return f"{loc.file}:{loc.line}" if loc.line else loc.file


def _causes(pair: PairDiff) -> list[str]:
    out = [f"{c.key} ({c.change.value})" for c in pair.policies]
    out += [f"{e} (endpoint changed)" for e in pair.endpoints]
    return out


# -- text --------------------------------------------------------------------------------------


def diff_text(result: DiffResult) -> str:
    lines = [diff_summary(result)]
    if result.policy_changes:
        lines += ["", "Policies changed:"]
        for c in result.policy_changes:
            where = _where(c)
            lines.append(f"  {c.change.value:<8}  {c.key}" + (f"  ({where})" if where else ""))
    for title, keys in (
        ("Endpoints added", result.endpoints_added),
        ("Endpoints removed", result.endpoints_removed),
        ("Endpoints changed", result.endpoints_modified),
    ):
        if keys:
            lines += ["", f"{title}: {', '.join(keys)}"]
    for title, sign, pairs in (
        ("Connections added:", "+", result.added),
        ("Connections removed:", "-", result.removed),
    ):
        if not pairs:
            continue
        lines += ["", title]
        width = max(len(f"{p.source} -> {p.destination}") for p in pairs)
        for p in pairs:
            ports = p.added if sign == "+" else p.removed
            pair = f"{p.source} -> {p.destination}"
            lines.append(f"  {sign} {pair.ljust(width)}  {_ports(ports)}")
            causes = _causes(p)
            if causes:
                lines.append(f"      because of {', '.join(causes)}")
    if result.is_empty():
        lines += ["", "No connection changes."]
    return "\n".join(lines) + "\n"


# -- json --------------------------------------------------------------------------------------


def _policy_json(change: PolicyChange) -> dict[str, Any]:
    return {
        "policy": change.key,
        "change": change.change.value,
        "file": change.location.file or None,
        "line": change.location.line,
    }


def diff_json(result: DiffResult) -> str:
    doc = {
        "summary": {"added": len(result.added), "removed": len(result.removed)},
        "endpoints": {
            "added": list(result.endpoints_added),
            "removed": list(result.endpoints_removed),
            "modified": list(result.endpoints_modified),
        },
        "policies": [_policy_json(c) for c in result.policy_changes],
        "connections": [
            {
                "source": p.source,
                "destination": p.destination,
                "added": port_ranges(p.added),
                "removed": port_ranges(p.removed),
                "policies": [{"policy": c.key, "change": c.change.value} for c in p.policies],
                "endpoints": list(p.endpoints),
            }
            for p in result.pairs
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


# -- markdown ----------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_md(text)}`"


def diff_markdown(result: DiffResult) -> str:
    lines = [f"**kubefence diff:** {diff_summary(result)}"]
    if result.pairs:
        lines += [
            "",
            "| | from | to | ports | caused by |",
            "|---|---|---|---|---|",
        ]
        for sign, pairs in (("➕ added", result.added), ("➖ removed", result.removed)):
            for p in pairs:
                ports = p.added if sign.endswith("added") else p.removed
                causes = ", ".join(
                    [f"{_code(c.key)} ({c.change.value})" for c in p.policies]
                    + [f"{_code(e)} (endpoint changed)" for e in p.endpoints]
                ) or "–"
                lines.append(
                    f"| {sign} | {_code(p.source)} | {_code(p.destination)} "
                    f"| {_md(_ports(ports))} | {causes} |"
                )
    if result.policy_changes:
        lines += ["", "**Policies changed**", "", "| policy | change | where |", "|---|---|---|"]
        for c in result.policy_changes:
            where = _where(c)
            lines.append(
                f"| {_code(c.key)} | {c.change.value} | {_code(where) if where else '–'} |"
            )
    for title, keys in (
        ("Endpoints added", result.endpoints_added),
        ("Endpoints removed", result.endpoints_removed),
        ("Endpoints changed", result.endpoints_modified),
    ):
        if keys:
            lines += ["", f"**{title}:** " + ", ".join(_code(k) for k in keys)]
    return "\n".join(lines) + "\n"
