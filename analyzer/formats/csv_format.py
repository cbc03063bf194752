"""`-o csv`: one row per (source, destination) pair, ready for a spreadsheet or a join."""

from __future__ import annotations

import csv
import io

from analyzer.formats.cells import cell_text
from analyzer.matrix import MatrixView, ProbeView


def _write(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def matrix_csv(view: MatrixView) -> str:
    rows = [["source", "destination", "allowed"]]
    rows += [[s, d, cell_text(c)] for s, d, c in view.pairs()]
    return _write(rows)


def probe_csv(view: ProbeView) -> str:
    rows = [["source", "destination", "port", "protocol", "allowed"]]
    for probe, matrix in view.probes:
        for s, row in zip(view.labels, matrix, strict=True):
            for d, v in zip(view.labels, row, strict=True):
                rows.append([s, d, str(probe.port), probe.protocol.value, str(v).lower()])
    return _write(rows)
