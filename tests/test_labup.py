"""`kubefence lab up` / `lab down`: a real control plane, two lab nodes and their kubelet
stand-ins, driven with kubectl and checked with real packets.

Privileged. One `lab up --nodes 2 --no-agents` for the module (its own control plane, about
15 s to come up); the tests run in order and the last one stops it with `lab down`. No policy
is applied here (that is the agents' part), so every connection is allowed.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubefence.cli import main
from lab import netns
from lab.kubelet import pod_netns
from lab.prober import Target, probe_all
from policy.ports import Protocol
from tests.e2e import stop_lab_up

pytestmark = pytest.mark.privileged

UP_TIMEOUT = 180.0
WAIT = 60.0

WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: web
        image: pause
        ports:
        - {containerPort: 80}
        - {containerPort: 53, protocol: UDP}
        - {containerPort: 9000, protocol: SCTP}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec:
  nodeName: node-1
  containers: [{name: client, image: pause, ports: [{containerPort: 8080}]}]
"""


class Lab:
    def __init__(self, proc: subprocess.Popen[str], state: dict[str, Any], started: float):
        self.proc = proc
        self.state = state
        self.started = started

    def kubectl(self, *args: str, input: str | None = None) -> str:
        proc = subprocess.run([self.state["kubectl"], "--kubeconfig", self.state["kubeconfig"],
                               *args], input=input, capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr.strip()}"
        return proc.stdout

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def pods(self) -> list[dict[str, Any]]:
        return list(self.get("-n", "shop", "pods")["items"])

    def netns_of(self, pod: dict[str, Any]) -> str:
        return pod_netns(self.state["prefix"], pod["metadata"]["uid"])[0]


