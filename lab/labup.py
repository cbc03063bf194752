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
from lab.signals import handling
from lab.topology import LabNode, add_node, make_switch, new_prefix, route_via

DEFAULT_DIR = Path("/run/kubefence-lab")
READY_TIMEOUT = 60.0
DOWN_TIMEOUT = 90.0
AGENT_RESTART = 1.0  # seconds before an exited agent is started again; doubles, up to
AGENT_RESTART_MAX = 30.0
AGENT_STEADY = 60.0  # an agent up this long before it exits was not failing
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
    plane_stopped: bool = False  # stopped on request (`lab controlplane stop`)
    requests: list[str] = field(default_factory=list)  # "stop"/"start", from the signals
    restarts: dict[str, int] = field(default_factory=dict)  # node -> times its agent restarted
    restart_at: dict[str, float] = field(default_factory=dict)  # node -> when (monotonic)
    failing: dict[str, int] = field(default_factory=dict)  # node -> fast exits in a row
    started: dict[str, float] = field(default_factory=dict)  # node -> agent start (monotonic)

    def state(self) -> dict[str, Any]:
        assert self.plane is not None
        return {
            "pid": os.getpid(), "dir": str(self.directory), "prefix": self.prefix,
            "kubeconfig": self.plane.kubeconfig, "server": self.plane.info.get("server"),
            "kubectl": str(controlplane.kubectl()),
            "controlplane": "stopped" if self.plane_stopped else "running",
            "controlplane_pid": None if self.plane_stopped else self.plane.pid,
            "switch": self.switch,
            "nodes": [{"name": n.name, "netns": n.netns, "ip": str(n.uplink4),
                       "podCIDR": str(k.addresses.cidr)}
                      for n, k in zip(self.nodes, self.kubelets, strict=True)],
            "agents": {name: proc.pid for name, proc in self.agents.items()
                       if proc.poll() is None},
            "agent_restarts": dict(sorted(self.restarts.items())),
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

    with handling((signal.SIGINT, signal.SIGTERM), handler):
        yield


@contextmanager
def _control_signals(lab: Lab) -> Iterator[None]:
    """SIGUSR1 asks `_hold` to stop the control plane, SIGUSR2 to start it again."""
    def handler(signum: int, frame: Any) -> None:
        lab.requests.append("stop" if signum == signal.SIGUSR1 else "start")

    with handling((signal.SIGUSR1, signal.SIGUSR2), handler):
        yield


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
    with _signals_unwind(), _control_signals(lab):
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
            _start_agent(lab, node)


def _start_agent(lab: Lab, node: LabNode) -> None:
    """The node's agent, its log appended to DIR/agent-NODE.log (a restart adds to it)."""
    from lab.kubelet import pod_netns_prefix

    assert lab.plane is not None
    lab.started[node.name] = time.monotonic()
    with open(lab.directory / f"agent-{node.name}.log", "ab") as log:
        lab.agents[node.name] = subprocess.Popen(
            [sys.executable, "-m", "kubefence", "agent", "--node", node.name,
             "--kubeconfig", lab.plane.kubeconfig, "--netns", node.netns,
             "--pod-netns-prefix", pod_netns_prefix(lab.prefix), "--health-port", "0"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _hold(lab: Lab, stop_after: float | None) -> None:
    """Wait, keeping the lab up: an agent that exits is started again (after AGENT_RESTART
    seconds, doubling while it keeps failing fast, as a DaemonSet pod's container would be);
    the control plane is stopped and started on request (`lab controlplane stop|start`), and
    one that stops on its own ends the lab."""
    end = None if stop_after is None else time.monotonic() + stop_after
    assert lab.plane is not None
    while end is None or time.monotonic() < end:
        time.sleep(0.2)
        while lab.requests:
            _control_plane_request(lab, lab.requests.pop(0))
        if not lab.plane_stopped and lab.plane.proc.poll() is not None:
            raise LabError("the lab control plane stopped on its own; see "
                           f"{lab.directory}/up.err")
        if _supervise_agents(lab):
            _write_state(lab.directory, lab.state())


def _control_plane_request(lab: Lab, request: str) -> None:
    log = logging.getLogger("kubefence.lab")
    assert lab.plane is not None
    if request == "stop" and not lab.plane_stopped:
        log.info("control plane: stopping (requested)")
        lab.plane.stop()
        lab.plane_stopped = True
    elif request == "start" and lab.plane_stopped:
        log.info("control plane: starting again on port %d (requested)", lab.plane.port)
        lab.plane = controlplane.start(lab.directory, port=lab.plane.port)
        lab.plane_stopped = False
    _write_state(lab.directory, lab.state())


def _supervise_agents(lab: Lab) -> bool:
    """Restart the agents that exited, when due; whether any changed."""
    changed = False
    now = time.monotonic()
    for node in lab.nodes:
        proc = lab.agents.get(node.name)
        if proc is None or proc.poll() is None:
            continue
        due = lab.restart_at.get(node.name)
        if due is None:
            fast = now - lab.started.get(node.name, now) < AGENT_STEADY
            lab.failing[node.name] = lab.failing.get(node.name, 0) + 1 if fast else 0
            delay = min(AGENT_RESTART * 2 ** min(lab.failing[node.name], 5), AGENT_RESTART_MAX)
            lab.restart_at[node.name] = now + delay
            logging.getLogger("kubefence.lab").warning(
                "agent of %s exited (%s); starting it again in %.0f s", node.name,
                proc.returncode, delay)
            changed = True
        elif now >= due:
            del lab.restart_at[node.name]
            lab.restarts[node.name] = lab.restarts.get(node.name, 0) + 1
            _start_agent(lab, node)
            changed = True
    return changed


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


def control_plane(directory: Path, action: str,
                  timeout: float = controlplane.READY_TIMEOUT) -> dict[str, Any]:
    """`lab controlplane stop|start`: ask the `up` of `directory` to stop its control plane
    (the nodes, pods and agents stay; the rules in force stay) or to start it again on the
    same port with the same data; wait until it has. Returns the lab's state then."""
    require_root()
    directory = directory.resolve()
    state = _read_state(directory)
    if state is None or not alive(int(state["pid"])):
        raise LabError(f"no lab is up in {directory}")
    want = {"stop": "stopped", "start": "running"}[action]
    os.kill(int(state["pid"]), signal.SIGUSR1 if action == "stop" else signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while True:
        now = _read_state(directory)
        if now is not None and now.get("controlplane") == want:
            return now
        if not alive(int(state["pid"])):
            raise LabError(f"the lab in {directory} stopped; see {directory}/lab.log")
        if time.monotonic() > deadline:
            raise LabError(f"the control plane was not {want} within {timeout:.0f} s")
        time.sleep(0.2)


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
