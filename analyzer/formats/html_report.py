"""`kubefence report`: one self-contained HTML page (inline CSS, JS and SVG; nothing fetched).

A pure function of a `ReportView`: the allow matrix as a heatmap with namespace bands and a
tooltip (`title`) per cell naming the ports and the policies and rules behind them, the graph of
allowed pairs as an inline SVG (one column per namespace, computed here, deterministic), and the
lint findings and assertion results as tables. Every text from the input is escaped.
"""

from __future__ import annotations

import math
from html import escape

from analyzer.findings import AssertionResult, Finding
from analyzer.report import Edge, Openness, ReportView

_CSS = """
:root { --none: #f3f4f6; --some: #fdba74; --all: #dc2626; --na: #ffffff; --line: #9ca3af; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem;
  color: #111827; background: #fff; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #4b5563; margin: 0 0 1rem; }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .5rem;
  border: 1px solid #d1d5db; font-size: .8rem; }
.wrap { overflow: auto; max-width: 100%; border: 1px solid #e5e7eb; }
table { border-collapse: collapse; font-size: .8rem; }
#matrix td, #matrix th { border: 1px solid #e5e7eb; padding: .15rem .3rem; white-space: nowrap; }
#matrix thead th.col { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
  font-weight: 500; }
#matrix th.band { background: #1f2937; color: #fff; font-weight: 600; text-align: center; }
#matrix th.row { text-align: right; font-weight: 500; }
#matrix td { text-align: center; min-width: 2.2rem; cursor: pointer; }
#matrix .gs { border-left: 3px solid #374151; } #matrix .gt { border-top: 3px solid #374151; }
td.lv-none { background: var(--none); color: #9ca3af; } td.lv-some { background: var(--some); }
td.lv-all { background: var(--all); color: #fff; } td.lv-na { background: var(--na);
  color: #d1d5db; }
#matrix .hl { outline: 2px solid #2563eb; outline-offset: -2px; }
#detail { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: .8rem;
  background: #f9fafb; border: 1px solid #e5e7eb; padding: .5rem; min-height: 2.5rem; }
table.list th, table.list td { border: 1px solid #e5e7eb; padding: .25rem .5rem;
  text-align: left; vertical-align: top; }
table.list th { background: #f3f4f6; }
.sev-error, .fail { color: #b91c1c; font-weight: 600; } .sev-warning { color: #b45309; }
.sev-note { color: #1d4ed8; } .pass { color: #15803d; font-weight: 600; }
svg text { font-size: 11px; font-family: inherit; } svg .ns { font-weight: 600; font-size: 12px; }
svg .box { fill: #f9fafb; stroke: #d1d5db; } svg .node { fill: #1f2937; }
svg path.e-some { stroke: #f97316; } svg path.e-all { stroke: #dc2626; }
svg path { fill: none; stroke-width: 1.2; opacity: .7; } svg path:hover { stroke-width: 3;
  opacity: 1; }
"""

# Highlights the row and column of the hovered cell, shows a clicked cell's explanation in the
# detail box, and marks the page as ready (what the browser test looks for).
_JS = """
(function () {
  "use strict";
  var table = document.getElementById("matrix");
  var detail = document.getElementById("detail");
  var marked = [];
  function clear() {
    for (var i = 0; i < marked.length; i++) { marked[i].classList.remove("hl"); }
    marked = [];
  }
  function cellOf(target) {
    return target && target.closest ? target.closest("td[data-r]") : null;
  }
  if (table) {
    table.addEventListener("mouseover", function (ev) {
      var td = cellOf(ev.target);
      if (!td) { return; }
      clear();
      var sel = '[data-r="' + td.getAttribute("data-r") + '"],[data-c="' +
        td.getAttribute("data-c") + '"]';
      var found = table.querySelectorAll(sel);
      for (var i = 0; i < found.length; i++) {
        found[i].classList.add("hl");
        marked.push(found[i]);
      }
    });
    table.addEventListener("mouseleave", clear);
    table.addEventListener("click", function (ev) {
      var td = cellOf(ev.target);
      if (td && detail) { detail.textContent = td.getAttribute("title"); }
    });
  }
  document.body.setAttribute("data-ready", "1");
})();
"""

