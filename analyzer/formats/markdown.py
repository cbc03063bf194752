"""`-o md`: GitHub-flavoured markdown tables, for pull-request comments and docs."""

from __future__ import annotations

from analyzer.formats.cells import cell_text
from analyzer.matrix import MatrixView, ProbeView


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table(labels: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    head = "| from \\ to | " + " | ".join(f"`{_escape(x)}`" for x in labels) + " |"
    rule = "|---|" + "---|" * len(labels)
    body = [
        f"| `{_escape(src)}` | " + " | ".join(_escape(c) for c in row) + " |"
        for src, row in zip(labels, rows, strict=True)
    ]
    return [head, rule, *body]


def matrix_markdown(view: MatrixView) -> str:
    rows = [[cell_text(c) for c in row] for row in view.cells]
    lines = [
        "**Allowed connections** (row → column; `-` none, `n/a` not governed)",
        "",
        *_table(view.labels, rows),
    ]
    return "\n".join(lines) + "\n"


def probe_markdown(view: ProbeView) -> str:
    lines: list[str] = []
    for probe, matrix in view.probes:
        if lines:
            lines.append("")
        rows = [["✓" if v else "✗" for v in row] for row in matrix]
        lines += [f"**Probe {probe}**", "", *_table(view.labels, rows)]
    return "\n".join(lines) + "\n"
