"""`kubefence report`: one self-contained HTML page, its content, and how a browser renders it."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analyzer.formats.html_report import report_html
from analyzer.lints import run_lints
from analyzer.report import Openness, ReportView, build_report
from kubefence.cli import main
from policy.engine import Analysis
from policy.loader import load
from tests.conftest import REPO

SHOP = str(REPO / "manifests" / "examples" / "shop")
INTENTS = str(REPO / "manifests" / "examples" / "shop-intents" / "intents.yaml")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def shop_view() -> ReportView:
    analysis = Analysis(load([SHOP]))
    return build_report(analysis, run_lints(analysis), [], inputs=[SHOP])


@pytest.fixture(scope="module")
def shop_html() -> str:
    code, out, err = run("report", SHOP, "--expect", INTENTS, "-o", "-", "-q")
    assert code == 0, err
    return out


class Structure(HTMLParser):
    """Records what breaks the page's structure: a closing tag that closes nothing open, an
    element left open, and the title attribute of every table cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.titles: dict[tuple[str, str], str] = {}
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "td" and a.get("data-r") is not None:
            self.titles[(str(a["data-r"]), str(a["data-c"]))] = a.get("title") or ""
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} "
                               f"at {self.getpos()}")
            return
        self.stack.pop()

    def close(self) -> None:
        super().close()
        if self.stack:
            self.errors.append(f"left open: {self.stack}")


def parsed(page: str) -> Structure:
    p = Structure()
    p.feed(page)
    p.close()
    return p


def test_page_is_well_formed_and_has_every_section(shop_html: str) -> None:
    p = parsed(shop_html)
    assert p.errors == []
    assert shop_html.startswith("<!DOCTYPE html>")
    for section in ("matrix", "graph", "findings", "assertions", "detail"):
        assert section in p.ids


def test_every_pod_and_namespace_is_labelled(shop_view: ReportView, shop_html: str) -> None:
    pods = ["db/postgres", "kube-system/coredns", "monitoring/prometheus", "shop/api",
            "shop/web", "shop/worker"]
    assert [e.label for e in shop_view.endpoints if e.kind != "external"] == pods
    for pod in pods:
        assert f'title="{pod}"' in shop_html  # the row and column headers
    assert [g.name for g in shop_view.groups] == ["db", "kube-system", "monitoring", "shop",
                                                  "external"]
    for g in shop_view.groups:
        assert f'colspan="{g.size}">{g.name}</th>' in shop_html


def test_known_cell_tooltip_names_ports_and_policies(shop_view: ReportView,
                                                     shop_html: str) -> None:
    labels = [e.label for e in shop_view.endpoints]
    i, j = labels.index("shop/web"), labels.index("shop/api")
    cell = shop_view.cells[i][j]
    assert cell.level is Openness.SOME and cell.text == "TCP 8080"
    title = parsed(shop_html).titles[(str(i), str(j))]
    assert title.startswith("shop/web → shop/api\nallowed: TCP 8080")
    assert "shop/web egress[0]: TCP 8080" in title  # the web policy's egress rule
    assert "shop/api ingress[0]: TCP 8080" in title  # the api policy's ingress rule


def test_unrestricted_side_says_not_isolated(shop_view: ReportView) -> None:
    labels = [e.label for e in shop_view.endpoints]
    i, j = labels.index("monitoring/prometheus"), labels.index("shop/api")
    tip = shop_view.cells[i][j].tooltip
    assert "egress of monitoring/prometheus: not isolated" in tip
    assert "shop/api ingress[1]: TCP 9090" in tip
    assert shop_view.cells[i][labels.index("kube-system/coredns")].level is Openness.ALL


def test_graph_has_an_edge_per_allowed_pair(shop_view: ReportView, shop_html: str) -> None:
    allowed = sum(c.level in (Openness.SOME, Openness.ALL)
                  for i, row in enumerate(shop_view.cells) for j, c in enumerate(row) if i != j)
    assert len(shop_view.edges) == allowed > 0
    assert len(re.findall(r'<path class="e-(some|all)"', shop_html)) == allowed
    assert "<title>shop/web → shop/api: TCP 8080</title>" in shop_html


def test_findings_and_assertions_tables(shop_html: str) -> None:
    assert "<td>KF101</td>" in shop_html and "<td>KF109</td>" in shop_html
    assert "policies.yaml:11" in shop_html
    assert "allow egress to k8s-app=kube-dns" in shop_html  # the fix hint
    assert shop_html.count('<td class="pass">holds</td>') == 4
    assert "the web tier reaches the API" in shop_html


def test_self_contained_no_remote_references(shop_html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", shop_html, re.I)
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?(https?:)?//", shop_html, re.I)
    assert "http://" not in shop_html and "https://" not in shop_html


def test_everything_is_escaped(shop_view: ReportView) -> None:
    hostile = replace(shop_view, title='<script>alert("x")</script>', inputs=("a&b",))
    page = report_html(hostile)
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "a&amp;b" in page
    assert parsed(page).errors == []


def test_failed_assertion_shows_counterexample(tmp_path: Path) -> None:
    intents = tmp_path / "i.yaml"
    intents.write_text("assertions:\n- from: {labels: {app: web}}\n"
                       "  to: {labels: {app: postgres}}\n  expect: allowed\n")
    code, page, _ = run("report", SHOP, "--expect", str(intents), "-o", "-", "-q")
    assert code == 0  # a report, not a check: failures are shown, not an exit code
    assert '<td class="fail">fails</td>' in page
    assert "shop/web → db/postgres" in page
    assert parsed(page).errors == []


def test_output_is_deterministic(shop_html: str) -> None:
    assert run("report", SHOP, "--expect", INTENTS, "-o", "-", "-q")[1] == shop_html


def test_writes_the_file_and_exit_codes(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out, _ = run("report", SHOP, "-o", str(target), "-q")
    assert code == 0 and out == "" and target.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    assert "No intent file given" in target.read_text(encoding="utf-8")
    assert run("report", str(tmp_path / "missing"), "-o", "-")[0] == 2
    assert run("report", SHOP, "--expect", str(tmp_path / "nope.yaml"), "-o", "-")[0] == 2
    assert run("report", SHOP, "-o", str(tmp_path / "no" / "dir" / "r.html"), "-q")[0] == 2
    assert run("report", SHOP)[0] == 2  # -o is required


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.browser
def test_browser_renders_the_report_without_script_errors(tmp_path: Path) -> None:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (scripts/setup-system.sh installs it)")
    report = tmp_path / "report.html"
    assert run("report", SHOP, "--expect", INTENTS, "-o", str(report), "-q")[0] == 0
    url = report.as_uri()

    shot = tmp_path / "shot.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1000", url)
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000, "a blank page compresses to a few kilobytes"

    dom = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<body data-ready="1">' in dom.stdout  # the inline script ran to its end
    assert 'id="matrix"' in dom.stdout and "TCP 8080" in dom.stdout
    assert "Uncaught" not in dom.stderr, [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
