"""Every upstream e2e NetworkPolicy case, read from ../shared/conformance at test time.

Off-diagonal cells are upstream's expectations; the diagonal (a pod to itself) is graded on its
own, since upstream ignores it and the cases hold what plain policy semantics give there.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from kubefence.cli import main
from policy.engine import Analysis
from policy.explain import explain
from policy.loader import load
from policy.ports import Protocol
from tests.conftest import conformance_cases

CASES = conformance_cases()


def _case_inputs(case: Path) -> list[str]:
    return [str(case / "cluster.yaml"), str(case / "policies.yaml")]


def _expected(case: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((case / "expected.json").read_text())
    return doc


def _cells(case: Path, diagonal: bool) -> list[tuple[str, int, str, str, bool]]:
    out = []
    for probe in _expected(case)["probes"]:
        for src, row in probe["matrix"].items():
            for dst, allowed in row.items():
                if (src == dst) == diagonal:
                    out.append((probe["protocol"], probe["port"], src, dst, allowed))
    return out


def test_conformance_cases_are_present() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("diagonal", [False, True], ids=["off-diagonal", "diagonal"])
def test_analyzer_matrix_matches_upstream(case: Path, diagonal: bool) -> None:
    analysis = Analysis(load(_case_inputs(case)))
    wrong = []
    for proto, port, src, dst, expected in _cells(case, diagonal):
        s, d = analysis.index(src), analysis.index(dst)
        assert s is not None and d is not None
        got = bool(analysis.probe(Protocol(proto), port)[s, d])
        if got != expected:
            wrong.append(f"{src} -> {dst} {port}/{proto}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_probe_json_contract_matches_expected(case: Path) -> None:
    """`kubefence matrix --probe ... -o json` prints exactly upstream's matrices."""
    expected = _expected(case)
    argv = ["matrix", *_case_inputs(case), "-o", "json", "-q"]
    for probe in expected["probes"]:
        argv += ["--probe", f"{probe['port']}/{probe['protocol']}"]
    out = io.StringIO()
    assert main(argv, out=out, err=io.StringIO()) == 0
    doc = json.loads(out.getvalue())
    pods = sorted({src for p in expected["probes"] for src in p["matrix"]})
    assert doc["pods"] == pods
    assert doc["probes"] == [
        {"port": p["port"], "protocol": p["protocol"], "matrix": p["matrix"]}
        for p in expected["probes"]
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_explanations_agree_with_matrix(case: Path) -> None:
    analysis = Analysis(load(_case_inputs(case)))
    for s in range(analysis.endpoints.count):
        for d in range(analysis.endpoints.count):
            assert explain(analysis, s, d).allowed == analysis.allowed(s, d), (s, d)