_LEVEL_TEXT = {
    Openness.NONE: "denied",
    Openness.SOME: "some ports",
    Openness.ALL: "every port",
    Openness.NOT_APPLICABLE: "not governed (external to external)",
}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _matrix(view: ReportView) -> list[str]:
    starts = {g.start for g in view.groups}
    out = ['<div class="wrap"><table id="matrix">', "<thead>",
           '<tr><th></th><th class="corner">from \\ to</th>']
    out += [f'<th class="band gs" colspan="{g.size}">{_e(g.name)}</th>' for g in view.groups]
    out += ["</tr>", "<tr><th></th><th></th>"]
    for j, ep in enumerate(view.endpoints):
        cls = "col gs" if j in starts else "col"
        out.append(f'<th class="{cls}" data-c="{j}" title="{_e(ep.label)}">{_e(ep.short)}</th>')
    out += ["</tr>", "</thead>", "<tbody>"]
    for g in view.groups:
        for i in range(g.start, g.start + g.size):
            ep = view.endpoints[i]
            top = ' class="gt"' if i == g.start else ""
            out.append(f"<tr{top}>")
            if i == g.start:
                out.append(f'<th class="band" rowspan="{g.size}">{_e(g.name)}</th>')
            out.append(f'<th class="row" data-r="{i}" title="{_e(ep.label)}">{_e(ep.short)}</th>')
            for j, cell in enumerate(view.cells[i]):
                cls = f"lv-{cell.level.value}" + (" gs" if j in starts else "")
                out.append(f'<td class="{cls}" data-r="{i}" data-c="{j}" '
                           f'title="{_e(cell.tooltip)}">{_e(cell.text)}</td>')
            out.append("</tr>")
    out += ["</tbody>", "</table></div>"]
    return out


COL_W, ROW_H, TOP, LEFT, NODE_R = 270, 34, 56, 24, 5


def _positions(view: ReportView) -> list[tuple[float, float]]:
    pos: list[tuple[float, float]] = [(0.0, 0.0)] * len(view.endpoints)
    for col, g in enumerate(view.groups):
        for k in range(g.size):
            pos[g.start + k] = (LEFT + 16 + col * COL_W, TOP + 24 + k * ROW_H)
    return pos


def _edge_path(edge: Edge, pos: list[tuple[float, float]]) -> str:
    (x1, y1), (x2, y2) = pos[edge.source], pos[edge.destination]
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy) or 1.0
    bend = min(0.25 * length, 90.0)  # to the right of the direction: A->B and B->A differ
    cx, cy = (x1 + x2) / 2 - dy / length * bend, (y1 + y2) / 2 + dx / length * bend
    return f"M{x1:.1f},{y1:.1f} Q{cx:.1f},{cy:.1f} {x2:.1f},{y2:.1f}"


def _graph(view: ReportView) -> list[str]:
    tallest = max((g.size for g in view.groups), default=0)
    width = LEFT * 2 + max(len(view.groups), 1) * COL_W
    height = TOP + 24 + tallest * ROW_H + 20
    pos = _positions(view)
    out = [f'<svg id="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="allowed connections">',
           "<defs>",
           '<marker id="arrow-some" viewBox="0 0 10 10" refX="14" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#f97316">'
           "</path></marker>",
           '<marker id="arrow-all" viewBox="0 0 10 10" refX="14" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#dc2626">'
           "</path></marker>",
           "</defs>"]
    for col, g in enumerate(view.groups):
        x = LEFT + col * COL_W
        out.append(f'<g class="group"><rect class="box" x="{x}" y="{TOP - 8}" '
                   f'width="{COL_W - 30}" height="{g.size * ROW_H + 16}" rx="6"></rect>'
                   f'<text class="ns" x="{x + 4}" y="{TOP - 16}">{_e(g.name)}</text></g>')
    for edge in view.edges:
        src, dst = view.endpoints[edge.source].label, view.endpoints[edge.destination].label
        lv = edge.level.value
        out.append(f'<path class="e-{lv}" d="{_edge_path(edge, pos)}" '
                   f'marker-end="url(#arrow-{lv})"><title>{_e(src)} → {_e(dst)}: '
                   f"{_e(edge.text)}</title></path>")
    for i, ep in enumerate(view.endpoints):
        px, py = pos[i]
        out.append(f'<g class="ep"><circle class="node" cx="{px:.1f}" cy="{py:.1f}" '
                   f'r="{NODE_R}"><title>{_e(ep.label)}</title></circle>'
                   f'<text x="{px + 10:.1f}" y="{py + 4:.1f}">{_e(ep.short)}</text></g>')
    out.append("</svg>")
    return out


