"""Large matrices are written row by row: the chunked JSON and CSV are byte for byte what
dumping the whole document at once gives, and the lazily computed rows are the engine's cells."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hypothesis import given, settings

from analyzer.formats.cells import cell_text, port_ranges
from analyzer.formats.csv_format import matrix_csv
from analyzer.formats.json_format import matrix_json
from analyzer.matrix import ExternalsShown, MatrixView, build_matrix, endpoint_indexes
from policy.engine import Analysis
from tests.builders import analyze
from tests.strategies import clusters

Obj = dict[str, Any]


def whole_json(view: MatrixView) -> str:
    doc = {
        "endpoints": [{"name": n, "kind": k} for n, k in zip(view.labels, view.kinds, strict=True)],
        "matrix": {src: {dst: None if cell is None else port_ranges(cell)
                         for dst, cell in zip(view.labels, row, strict=True)}
                   for src, row in zip(view.labels, view.cells, strict=True)},
    }
    return json.dumps(doc, indent=2) + "\n"


def whole_csv(view: MatrixView) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "destination", "allowed"])
    writer.writerows([s, d, cell_text(c)] for s, d, c in view.pairs())
    return buf.getvalue()


def _cells(analysis: Analysis, view: MatrixView) -> None:
    idx = endpoint_indexes(analysis, ExternalsShown.ALL)
    for r, s in enumerate(idx):
        for c, d in enumerate(idx):
            both_external = analysis.is_external(s) and analysis.is_external(d)
            want = None if both_external else analysis.allowed(s, d)
            assert view.cells[r][c] == want


@settings(max_examples=60, deadline=None)
@given(clusters())
def test_chunked_output_equals_the_whole_document(objects: list[Obj]) -> None:
    analysis = analyze(objects)
    for shown in ExternalsShown:
        view = build_matrix(analysis, shown, block_rows=2)  # several blocks even when small
        assert matrix_json(view) == whole_json(view)
        assert matrix_csv(view) == whole_csv(view)
    view = build_matrix(analysis, ExternalsShown.ALL, block_rows=2)
    _cells(analysis, view)
    backwards = [view.cells[i] for i in reversed(range(len(view.cells)))]  # random access
    assert backwards[::-1] == list(view.cells)


def test_an_empty_matrix_is_still_valid_json() -> None:
    view = MatrixView((), (), ())
    assert json.loads(matrix_json(view)) == {"endpoints": [], "matrix": {}}
    assert matrix_json(view) == whole_json(view)
