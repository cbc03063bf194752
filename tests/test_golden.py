"""Golden outputs of every format on the bundled shop example.

After an intended change of output, regenerate with `make golden` (pytest --update-golden) and
review the diff like code.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kubefence.cli import main
from tests.conftest import REPO

GOLDEN = Path(__file__).parent / "golden"
SHOP = "manifests/examples/shop"
INTENTS = "manifests/examples/shop-intents/intents.yaml"
PROBES = ["--probe", "80/TCP", "--probe", "53/UDP", "--probe", "9090/TCP"]

CASES: list[tuple[str, list[str], int]] = [
    ("matrix.txt", ["matrix", SHOP], 0),
    ("matrix.json", ["matrix", SHOP, "-o", "json"], 0),
    ("matrix.csv", ["matrix", SHOP, "-o", "csv"], 0),
    ("matrix.md", ["matrix", SHOP, "-o", "md"], 0),
    ("matrix.dot", ["matrix", SHOP, "-o", "dot"], 0),
    ("matrix-externals-all.txt", ["matrix", SHOP, "--externals", "all"], 0),
    ("matrix-externals-none.csv", ["matrix", SHOP, "--externals", "none", "-o", "csv"], 0),
    ("probe.txt", ["matrix", SHOP, *PROBES], 0),
    ("probe.json", ["matrix", SHOP, *PROBES, "-o", "json"], 0),
    ("probe.csv", ["matrix", SHOP, *PROBES, "-o", "csv"], 0),
    ("probe.md", ["matrix", SHOP, *PROBES, "-o", "md"], 0),
    ("probe.dot", ["matrix", SHOP, *PROBES, "-o", "dot"], 0),
    ("can-allowed.txt", ["can", "shop/web", "shop/api", SHOP, "--port", "8080/TCP"], 0),
    ("can-denied.txt", ["can", "shop/web", "db/postgres", SHOP, "--port", "5432/TCP"], 1),
    ("can-other-port.txt", ["can", "shop/web", "shop/api", SHOP, "--port", "9090/TCP"], 1),
    ("can-any-port.txt", ["can", "monitoring/prometheus", "shop/api", SHOP], 0),
    ("can-external.txt", ["can", "shop/worker", "203.0.113.7", SHOP, "--port", "443"], 0),
    ("can.json", ["can", "shop/web", "shop/api", SHOP, "--port", "8080/TCP", "-o", "json"], 0),
    ("who-can-reach.txt", ["who-can-reach", "shop/api", SHOP], 0),
    ("who-can-reach.json", ["who-can-reach", "shop/api", SHOP, "-o", "json"], 0),
    ("reach.txt", ["reach", "shop/worker", SHOP], 0),
    ("check.txt", ["check", SHOP, "--expect", INTENTS], 0),
    ("check-junit.xml", ["check", SHOP, "--expect", INTENTS, "--format", "junit"], 0),
    ("check.sarif", ["check", SHOP, "--expect", INTENTS, "--format", "sarif"], 0),
    ("check-github.txt", ["check", SHOP, "--expect", INTENTS, "--format", "github"], 0),
]


@pytest.mark.parametrize(("name", "argv", "code"), CASES, ids=[c[0] for c in CASES])
def test_output_matches_golden(name: str, argv: list[str], code: int, update_golden: bool,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # file names in explanations are relative, as a user types them
    out = io.StringIO()
    assert main([*argv, "-q"], out=out, err=io.StringIO()) == code
    path = GOLDEN / name
    if update_golden:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(out.getvalue())
    assert path.exists(), f"no golden file {path}; run `make golden`"
    assert out.getvalue() == path.read_text()
