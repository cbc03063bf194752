"""`-o json`: the matrix, the probe contract, and query answers as JSON (sorted keys)."""

from __future__ import annotations

import json
from typing import Any

from analyzer.formats.cells import port_ranges
from analyzer.matrix import MatrixView
from analyzer.queries import CanAnswer, ReachAnswer
from policy.explain import SideExplanation


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def matrix_json(view: MatrixView) -> str:
    doc = {
        "endpoints": [{"name": n, "kind": k} for n, k in zip(view.labels, view.kinds, strict=True)],
        "matrix": {
            src: {
                dst: (None if cell is None else port_ranges(cell))
                for dst, cell in zip(view.labels, row, strict=True)
            }
            for src, row in zip(view.labels, view.cells, strict=True)
        },
    }
    return _dump(doc)


def probe_json(doc: dict[str, Any]) -> str:
    """The stable `--probe` contract, as built by `analyzer.matrix.probe_document`."""
    return _dump(doc)


def _side(side: SideExplanation) -> dict[str, Any]:
    return {
        "direction": side.direction.value,
        "endpoint": side.subject,
        "governed": side.governed,
        "isolated": side.isolated,
        "isolating_policies": [p.key for p in side.isolating],
        "matching_rules": [
            {
                "policy": m.policy.key,
                "rule": f"{m.rule.direction.value.lower()}[{m.rule.index}]",
                "file": m.policy.location.file,
                "line": m.rule.line or m.policy.location.line,
                "ports": port_ranges(m.ports),
            }
            for m in side.matches
        ],
        "allowed": port_ranges(side.allowed),
    }


def can_json(answer: CanAnswer) -> str:
    why = answer.explanation
    return _dump(
        {
            "source": answer.source,
            "destination": answer.destination,
            "probe": None
            if answer.probe is None
            else {"port": answer.probe.port, "protocol": answer.probe.protocol.value},
            "allowed": answer.allowed,
            "allowed_ports": port_ranges(why.allowed),
            "egress": _side(why.egress),
            "ingress": _side(why.ingress),
        }
    )


def reach_json(answer: ReachAnswer) -> str:
    return _dump(
        {
            "endpoint": answer.endpoint,
            "direction": "inbound" if answer.inbound else "outbound",
            "peers": [{"name": r.peer, "ports": port_ranges(r.ports)} for r in answer.peers],
            "denied": list(answer.denied),
        }
    )
