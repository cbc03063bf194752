"""`-o table`: a readable truth table (rows: sources, columns: destinations), via rich."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table

from analyzer.formats.cells import cell_text
from analyzer.matrix import MatrixView, ProbeView

YES = "✓"
NO = "✗"


def _render(table: Table, color: bool) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=100_000,
        color_system="standard" if color else None,
        force_terminal=color,
        legacy_windows=False,
        highlight=False,
    )
    console.print(table, crop=False)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def _table(title: str) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, show_lines=False, title_justify="left")
    t.add_column("from \\ to", no_wrap=True, style="bold")
    return t


def matrix_table(view: MatrixView, color: bool = False) -> str:
    t = _table("Allowed connections (ports open from row to column; - none, n/a not governed)")
    for label in view.labels:
        t.add_column(label, no_wrap=True)
    for label, row in zip(view.labels, view.cells, strict=True):
        cells = []
        for ports in row:
            text = cell_text(ports)
            style = "red" if text == "-" else "dim" if text == "n/a" else "green"
            cells.append(f"[{style}]{text}[/]" if color else text)
        t.add_row(label, *cells)
    return _render(t, color)


def probe_tables(view: ProbeView, color: bool = False) -> str:
    out = []
    for probe, rows in view.probes:
        t = _table(f"Probe {probe} ({YES} allowed, {NO} denied)")
        for label in view.labels:
            t.add_column(label, justify="center", no_wrap=True)
        for label, row in zip(view.labels, rows, strict=True):
            if color:
                t.add_row(label, *(f"[green]{YES}[/]" if v else f"[red]{NO}[/]" for v in row))
            else:
                t.add_row(label, *(YES if v else NO for v in row))
        out.append(_render(t, color))
    return "\n".join(out)