def _findings(findings: tuple[Finding, ...]) -> list[str]:
    if not findings:
        return ['<p id="findings">No lint findings.</p>']
    out = ['<table class="list" id="findings"><thead><tr><th>code</th><th>severity</th>'
           "<th>location</th><th>message</th><th>fix</th></tr></thead><tbody>"]
    for f in findings:
        sev = f.severity.value
        out.append(f"<tr><td>{_e(f.code)}</td><td class=\"sev-{_e(sev)}\">{_e(sev)}</td>"
                   f"<td>{_e(f.location.render())}</td><td>{_e(f.message)}</td>"
                   f"<td>{_e(f.hint)}</td></tr>")
    out.append("</tbody></table>")
    return out


def _results(results: tuple[AssertionResult, ...], expect: str | None) -> list[str]:
    if expect is None:
        return ['<p id="assertions">No intent file given (<code>--expect FILE</code>).</p>']
    if not results:
        return [f'<p id="assertions">{_e(expect)} has no assertions.</p>']
    out = ['<table class="list" id="assertions"><thead><tr><th>result</th><th>assertion</th>'
           "<th>location</th><th>message</th><th>counterexample</th><th>because of</th></tr>"
           "</thead><tbody>"]
    for r in results:
        status = '<td class="pass">holds</td>' if r.passed else '<td class="fail">fails</td>'
        ce = ""
        if r.counterexample is not None:
            c = r.counterexample
            port = f" {c.port}/{c.protocol}" if c.port is not None else ""
            ce = f"{c.source} → {c.destination}{port}"
        because = "<br>".join(_e(loc.render()) for loc in r.responsible)
        out.append(f"<tr>{status}<td>{_e(r.name)}</td><td>{_e(r.location.render())}</td>"
                   f"<td>{_e(r.message)}</td><td>{_e(ce)}</td><td>{because}</td></tr>")
    out.append("</tbody></table>")
    return out


def _summary(view: ReportView) -> str:
    failed = sum(not r.passed for r in view.results)
    parts = [f"{len(view.endpoints)} endpoints in {len(view.groups)} groups",
             f"{len(view.edges)} allowed pairs", f"{len(view.findings)} lint findings"]
    if view.expect is not None:
        parts.append(f"{len(view.results) - failed} of {len(view.results)} assertions hold")
    return "; ".join(parts)


def report_html(view: ReportView) -> str:
    """The whole page. Deterministic: the same view gives the same bytes."""
    inputs = ", ".join(view.inputs)
    legend = "".join(f'<span class="lv-{lv.value}" style="background: var(--{lv.value})">'
                     f"{_e(text)}</span>" for lv, text in _LEVEL_TEXT.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(view.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(view.title)}</h1>",
        f'<p class="meta">{_e(inputs)}{" — " if inputs else ""}{_e(_summary(view))}</p>',
        "<h2>Allow matrix</h2>",
        "<p>Row → column: the ports the source may open to the destination. Hover a cell for "
        "the policies and rules behind it; click it to keep the explanation below.</p>",
        f'<p class="legend">{legend}</p>',
        *_matrix(view),
        '<div id="detail" aria-live="polite">Click a cell for its explanation.</div>',
        "<h2>Graph</h2>",
        "<p>One column per namespace; an arrow per allowed pair (orange: some ports, red: "
        "every port).</p>",
        '<div class="wrap">', *_graph(view), "</div>",
        "<h2>Lint findings</h2>",
        *_findings(view.findings),
        "<h2>Assertions</h2>",
        *_results(view.results, view.expect),
        f"<script>{_JS}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
