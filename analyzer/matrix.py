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
from typing import Any, overload

import numpy as np
import numpy.typing as npt

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
    cells: Sequence[tuple[PortSet | None, ...]]  # [src][dst]; rows computed as they are read

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
    labels = tuple(ep.key(int(j)) for j in idx)
    kinds = tuple(
        "external" if analysis.is_external(int(j)) else ep.pods[int(j)].kind.lower() for j in idx
    )
    return MatrixView(labels, kinds, _Rows(analysis, idx, block_rows))


class _Rows(Sequence[tuple[PortSet | None, ...]]):
    """The matrix's rows, computed a block of sources at a time when first read: a formatter
    going through them in order holds one block, never the whole matrix (at 10,000 pods that
    is 100 million cells)."""

    def __init__(self, analysis: Analysis, idx: npt.NDArray[np.int64], block_rows: int) -> None:
        self._analysis = analysis
        self._idx = idx
        self._block_rows = block_rows
        self._memo: dict[bytes, PortSet] = {}
        self._block: tuple[int, list[tuple[PortSet | None, ...]]] = (-1, [])

    def __len__(self) -> int:
        return len(self._idx)

    @overload
    def __getitem__(self, i: int) -> tuple[PortSet | None, ...]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[PortSet | None, ...]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i - i % self._block_rows
        if self._block[0] != start:
            self._block = (start, self._compute(start))
        return self._block[1][i - start]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def _compute(self, start: int) -> list[tuple[PortSet | None, ...]]:
        analysis, idx, memo = self._analysis, self._idx, self._memo
        sources = idx[start:start + self._block_rows]
        block = analysis.block(sources)[:, idx]
        external = [analysis.is_external(int(j)) for j in idx]
        rows = []
        for r, src in enumerate(sources.tolist()):
            row: list[PortSet | None] = []
            for c in range(len(idx)):
                if external[c] and analysis.is_external(src):
                    row.append(None)
                    continue
                key = block[r, c].tobytes()
                ports = memo.get(key)
                if ports is None:
                    ports = memo[key] = analysis.atoms.to_ports(
                        analysis.atoms.from_words(block[r, c]))
                row.append(ports)
            rows.append(tuple(row))
        return rows


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
