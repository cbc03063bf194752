"""The allow matrix as the formatters see it: labelled rows and columns and a cell per pair.

Rows are sources, columns destinations. Endpoints are the pods (and workloads standing for
pods), then the external ranges the policies mention; the catch-all `others` is included only
on request. A cell is the `PortSet` allowed; between two externals it is `None` (no policy
governs that traffic). The probe form (`--probe PORT/PROTO`) is the stable JSON contract.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from policy.engine import Analysis
from policy.ports import PortSet, Protocol


class ExternalsShown(StrEnum):
    NONE = "none"
    MENTIONED = "mentioned"
    ALL = "all"


@dataclass(frozen=True)
class Probe:
    port: int
    protocol: Protocol

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol.value}"


@dataclass(frozen=True)
class MatrixView:
    labels: tuple[str, ...]
    kinds: tuple[str, ...]  # "pod", a workload kind, or "external"
    cells: tuple[tuple[PortSet | None, ...], ...]  # [src][dst]

    def pairs(self) -> Iterator[tuple[str, str, PortSet | None]]:
        for i, src in enumerate(self.labels):
            for j, dst in enumerate(self.labels):
                yield src, dst, self.cells[i][j]


def endpoint_indexes(analysis: Analysis, shown: ExternalsShown) -> list[int]:
    ep = analysis.endpoints
    out = list(range(ep.n_pods))
    if shown is not ExternalsShown.NONE:
        out += [
            ep.n_pods + k
            for k, e in enumerate(ep.externals)
            if shown is ExternalsShown.ALL or not e.catch_all
        ]
    return out


def build_matrix(
    analysis: Analysis, shown: ExternalsShown = ExternalsShown.MENTIONED, block_rows: int = 256
) -> MatrixView:
    idx = np.array(endpoint_indexes(analysis, shown), dtype=np.int64)
    ep = analysis.endpoints
    memo: dict[bytes, PortSet] = {}
    rows: list[tuple[PortSet | None, ...]] = []
    for start in range(0, len(idx), block_rows):
        sources = idx[start : start + block_rows]
        block = analysis.block(sources)[:, idx]
        for r, src in enumerate(sources):
            row: list[PortSet | None] = []
            for c, dst in enumerate(idx):
                if analysis.is_external(int(src)) and analysis.is_external(int(dst)):
                    row.append(None)
                    continue
                words = block[r, c]
                key = words.tobytes()
                ports = memo.get(key)
                if ports is None:
                    ports = memo[key] = analysis.atoms.to_ports(analysis.atoms.from_words(words))
                row.append(ports)
            rows.append(tuple(row))
    labels = tuple(ep.key(int(j)) for j in idx)
    kinds = tuple(
        "external" if analysis.is_external(int(j)) else ep.pods[int(j)].kind.lower() for j in idx
    )
    return MatrixView(labels, kinds, tuple(rows))


def probe_document(analysis: Analysis, probes: Sequence[Probe]) -> dict[str, Any]:
    """The stable contract: `{"pods": [...], "probes": [{"port", "protocol", "matrix"}]}`,
    every pod a row and a column, keys `namespace/name`."""
    n = analysis.endpoints.n_pods
    keys = [analysis.endpoints.key(j) for j in range(n)]
    out: dict[str, Any] = {"pods": keys, "probes": []}
    for probe in probes:
        m = analysis.probe(probe.protocol, probe.port)[:n, :n]
        out["probes"].append(
            {
                "port": probe.port,
                "protocol": probe.protocol.value,
                "matrix": {
                    src: {dst: bool(m[i, j]) for j, dst in enumerate(keys)}
                    for i, src in enumerate(keys)
                },
            }
        )
    return out


@dataclass(frozen=True)
class ProbeView:
    """Pods only, as in the probe contract: one boolean matrix per probe."""

    labels: tuple[str, ...]
    probes: tuple[tuple[Probe, tuple[tuple[bool, ...], ...]], ...]


def build_probe_view(analysis: Analysis, probes: Sequence[Probe]) -> ProbeView:
    return probe_view_of(probe_document(analysis, probes))


def probe_view_of(doc: dict[str, Any]) -> ProbeView:
    """A probe-contract document (the analyzer's, or one observed in the lab) as a view."""
    labels = tuple(doc["pods"])
    out = []
    for entry in doc["probes"]:
        m = entry["matrix"]
        probe = Probe(entry["port"], Protocol(entry["protocol"]))
        out.append((probe, tuple(tuple(m[s][d] for d in labels) for s in labels)))
    return ProbeView(labels, tuple(out))
