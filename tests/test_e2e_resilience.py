"""End to end, privileged: the lab's enforcement survives its parts going away.

One `kubefence lab up --nodes 2` with agents (`tests.e2e.lab_up`). Namespace `resil`: server
`s` (app=s) on node-1, clients `c` (app=c) and `o` (app=o) on node-2; policy `only-c` lets
app=c, and nothing else, reach app=s on 80.

- The agent of node-1 is killed (SIGKILL) while packets flow: `o` never reaches `s` in
  between; a change made while it is down (c relabelled out of the policy) is enforced once
  `lab up` has started it again.
- The control plane (etcd, API server, controllers) is stopped for a while with `kubefence lab
  controlplane stop`: the rules stay in force and the agents stay up; after `start`, a change
  made then (a policy letting app=o in) is enforced.

Probers run in a thread that connects every PROBE_EVERY seconds, with a short timeout, and
records each answer with its time, so "never reachable in between" is checked connection by
connection, not by a sample taken afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.prober import probe_all
from policy.ports import Protocol
from tests.e2e import Case, Lab, lab_up, wait_for

pytestmark = pytest.mark.privileged

NS = "resil"
PROBE_TIMEOUT = 0.3
PROBE_EVERY = 0.05
WAIT = 30.0
DOWN_FOR = 8.0  # seconds the control plane stays stopped


def _pod(name: str, app: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                     "containers": [{"name": "c", "image": "pause", "ports": [
                         {"name": "serve-80-tcp", "containerPort": 80, "protocol": "TCP"}]}]}}


def _policy(name: str, apps: list[str]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": "s"}},
                     "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                         {"key": "app", "operator": "In", "values": apps}]}}],
                         "ports": [{"port": 80}]}]}}


CASE = Case(
    name="resilience",
    namespaces=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}],
    pods=[_pod("s", "s", "node-1"), _pod("c", "c", "node-2"), _pod("o", "o", "node-2")],
    policies=[_policy("only-c", ["c"])],
    fixed_ips={f"{NS}/{n}": "0.0.0.0" for n in ("s", "c", "o")},  # only the keys are used
    probes=[(80, Protocol.TCP)], expected={})


class Prober:
    """Connects c->s and o->s over and over in a thread; every answer kept with its time."""

    def __init__(self, lab: Lab) -> None:
        keys = [f"{NS}/c", f"{NS}/o", f"{NS}/s"]
        targets = lab.targets(keys, (80, Protocol.TCP))
        self.targets = {"c": targets[2], "o": targets[5]}  # c->s, o->s (rows c, o; column s)
        self.seen: list[tuple[float, str, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            answers = probe_all(list(self.targets.values()), PROBE_TIMEOUT)
            now = time.monotonic()
            for name, ok in zip(self.targets, answers, strict=True):
                self.seen.append((now, name, ok))
            self._stop.wait(PROBE_EVERY)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def answers(self, name: str, since: float = 0.0, until: float = float("inf")) -> list[bool]:
        return [ok for t, n, ok in list(self.seen) if n == name and since <= t <= until]

    def now(self, name: str) -> bool:
        return bool(probe_all([self.targets[name]], PROBE_TIMEOUT)[0])


def _state(lab: Lab) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((lab.dir / "lab.json").read_text())
    return state


def _lab_cmd(lab: Lab, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "kubefence", "lab", *args, "--dir",
                           str(lab.dir)], capture_output=True, text=True, timeout=240,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory: Path = tmp_path_factory.mktemp("resilience")
    with lab_up(directory) as running:
        running.create(CASE)
        running.apply(CASE.policies)
        wait_for("only c reaches s", lambda: reaches(running, "c") and not reaches(running, "o"),
                 WAIT)
        yield running


def test_killed_agent_leaves_the_rules_in_force_and_its_restart_applies_changes(
        lab: Lab) -> None:
    before = _state(lab)
    pid = before["agents"]["node-1"]
    restarts = before["agent_restarts"].get("node-1", 0)
    with Prober(lab) as probe:
        time.sleep(1.0)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        # while it is down: c leaves the policy (the restarted agent must enforce it)
        lab.kubectl("-n", NS, "label", "pod", "c", "app=gone", "--overwrite")
        wait_for("lab up started the agent again",
                 lambda: _state(lab)["agent_restarts"].get("node-1", 0) == restarts + 1, WAIT)
        wait_for("the restarted agent ready", lab.agents_ready, WAIT)
        wait_for("c no longer reaches s", lambda: not probe.now("c"), WAIT)
        back = time.monotonic()
        time.sleep(1.0)
    o_answers = probe.answers("o")
    assert len(probe.answers("o", killed, back)) >= 10, "too few probes while it was down"
    assert not any(o_answers), f"o reached s {o_answers.count(True)} times"
    assert all(probe.answers("c", 0, killed)), "c was allowed before the kill"
    assert _state(lab)["agents"]["node-1"] != pid
    lab.kubectl("-n", NS, "label", "pod", "c", "app=c", "--overwrite")
    wait_for("c reaches s again", lambda: reaches(lab, "c"), WAIT)


def reaches(lab: Lab, name: str) -> bool:
    return Prober(lab).now(name)


def test_control_plane_stopped_the_rules_stay_and_later_changes_are_enforced(
        lab: Lab) -> None:
    agents = dict(_state(lab)["agents"])
    with Prober(lab) as probe:
        stopped = _lab_cmd(lab, "controlplane", "stop")
        assert stopped["controlplane"] == "stopped" and stopped["controlplane_pid"] is None
        down_at = time.monotonic()
        time.sleep(DOWN_FOR)
        assert subprocess.run([lab.state["kubectl"], "--kubeconfig", lab.state["kubeconfig"],
                               "get", "pods", "--request-timeout=2s"], capture_output=True,
                              timeout=30, check=False).returncode != 0, "the API still answers"
        up_at = time.monotonic()
        started = _lab_cmd(lab, "controlplane", "start")
        assert started["controlplane"] == "running" and started["server"] == stopped["server"]
    while_down = (probe.answers("c", down_at, up_at), probe.answers("o", down_at, up_at))
    assert len(while_down[0]) >= 10 and all(while_down[0]), "c lost s while the API was down"
    assert not any(while_down[1]), "o reached s while the API was down"
    assert _state(lab)["agents"] == agents  # the agents rode it out: no restart
    changed = time.monotonic()
    lab.apply([_policy("only-c", ["c", "o"])])
    wait_for("a change after the restart is enforced", lambda: reaches(lab, "o"), WAIT)
    print(f"\n[e2e] after the control plane came back: change enforced in "
          f"{time.monotonic() - changed:.2f} s", file=sys.stderr)
    for log in lab.agent_logs().values():
        events = [json.loads(line).get("event") for line in log.read_text().splitlines()
                  if line.startswith("{")]
        assert "watch_error" in events, f"{log.name}: the outage went unnoticed"