def wait_for(what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def no_process_with(text: str) -> bool:
    proc = subprocess.run(["pgrep", "-f", "--", text], capture_output=True, text=True,
                          check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 1


def kubefence(*args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubefence", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("labup")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubefence", "lab", "up", "--nodes", "2", "--dir",
         str(directory), "--no-agents"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    state: dict[str, Any] = {}
    try:
        wait_for("lab up", lambda: (directory / "lab.json").exists() or proc.poll() is not None,
                 UP_TIMEOUT)
        assert proc.poll() is None, proc.communicate()[1]
        assert proc.stdout is not None
        line = proc.stdout.readline()
        state = json.loads(line)
        assert state == json.loads((directory / "lab.json").read_text())
        yield Lab(proc, state, started)
    finally:
        stop_lab_up(proc, directory, state["prefix"] if state else None)


def test_nodes_are_registered_ready_with_their_pod_cidrs(lab: Lab) -> None:
    nodes = {n["metadata"]["name"]: n for n in lab.get("nodes")["items"]}
    assert sorted(nodes) == ["node-1", "node-2"]
    for i, name in enumerate(sorted(nodes), start=1):
        node = nodes[name]
        assert node["spec"]["podCIDR"] == f"10.244.{i}.0/24"
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
        assert {"type": "InternalIP", "address": f"169.254.100.{i}"} in node["status"][
            "addresses"]
        assert node["status"]["allocatable"]["pods"] == "110"
    assert set(netns.existing(lab.state["prefix"])) == {
        f"{lab.state['prefix']}{n}" for n in ("switch", "node-1", "node-2")}


def test_pods_run_with_addresses_from_their_nodes_cidr(lab: Lab) -> None:
    lab.kubectl("apply", "-f", "-", input=WORKLOADS)

    def all_running() -> bool:
        pods = lab.pods()
        return len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods)

    wait_for("3 pods Running", all_running)
    nodes = {n["metadata"]["name"]: n for n in lab.get("nodes")["items"]}
    on = sorted(p["spec"]["nodeName"] for p in lab.pods())
    assert on == ["node-1", "node-1", "node-2"]
    for pod in lab.pods():
        node = nodes[pod["spec"]["nodeName"]]
        status = pod["status"]
        ip = ipaddress.ip_address(status["podIP"])
        assert ip in ipaddress.ip_network(node["spec"]["podCIDR"])
        assert status["podIPs"] == [{"ip": status["podIP"]}]
        assert status["hostIP"] == node["status"]["addresses"][0]["address"]
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert {t: conditions.get(t) for t in ("Ready", "ContainersReady", "PodScheduled",
                                               "Initialized")} == dict.fromkeys(
            ("Ready", "ContainersReady", "PodScheduled", "Initialized"), "True")
        assert all(c["ready"] and c["containerID"].startswith("kubefence://")
                   for c in status["containerStatuses"])
        pod_ns = lab.netns_of(pod)
        assert pod_ns in netns.existing(lab.state["prefix"])
        addrs = netns.run("ip", "-4", "-o", "addr", "show", "eth0", netns=pod_ns)
        assert f"{ip}/32" in addrs
    deploy = lab.get("-n", "shop", "deployment", "web")
    wait_for("the Deployment's 2 ready replicas",
             lambda: lab.get("-n", "shop", "deployment", "web")["status"].get(
                 "readyReplicas") == 2)
    assert deploy["spec"]["replicas"] == 2


def _connect(source_netns: str, address: str, port: int) -> int:
    with netns.inside(source_netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(3)
        return sock.connect_ex((address, port))
    finally:
        sock.close()


def test_a_pod_on_node_1_reaches_a_pod_on_node_2(lab: Lab) -> None:
    pods = lab.pods()
    client = next(p for p in pods if p["metadata"]["name"] == "client")
    web2 = next(p for p in pods if p["metadata"]["name"].startswith("web-")
                and p["spec"]["nodeName"] == "node-2")
    web1 = next(p for p in pods if p["metadata"]["name"].startswith("web-")
                and p["spec"]["nodeName"] == "node-1")
    source = lab.netns_of(client)
    far = ipaddress.ip_address(web2["status"]["podIP"])
    near = ipaddress.ip_address(web1["status"]["podIP"])
    targets = [Target(source, far, Protocol.TCP, 80), Target(source, far, Protocol.UDP, 53),
               Target(source, near, Protocol.TCP, 80), Target(source, near, Protocol.UDP, 53)]
    assert probe_all(targets) == [True, True, True, True]
    assert _connect(source, str(far), 80) == 0  # served: a handshake
    assert _connect(source, str(far), 81) == errno.ECONNREFUSED  # nobody serves it: refused
    # And back, node 2 to node 1.
    assert _connect(lab.netns_of(web2), client["status"]["podIP"], 8080) == 0


def test_a_deleted_pod_loses_its_namespace_and_frees_its_address(lab: Lab) -> None:
    client = next(p for p in lab.pods() if p["metadata"]["name"] == "client")
    gone, ip = lab.netns_of(client), client["status"]["podIP"]
    lab.kubectl("-n", "shop", "delete", "pod", "client", "--timeout=30s")
    wait_for("the pod's namespace to go", lambda: gone not in netns.existing(gone))
    # The lowest free address of node-1's CIDR is handed out first: the freed one.
    lab.kubectl("apply", "-f", "-", input=WORKLOADS)
    wait_for("the new client Running", lambda: any(
        p["metadata"]["name"] == "client" and p["status"].get("phase") == "Running"
        for p in lab.pods()))
    again = next(p for p in lab.pods() if p["metadata"]["name"] == "client")
    assert again["metadata"]["uid"] != client["metadata"]["uid"]
    assert again["status"]["podIP"] == ip


def test_a_host_network_pod_gets_its_nodes_address_and_no_namespace(lab: Lab) -> None:
    before = netns.existing(lab.state["prefix"])
    lab.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: host, namespace: shop}
spec:
  nodeName: node-2
  hostNetwork: true
  containers: [{name: host, image: pause}]
""")
    wait_for("the hostNetwork pod Running", lambda: lab.get(
        "-n", "shop", "pod", "host")["status"].get("phase") == "Running")
    status = lab.get("-n", "shop", "pod", "host")["status"]
    assert status["podIP"] == status["hostIP"] == "169.254.100.2"
    assert netns.existing(lab.state["prefix"]) == before
    lab.kubectl("-n", "shop", "delete", "pod", "host", "--timeout=30s")


def test_nodes_stay_ready_past_the_grace_period(lab: Lab) -> None:
    leases = lab.get("-n", "kube-node-lease", "leases")["items"]
    before = {ls["metadata"]["name"]: ls["spec"]["renewTime"] for ls in leases}
    assert set(before) == {"node-1", "node-2"}
    # The node lifecycle controller's grace is 50 s after the last heartbeat.
    time.sleep(max(0.0, lab.started + 60 - time.monotonic()))
    after = {ls["metadata"]["name"]: ls["spec"]["renewTime"]
             for ls in lab.get("-n", "kube-node-lease", "leases")["items"]}
    assert all(after[n] > before[n] for n in before)
    for node in lab.get("nodes")["items"]:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True", node["metadata"]["name"]
        assert not node["spec"].get("taints"), node["spec"]["taints"]


def test_lab_down_removes_everything(lab: Lab) -> None:
    directory = lab.state["dir"]
    down = kubefence("lab", "down", "--dir", directory)
    assert down.returncode == 0, down.stderr
    assert lab.proc.wait(30) == 0
    _, err = lab.proc.communicate(timeout=10)
    assert "Traceback" not in err
    assert netns.existing(lab.state["prefix"]) == []
    assert not (Path(directory) / "lab.json").exists()
    for pid in (lab.state["pid"], lab.state["controlplane_pid"]):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(
            f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert no_process_with(f"--dir {directory}")


def test_lab_up_without_root_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    out, err = io.StringIO(), io.StringIO()
    assert main(["lab", "up", "--dir", str(tmp_path)], out=out, err=err) == 2
    assert err.getvalue() == ("error: the lab needs root: it creates network namespaces and "
                              "nftables rules\n")
    assert out.getvalue() == ""
    assert list(tmp_path.iterdir()) == []


def test_lab_up_without_the_binary_fails_cleanly(tmp_path: Path) -> None:
    before = set(netns.existing("kf"))
    proc = kubefence("lab", "up", "--dir", str(tmp_path / "lab"),
                     env={"KUBEFENCE_LAB_CLUSTER": str(tmp_path / "missing")})
    assert proc.returncode == 2
    assert proc.stderr == ("error: the lab control plane binary is missing: "
                           f"{tmp_path / 'missing'}\n")
    assert proc.stdout == ""
    assert set(netns.existing("kf")) == before
    assert not (tmp_path / "lab").exists()


def test_lab_down_without_a_lab_is_a_one_line_error(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["lab", "down", "--dir", str(tmp_path)], out=out, err=err) == 2
    assert err.getvalue() == f"error: no lab is up in {tmp_path} (no lab.json)\n"


@pytest.mark.parametrize("action", ["stop", "start"])
def test_lab_controlplane_without_a_lab_is_a_one_line_error(tmp_path: Path,
                                                            action: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["lab", "controlplane", action, "--dir", str(tmp_path)], out=out, err=err) == 2
    assert err.getvalue() == f"error: no lab is up in {tmp_path}\n" and out.getvalue() == ""


@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=["sigterm"])
def test_lab_up_interrupted_while_coming_up_leaves_nothing(tmp_path: Path,
                                                           sig: signal.Signals) -> None:
    """SIGTERM as soon as the control plane is ready, while nodes are being made."""
    directory = tmp_path / "lab"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubefence", "lab", "up", "--nodes", "2", "--dir",
         str(directory), "--no-agents"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        wait_for("the control plane", lambda: (directory / "up.json").exists()
                 or proc.poll() is not None, UP_TIMEOUT)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    prefix = re.search(r"prefix (kf\S+)", (directory / "lab.log").read_text())
    assert prefix, "lab up logs its prefix"
    assert netns.existing(prefix[1]) == []
    assert not (directory / "lab.json").exists()
    assert no_process_with(f"--dir {directory}")
