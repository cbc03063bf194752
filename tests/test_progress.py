"""The progress callbacks of loading and analysis, and the bar the command line draws."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import kubefence.progress
from kubefence.cli import main
from kubefence.progress import StderrBar, render
from policy.engine import Analysis
from policy.loader import load, load_texts
from tests.builders import namespace, netpol, pod, to_yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "manifests" / "examples" / "shop"
OBJECTS = [namespace("x"),
           *[pod("x", f"p{i}", {"app": f"a{i % 3}"}, [], f"10.0.{i // 250}.{i % 250 + 1}")
             for i in range(3000)],
           netpol("x", "deny", {"podSelector": {}})]


def _record() -> tuple[list[tuple[str, float]], object]:
    calls: list[tuple[str, float]] = []
    return calls, lambda stage, fraction: calls.append((stage, fraction))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_loading_reports_a_rising_fraction_that_ends_at_one(fmt: str) -> None:
    text = to_yaml(OBJECTS) if fmt == "yaml" else json.dumps({"kind": "List", "items": OBJECTS})
    calls, progress = _record()
    load_texts([(f"c.{fmt}", text, False)], progress=progress)  # type: ignore[arg-type]
    fractions = [f for stage, f in calls if stage == "loading"]
    assert len(fractions) > 2  # reported along the way, not only at the end
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)


def test_analysis_reports_a_rising_fraction_that_ends_at_one() -> None:
    cluster = load([str(EXAMPLE)])
    calls, progress = _record()
    Analysis(cluster, progress=progress)  # type: ignore[arg-type]
    fractions = [f for stage, f in calls if stage == "analysing"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 3


@pytest.mark.parametrize(("fraction", "frame"), [
    (0.0, "\rloading    [------------------------------]   0%"),
    (0.5, "\rloading    [###############---------------]  50%"),
    (1.0, "\rloading    [##############################] 100%"),
    (1.7, "\rloading    [##############################] 100%"),
])
def test_a_frame_shows_stage_bar_and_percentage(fraction: float, frame: str) -> None:
    assert render("loading", fraction) == frame


def test_the_bar_draws_then_erases_itself() -> None:
    err = io.StringIO()
    bar = StderrBar(err, enabled=True, delay=0.0)
    bar("loading", 1.0)
    bar.close()
    assert err.getvalue().startswith("\rloading") and err.getvalue().endswith("\r\x1b[K")


def test_the_bar_waits_before_drawing_so_short_runs_stay_quiet() -> None:
    err = io.StringIO()
    bar = StderrBar(err, enabled=True, delay=60.0)
    bar("loading", 0.5)
    bar.close()
    assert err.getvalue() == ""


@pytest.mark.parametrize(("mode", "drawn"), [("auto", False), ("never", False), ("always", True)])
def test_cli_progress_modes_on_a_stream_that_is_not_a_terminal(
        mode: str, drawn: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubefence.progress, "DELAY", 0.0)
    out, err = io.StringIO(), io.StringIO()
    assert main(["matrix", str(EXAMPLE), "--progress", mode], out, err) == 0
    assert ("\r" in err.getvalue()) is drawn
    assert "\r" not in out.getvalue()
    if drawn:
        assert err.getvalue().endswith("\r\x1b[K")  # nothing of it is left behind
