"""End to end: every upstream conformance case on `kubefence lab up --nodes 2` with its agents.

Privileged. One lab for the module: a real control plane, two lab nodes (kubelet stand-ins)
and one `kubefence agent` per node programming that node's nftables. For each case (a
`<case>__step1`/`__step2` pair is one scenario, in order):

1. its namespaces and pods are applied with kubectl (status and spec.nodeName stripped: the
   scheduler places the pods, the stand-ins give them addresses from their node's podCIDR), and
   the test waits until every pod is Running with an address;
2. its policies are applied, ipBlock CIDRs rewritten to the live addresses (`tests.e2e`);
3. the test waits until every agent has synced the live state (see `tests.e2e.Lab.synced`: each
   agent logs a committed sync after the apply, over exactly the live object counts) and until
   the probes agree with the analyzer, bounded;
4. every pod pair is probed with real packets on the case's ports (SCTP: not probed, this
   kernel has no SCTP sockets), and the observed matrix is compared with the analyzer's matrix
   computed from the live objects (`kubectl get ns,pods,networkpolicies -A -o yaml`), off the
   diagonal and on it separately; the analyzer's live matrix is also compared with upstream's
   expected.json;
5. for a step pair, the differences are applied (labels and policies by `kubectl apply`,
   deletions by `kubectl delete`) and 3-4 repeat; then the case's namespaces are deleted and
   the test waits until they are gone.

Latency: from the policy apply (or the step-2 change) to the moment a probe observes the
change (a cell whose answer differs from the state before, polled with a 0.25 s probe
timeout). The figures are printed at the end of the module.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import conformance_cases
from tests.e2e import (
    Lab,
    Observation,
    cidr_mapping,
    diagonal,
    lab_up,
    off_diagonal,
    read_case,
)

pytestmark = pytest.mark.privileged

CASES = conformance_cases()


def _scenarios() -> list[tuple[str, list[Path]]]:
    out: list[tuple[str, list[Path]]] = []
    by_name = {c.name: c for c in CASES}
    for case in CASES:
        if case.name.endswith("__step2"):
            continue
        if case.name.endswith("__step1"):
            base = case.name.removesuffix("__step1")
            out.append((base, [case, by_name[f"{base}__step2"]]))
        else:
            out.append((case.name, [case]))
    return out


SCENARIOS = _scenarios()
LATENCIES: list[tuple[str, float]] = []


@dataclass
class ScenarioResult:
    steps: list[tuple[str, Observation]] = field(default_factory=list)


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = time.monotonic()
    directory = tmp_path_factory.mktemp("e2e")
    with lab_up(directory) as running:
        yield running
    if LATENCIES:
        values = sorted(v for _, v in LATENCIES)
        worst = max(LATENCIES, key=lambda x: x[1])
        line = (f"[e2e] kubectl apply -> a probe observes the change, {len(values)} changes: "
                f"median {statistics.median(values):.2f} s, worst {worst[1]:.2f} s "
                f"({worst[0]}); module {time.monotonic() - started:.0f} s")
        (directory / "latency.json").write_text(json.dumps(LATENCIES, indent=1) + "\n")
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"\n{line}", file=sys.stderr)


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s[0] for s in SCENARIOS])
def scenario(request: pytest.FixtureRequest, lab: Lab) -> Iterator[ScenarioResult]:
    _, steps = request.param
    result = ScenarioResult()
    try:
        previous = None
        for case in steps:
            data = read_case(case)
            if previous is None:
                lab.create(data)
                before = lab.observe(data)
                changed_at = lab.apply_policies(data)
            else:
                before = lab.observe(data)
                changed_at = lab.change(previous, data)
            obs = lab.settle(data, before, changed_at)
            if obs.latency is not None:
                LATENCIES.append((case.name, obs.latency))
            result.steps.append((case.name, obs))
            previous = data
        yield result
    finally:
        lab.clean()


def test_observed_matches_analyzer_off_diagonal(scenario: ScenarioResult) -> None:
    for name, obs in scenario.steps:
        assert obs.synced, f"{name}: the agents did not sync within the bound: {obs.sync_note}"
        assert off_diagonal(obs.observed) == off_diagonal(obs.analyzer), name


def test_observed_matches_analyzer_on_diagonal(scenario: ScenarioResult) -> None:
    """A pod's traffic to itself, graded apart (upstream ignores it): it never leaves the pod's
    namespace, so no node sees it; the agents program each pod's own namespace for it
    (`--pod-netns-prefix`, which `lab up` gives them)."""
    for name, obs in scenario.steps:
        assert diagonal(obs.observed) == diagonal(obs.analyzer), name


def test_live_analyzer_matches_upstream(scenario: ScenarioResult) -> None:
    """The analyzer on the live objects gives upstream's expectations, where the case's CIDRs
    map faithfully onto the live addresses (all of them, today)."""
    for name, obs in scenario.steps:
        if not obs.faithful:
            continue
        assert off_diagonal(obs.analyzer_all) == off_diagonal(obs.upstream), name
        assert diagonal(obs.analyzer_all) == diagonal(obs.upstream), name


def test_every_cidr_maps_faithfully() -> None:
    """The rewriting keeps each ipBlock's meaning: the same case pods inside, the same out."""
    for case in CASES:
        data = read_case(case)
        live = {key: f"10.244.{1 + i % 2}.{2 + i // 2}" for i, key in enumerate(data.pod_keys)}
        _, faithful = cidr_mapping(data, live)
        assert faithful, case.name
