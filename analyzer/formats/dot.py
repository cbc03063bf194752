"""`-o dot`: a Graphviz digraph, an edge for every allowed pair labelled with its ports.

Pods are grouped in one cluster per namespace; external ranges are boxes."""

from __future__ import annotations

from analyzer.formats.cells import cell_text
from analyzer.matrix import MatrixView, ProbeView


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nodes(labels: tuple[str, ...], kinds: tuple[str, ...]) -> list[str]:
    lines = []
    by_ns: dict[str, list[str]] = {}
    externals = []
    for label, kind in zip(labels, kinds, strict=True):
        if kind == "external":
            externals.append(label)
        else:
            by_ns.setdefault(label.split("/", 1)[0], []).append(label)
    for i, (ns, members) in enumerate(sorted(by_ns.items())):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_q('namespace ' + ns)};")
        lines += [f"    {_q(m)} [label={_q(m.split('/', 1)[1])}];" for m in members]
        lines.append("  }")
    lines += [f"  {_q(e)} [shape=box];" for e in externals]
    return lines


def matrix_dot(view: MatrixView) -> str:
    lines = ["digraph kubefence {", "  rankdir=LR;", "  node [shape=ellipse];"]
    lines += _nodes(view.labels, view.kinds)
    for src, dst, cell in view.pairs():
        if cell is not None and cell:
            lines.append(f"  {_q(src)} -> {_q(dst)} [label={_q(cell_text(cell))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def probe_dot(view: ProbeView) -> str:
    lines = ["digraph kubefence {", "  rankdir=LR;", "  node [shape=ellipse];"]
    lines += _nodes(view.labels, tuple("pod" for _ in view.labels))
    for probe, matrix in view.probes:
        for src, row in zip(view.labels, matrix, strict=True):
            for dst, v in zip(view.labels, row, strict=True):
                if v:
                    lines.append(f"  {_q(src)} -> {_q(dst)} [label={_q(str(probe))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
