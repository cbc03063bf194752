"""Shared test fixtures: where the conformance cases are, and the golden-file switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# One real control plane per session, shared by every module that asks for `lab_cluster`.
from tests.labcluster import lab_cluster  # noqa: F401

REPO = Path(__file__).resolve().parents[1]

# CI draws the same examples every run (a red run must mean a regression, not a new draw);
# local runs keep exploring new random examples.
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def conformance_root() -> Path:
    """`../shared/conformance/k8s-e2e` beside the repository (or $KUBEFENCE_CONFORMANCE)."""
    env = os.environ.get("KUBEFENCE_CONFORMANCE")
    base = Path(env) if env else REPO.parent / "shared" / "conformance"
    return base / "k8s-e2e"


def conformance_cases() -> list[Path]:
    root = conformance_root()
    if not root.is_dir():
        # Missing cases are a broken set-up, not something to skip past.
        raise pytest.UsageError(f"conformance cases not found at {root}")
    return sorted(p for p in root.iterdir() if (p / "expected.json").is_file())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/* from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Privileged tests need root (namespaces, nftables). `make test` runs as root in CI; on a
    machine without root they are skipped with the reason said, never silently."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: network namespaces and nftables")
    for item in items:
        if "privileged" in item.keywords:
            item.add_marker(skip)
