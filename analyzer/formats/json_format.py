"""`-o json`: the matrix, the probe contract, and query answers as JSON (sorted keys)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from analyzer.formats.cells import port_ranges
from analyzer.matrix import MatrixView
from analyzer.queries import CanAnswer, ReachAnswer
from policy.explain import SideExplanation


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def matrix_json(view: MatrixView) -> str:
    return "".join(matrix_json_chunks(view))


def matrix_json_chunks(view: MatrixView) -> Iterator[str]:
    """`matrix_json`'s text, one source row at a time (so that a large matrix is written as it
    is computed): `{"endpoints": [...], "matrix": {src: {dst: ranges or null}}}`."""
    endpoints = [{"name": n, "kind": k} for n, k in zip(view.labels, view.kinds, strict=True)]
    yield '{\n  "endpoints": ' + _nested(json.dumps(endpoints, indent=2), 2) + ',\n  "matrix": '
    if not view.labels:
        yield "{}\n}\n"
        return
    ranges: dict[int, Any] = {}  # cells are shared PortSets: one JSON form each
    for k, (src, row) in enumerate(zip(view.labels, view.cells, strict=True)):
        cells: dict[str, Any] = {}
        for dst, cell in zip(view.labels, row, strict=True):
            if cell is None:
                cells[dst] = None
                continue
            if id(cell) not in ranges:
                ranges[id(cell)] = (cell, port_ranges(cell))
            cells[dst] = ranges[id(cell)][1]
        body = _nested(json.dumps(cells, indent=2), 4)
        yield ("{\n" if k == 0 else ",\n") + "    " + json.dumps(src) + ": " + body
    yield "\n  }\n}\n"


def _nested(text: str, by: int) -> str:
    """JSON text dumped on its own, indented as a value `by` spaces deep."""
    return text.replace("\n", "\n" + " " * by)


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
