"""`kubefence lab up` and `kubefence lab down`: a real control plane and N lab nodes.

`up` runs in the foreground until SIGTERM or SIGINT, then tears everything down and returns
(exit 0). It starts the control plane (`lab.controlplane`, files and admin kubeconfig in DIR),
builds the switch and one namespace per node (routed to each other's podCIDR over the switch,
as `lab probe` does), registers every node through its kubelet stand-in (`lab.kubelet`, two
threads of this process each), waits until every node is Ready, optionally starts one enforcer
agent per node, and then writes DIR/lab.json and prints the same JSON line: the lab is ready.

`down` reads DIR/lab.json, sends SIGTERM to the `up` process and waits for it; whatever it left
(a killed `up`: the control plane, agents, namespaces with the run's prefix) is removed too.
Nothing is ever attached to the root namespace: only the API server listens there, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import controlplane
from lab.controlplane import ControlPlane, alive, stop_pid
from lab.netns import LabError, delete, existing
from lab.topology import LabNode, add_node, make_switch, new_prefix, route_via

DEFAULT_DIR = Path("/run/kubefence-lab")
READY_TIMEOUT = 60.0
DOWN_TIMEOUT = 90.0
STATE = "lab.json"


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root: it creates network namespaces and nftables rules")


def agents_available() -> bool:
    """The per-node enforcer agent (`kubefence agent`) exists in this checkout."""
    try:
        return importlib.util.find_spec("enforcer.agent") is not None
    except ImportError:
        return False


@dataclass
class Lab:
    directory: Path
    prefix: str = field(default_factory=new_prefix)
    plane: ControlPlane | None = None
    switch: str = ""
    nodes: list[LabNode] = field(default_factory=list)
    kubelets: list[Any] = field(default_factory=list)  # lab.kubelet.Kubelet
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        assert self.plane is not None
        return {
            "pid": os.getpid(), "dir": str(self.directory), "prefix": self.prefix,
            "kubeconfig": self.plane.kubeconfig, "server": self.plane.info.get("server"),
            "kubectl": str(controlplane.kubectl()), "controlplane_pid": self.plane.pid,
            "switch": self.switch,
            "nodes": [{"name": n.name, "netns": n.netns, "ip": str(n.uplink4),
                       "podCIDR": str(k.addresses.cidr)}
                      for n, k in zip(self.nodes, self.kubelets, strict=True)],
            "agents": {name: proc.pid for name, proc in self.agents.items()},
        }


@contextmanager
def _signals_unwind() -> Iterator[None]:
    """The first SIGTERM or SIGINT unwinds as KeyboardInterrupt; later ones are ignored, so
    the teardown that follows cannot itself be interrupted."""
    caught: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not caught:
            caught.append(signum)
            raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def up(nodes: int, directory: Path = DEFAULT_DIR, agents: bool | None = None,
       ready: Callable[[dict[str, Any]], None] | None = None,
       stop_after: float | None = None) -> None:
    """Bring the lab up, call `ready(state)`, and hold it until SIGTERM/SIGINT (or for
    `stop_after` seconds); then, and on any failure, tear it all down."""
    require_root()
    directory = directory.resolve()
    previous = _read_state(directory)
    if previous is not None and alive(int(previous["pid"])):
        raise LabError(f"a lab is already up in {directory} (pid {previous['pid']}); "
                       f"`kubefence lab down --dir {directory}` stops it")
    controlplane.binary()  # fails early and cleanly when it is missing
    directory.mkdir(parents=True, exist_ok=True)
    _configure_log(directory)
    with_agents = agents_available() if agents is None else agents
    lab = Lab(directory)
    logging.getLogger("kubefence.lab").info("lab up: %d nodes, prefix %s", nodes, lab.prefix)
    with _signals_unwind():
        try:
            _bring_up(lab, nodes, with_agents)
            state = lab.state()
            _write_state(directory, state)
            if ready is not None:
                ready(state)
            _hold(lab, stop_after)
        except KeyboardInterrupt:
            pass  # the normal way to stop
        finally:
            _teardown(lab)


def _bring_up(lab: Lab, nodes: int, with_agents: bool) -> None:
    from lab.kubelet import Kubelet  # the kubernetes client: only when a lab comes up

    lab.plane = controlplane.start(lab.directory)
    lab.switch = make_switch(lab.prefix)
    for i in range(1, nodes + 1):
        lab.nodes.append(add_node(lab.switch, lab.prefix, i - 1, f"node-{i}"))
    for node in lab.nodes:
        kubelet = Kubelet(node, int(node.name.rsplit("-", 1)[1]), lab.plane.kubeconfig,
                          lab.prefix)
        lab.kubelets.append(kubelet)
        for other in lab.nodes:
            if other is not node:
                route_via(other, node, kubelet.addresses.cidr)
    for kubelet in lab.kubelets:
        kubelet.register()
        kubelet.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(k.ready() for k in lab.kubelets):
        if time.monotonic() > deadline:
            raise LabError(f"the lab nodes were not Ready within {READY_TIMEOUT:.0f} s")
        time.sleep(0.2)
    if with_agents:
        for node in lab.nodes:
            log = open(lab.directory / f"agent-{node.name}.log", "wb")  # noqa: SIM115
            with log:
                lab.agents[node.name] = subprocess.Popen(
                    [sys.executable, "-m", "kubefence", "agent", "--node", node.name,
                     "--kubeconfig", lab.plane.kubeconfig, "--netns", node.netns,
                     "--health-port", "0"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _hold(lab: Lab, stop_after: float | None) -> None:
    """Wait, watching that the control plane and the agents stay up."""
    end = None if stop_after is None else time.monotonic() + stop_after
    assert lab.plane is not None
    while end is None or time.monotonic() < end:
        time.sleep(0.5)
        if lab.plane.proc.poll() is not None:
            raise LabError("the lab control plane stopped on its own; see "
                           f"{lab.directory}/up.err")
        for name, proc in lab.agents.items():
            if proc.poll() is not None:
                raise LabError(f"the agent of {name} exited ({proc.returncode}); see "
                               f"{lab.directory}/agent-{name}.log")


def _teardown(lab: Lab) -> None:
    for proc in lab.agents.values():
        stop_pid(proc.pid, 10, proc)
    for kubelet in lab.kubelets:
        kubelet.stop()  # all at once: each takes up to a watch request to notice
    for kubelet in lab.kubelets:
        with contextlib.suppress(Exception):
            kubelet.close()
    if lab.plane is not None:
        lab.plane.stop()
    _remove_namespaces(lab.prefix)
    with contextlib.suppress(OSError):
        (lab.directory / STATE).unlink()


def _remove_namespaces(prefix: str) -> None:
    for name in existing(prefix):
        delete(name)
    left = existing(prefix)
    if left:
        raise LabError(f"could not delete lab namespaces: {', '.join(left)}")


def down(directory: Path = DEFAULT_DIR, timeout: float = DOWN_TIMEOUT) -> dict[str, Any]:
    """Stop the lab of `directory` (its `up` process tears down); clean what a killed one left."""
    require_root()
    directory = directory.resolve()
    state = _read_state(directory)
    if state is None:
        raise LabError(f"no lab is up in {directory} (no {STATE})")
    stop_pid(int(state["pid"]), timeout)
    for pid in [*state.get("agents", {}).values(), state.get("controlplane_pid")]:
        if pid and alive(int(pid)):
            stop_pid(int(pid), 40)
    _remove_namespaces(state["prefix"])
    with contextlib.suppress(OSError):
        (directory / STATE).unlink()
    return state


def _read_state(directory: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((directory / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, sort_keys=True) + "\n")
    tmp.rename(directory / STATE)  # atomic: a reader sees all of it or nothing


def _configure_log(directory: Path) -> None:
    logger = logging.getLogger("kubefence.lab")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(directory / "lab.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
