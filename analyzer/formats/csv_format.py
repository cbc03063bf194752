"""`-o csv`: one row per (source, destination) pair, ready for a spreadsheet or a join."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from analyzer.formats.cells import cell_text
from analyzer.matrix import MatrixView, ProbeView


def _write(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def matrix_csv(view: MatrixView) -> str:
    return "".join(matrix_csv_chunks(view))


def matrix_csv_chunks(view: MatrixView) -> Iterator[str]:
    """`matrix_csv`'s text, one source row at a time."""
    yield _write([["source", "destination", "allowed"]])
    texts: dict[int, tuple[object, str]] = {}  # cells are shared PortSets: one text each
    for s, row in zip(view.labels, view.cells, strict=True):
        out = []
        for d, c in zip(view.labels, row, strict=True):
            hit = texts.get(id(c))
            if hit is None:
                hit = texts[id(c)] = (c, cell_text(c))
            out.append([s, d, hit[1]])
        yield _write(out)


def probe_csv(view: ProbeView) -> str:
    rows = [["source", "destination", "port", "protocol", "allowed"]]
    for probe, matrix in view.probes:
        for s, row in zip(view.labels, matrix, strict=True):
            for d, v in zip(view.labels, row, strict=True):
                rows.append([s, d, str(probe.port), probe.protocol.value, str(v).lower()])
    return _write(rows)
