"""What `kubefence report` shows, as plain values: the allow matrix with the reasons behind
every cell, the graph of allowed pairs, the lint findings and the assertion results.

`build_report` reads the engine once and produces a `ReportView`; the HTML formatter
(`analyzer.formats.html_report`) only reads the view. Endpoints are grouped by namespace (the
external ranges the policies mention form a last group, `external`), in the matrix's order
within a group, so that the output is deterministic for a given input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from analyzer.findings import AssertionResult, Finding
from analyzer.formats.cells import cell_text
from analyzer.matrix import ExternalsShown, build_matrix, endpoint_indexes
from policy.engine import Analysis
from policy.explain import SideExplanation, explain
from policy.ports import PortSet

EXTERNAL_GROUP = "external"


class Openness(StrEnum):
    """How open a cell is, which is its colour in the heatmap."""

    NOT_APPLICABLE = "na"  # between two externals: no policy governs that traffic
    NONE = "none"
    SOME = "some"
    ALL = "all"


def openness(ports: PortSet | None) -> Openness:
    if ports is None:
        return Openness.NOT_APPLICABLE
    if ports.is_empty():
        return Openness.NONE
    if ports.is_all():
        return Openness.ALL
    return Openness.SOME


@dataclass(frozen=True)
class Endpoint:
    label: str  # `namespace/name`, or an external range
    group: str  # the namespace, or `external`
    kind: str  # "pod", a workload kind, or "external"

    @property
    def short(self) -> str:
        """The label without its namespace (the group band says it)."""
        if self.group == EXTERNAL_GROUP:
            return self.label
        return self.label.partition("/")[2] or self.label


@dataclass(frozen=True)
class Group:
    name: str
    start: int  # index of its first endpoint
    size: int


@dataclass(frozen=True)
class Cell:
    text: str  # the ports, as in the text matrix (`-` none, `n/a` not governed)
    level: Openness
    tooltip: str  # several lines: the ports and the policies and rules behind them


@dataclass(frozen=True)
class Edge:
    source: int
    destination: int
    level: Openness
    text: str


@dataclass(frozen=True)
class ReportView:
    title: str
    inputs: tuple[str, ...]  # the paths read, as given
    endpoints: tuple[Endpoint, ...]
    groups: tuple[Group, ...]
    cells: tuple[tuple[Cell, ...], ...]  # [source][destination], endpoints' order
    edges: tuple[Edge, ...]  # every allowed pair between two distinct endpoints
    findings: tuple[Finding, ...]
    results: tuple[AssertionResult, ...]
    expect: str | None  # the intent file, when assertions were checked


def _side_lines(side: SideExplanation, what: str) -> list[str]:
    head = f"{what} of {side.subject}"
    if not side.governed:
        return [f"{head}: not governed (external)"]
    if not side.isolated:
        return [f"{head}: not isolated (every port)"]
    isolating = ", ".join(p.key for p in side.isolating)
    if not side.matches:
        return [f"{head}: isolated by {isolating}; no rule allows it"]
    lines = [f"{head}: isolated by {isolating}; allowed {side.allowed} by"]
    for m in side.matches:
        lines.append(f"  {m.policy.key} {m.rule.direction.value.lower()}[{m.rule.index}]: "
                     f"{m.ports}")
    return lines


def cell_tooltip(analysis: Analysis, source: int, destination: int,
                 ports: PortSet | None) -> str:
    """`src -> dst`, the ports allowed, then each side: its isolating policies and the rules
    (policy key and rule index) that allow traffic toward the peer."""
    key = analysis.endpoints.key
    head = f"{key(source)} → {key(destination)}"
    if ports is None:
        return f"{head}\nnot governed: both ends are external"
    why = explain(analysis, source, destination)
    lines = [head, f"allowed: {ports}" if ports else "allowed: none (denied)"]
    lines += _side_lines(why.egress, "egress")
    lines += _side_lines(why.ingress, "ingress")
    return "\n".join(lines)


def _group_of(label: str, kind: str) -> str:
    if kind == "external":
        return EXTERNAL_GROUP
    return label.partition("/")[0]


def _grouped_order(labels: Sequence[str], kinds: Sequence[str]) -> list[int]:
    """Matrix positions ordered by group (groups in first-seen order, externals last)."""
    groups: dict[str, list[int]] = {}
    for pos, (label, kind) in enumerate(zip(labels, kinds, strict=True)):
        groups.setdefault(_group_of(label, kind), []).append(pos)
    external = groups.pop(EXTERNAL_GROUP, [])
    return [pos for members in groups.values() for pos in members] + external


def build_report(analysis: Analysis, findings: Sequence[Finding],
                 results: Sequence[AssertionResult], inputs: Sequence[str] = (),
                 expect: str | None = None, title: str = "kubefence report") -> ReportView:
    """The report of one analysis: every cell explained (pods and mentioned external ranges)."""
    shown = ExternalsShown.MENTIONED
    matrix = build_matrix(analysis, shown)
    indexes = endpoint_indexes(analysis, shown)
    order = _grouped_order(matrix.labels, matrix.kinds)
    endpoints = tuple(
        Endpoint(matrix.labels[p], _group_of(matrix.labels[p], matrix.kinds[p]), matrix.kinds[p])
        for p in order
    )
    groups: list[Group] = []
    for i, ep in enumerate(endpoints):
        if groups and groups[-1].name == ep.group:
            last = groups[-1]
            groups[-1] = Group(last.name, last.start, last.size + 1)
        else:
            groups.append(Group(ep.group, i, 1))
    cells: list[tuple[Cell, ...]] = []
    edges: list[Edge] = []
    for i, src in enumerate(order):
        row: list[Cell] = []
        for j, dst in enumerate(order):
            ports = matrix.cells[src][dst]
            level = openness(ports)
            text = cell_text(ports)
            row.append(Cell(text, level,
                            cell_tooltip(analysis, indexes[src], indexes[dst], ports)))
            if i != j and level in (Openness.SOME, Openness.ALL):
                edges.append(Edge(i, j, level, text))
        cells.append(tuple(row))
    return ReportView(title, tuple(inputs), endpoints, tuple(groups), tuple(cells), tuple(edges),
                      tuple(findings), tuple(results), expect)


__all__ = ["EXTERNAL_GROUP", "Cell", "Edge", "Endpoint", "Group", "Openness", "ReportView",
           "build_report", "cell_tooltip", "openness"]
