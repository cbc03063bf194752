"""Helpers of the end-to-end conformance tests (`tests/test_e2e_conformance.py`): a running
`kubefence lab up` with agents, driven with kubectl and probed with real packets.

CIDR rewriting: the cases' ipBlocks name the cases' fixed pod addresses (10.244.<ns>.<pod+10>),
while the lab's pods get theirs from their node's podCIDR. A /32 (or any CIDR of one address)
that names a case pod's fixed address is rewritten to that pod's live address, in `cidr` and in
`except`. A CIDR with host bits set (`10.244.0.10/4`) is written as the network it means
(`0.0.0.0/4`): the cases say the API server accepts the first form, but this one (the lab's
kube-apiserver) refuses it ("must not have bits set beyond the prefix length"). Any other
CIDR is kept as written.
The rewriting is faithful when every ipBlock CIDR, before and after, contains the same case
pods (by fixed address before, by live address after); `cidr_mapping` says whether it is.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analyzer.matrix import Probe, probe_document
from lab import netns
from lab.kubelet import pod_netns
from lab.prober import Target, probe_all
from lab.servers import sctp_available
from policy.engine import Analysis
from policy.loader import load_texts
from policy.ports import Protocol

UP_TIMEOUT = 180.0
RUNNING_TIMEOUT = 60.0
SYNC_TIMEOUT = 30.0
SETTLE_TIMEOUT = 20.0
CLEAN_TIMEOUT = 120.0
QUIET_AFTER_APPLY = 1.0  # > the agents' max coalescing delay (0.5 s) plus a watch event's trip
LATENCY_PROBE_TIMEOUT = 0.25  # an allowed connection answers in milliseconds in the lab
KINDS = ("Namespace", "Pod", "NetworkPolicy")

Doc = dict[str, Any]


def wait_for(what: str, condition: Callable[[], bool], timeout: float,
             every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# --- the cases


@dataclass
class Case:
    name: str
    namespaces: list[Doc]
    pods: list[Doc]  # status and spec.nodeName stripped
    policies: list[Doc]
    fixed_ips: dict[str, str]  # namespace/name -> the case's status.podIP
    probes: list[tuple[int, Protocol]]  # what upstream checks, SCTP included
    expected: Doc

    @property
    def pod_keys(self) -> list[str]:
        return sorted(self.fixed_ips)

    @property
    def namespace_names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.namespaces]


def key_of(obj: Doc) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def read_case(case: Path) -> Case:
    objects = [d for d in yaml.safe_load_all((case / "cluster.yaml").read_text()) if d]
    policies = [d for d in yaml.safe_load_all((case / "policies.yaml").read_text()) if d]
    expected = json.loads((case / "expected.json").read_text())
    pods, fixed = [], {}
    for obj in objects:
        if obj["kind"] == "Pod":
            fixed[key_of(obj)] = obj["status"]["podIP"]
            pod = copy.deepcopy(obj)
            pod.pop("status", None)
            pod["spec"].pop("nodeName", None)
            pods.append(pod)
    return Case(case.name, [o for o in objects if o["kind"] == "Namespace"], pods, policies,
                fixed, [(p["port"], Protocol(p["protocol"])) for p in expected["probes"]],
                expected)


def _ip_blocks(policy: Doc) -> Iterator[Doc]:
    spec = policy.get("spec", {})
    for rule in spec.get("ingress") or []:
        for peer in rule.get("from") or []:
            if "ipBlock" in peer:
                yield peer["ipBlock"]
    for rule in spec.get("egress") or []:
        for peer in rule.get("to") or []:
            if "ipBlock" in peer:
                yield peer["ipBlock"]


def _contains(cidr: str, ips: dict[str, str]) -> set[str]:
    net = ipaddress.ip_network(cidr, strict=False)
    return {k for k, ip in ips.items() if ipaddress.ip_address(ip) in net}


def cidr_mapping(case: Case, live: dict[str, str]) -> tuple[list[Doc], bool]:
    """The case's policies with pod CIDRs rewritten to `live` addresses, and whether the
    rewriting is faithful (module docstring)."""
    by_ip = {ip: key for key, ip in case.fixed_ips.items()}
    policies = copy.deepcopy(case.policies)
    faithful = True

    def rewrite(cidr: str) -> str:
        nonlocal faithful
        net = ipaddress.ip_network(cidr, strict=False)
        out = cidr
        if net.num_addresses == 1 and str(net.network_address) in by_ip:
            out = f"{live[by_ip[str(net.network_address)]]}/{net.prefixlen}"
        elif str(net) != cidr:
            out = str(net)  # host bits set: this API server refuses them; the network it means
        if _contains(cidr, case.fixed_ips) != _contains(out, live):
            faithful = False
        return out

    for policy in policies:
        for block in _ip_blocks(policy):
            block["cidr"] = rewrite(block["cidr"])
            if block.get("except"):
                block["except"] = [rewrite(c) for c in block["except"]]
    return policies, faithful


# --- matrices


def off_diagonal(doc: Doc) -> list[tuple[int, str, str, str, bool]]:
    return sorted((p["port"], p["protocol"], s, d, v) for p in doc["probes"]
                  for s, row in p["matrix"].items() for d, v in row.items() if s != d)


def diagonal(doc: Doc) -> list[tuple[int, str, str, bool]]:
    return sorted((p["port"], p["protocol"], s, row[s]) for p in doc["probes"]
                  for s, row in p["matrix"].items())


def restrict(doc: Doc, keys: list[str], probes: list[tuple[int, Protocol]]) -> Doc:
    """A probe document on these pods and probes only."""
    wanted = {(port, proto.value) for port, proto in probes}
    return {"pods": keys, "probes": [
        {"port": p["port"], "protocol": p["protocol"],
         "matrix": {s: {d: p["matrix"][s][d] for d in keys} for s in keys}}
        for p in doc["probes"] if (p["port"], p["protocol"]) in wanted]}


@dataclass
class Observation:
    observed: Doc  # probed in the lab
    analyzer: Doc  # the analyzer on the live objects
    upstream: Doc  # expected.json, every probe (SCTP too)
    analyzer_all: Doc  # the analyzer on the live objects, every probe of expected.json
    faithful: bool  # the CIDRs mapped faithfully
    synced: bool
    sync_note: str
    latency: float | None  # apply -> a probe observes the change; None: nothing to observe


# --- the lab


class Lab:
    def __init__(self, proc: subprocess.Popen[str], state: Doc) -> None:
        self.proc = proc
        self.state = state
        self.dir = Path(state["dir"])
        self.live_ips: dict[str, str] = {}
        self.netns: dict[str, str] = {}
        self.faithful = True
        self.namespaces: set[str] = set()
        self._offsets: dict[str, int] = {}
        self._applied_at = 0.0

    # kubectl

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        proc = subprocess.run([self.state["kubectl"], "--kubeconfig", self.state["kubeconfig"],
                               *args], input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr.strip()}"
        return proc.stdout

    def apply(self, objects: list[Doc]) -> None:
        if objects:
            self.kubectl("apply", "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": objects}))

    def live(self) -> tuple[str, Doc]:
        """`kubectl get -o yaml` of the live objects, as the issue asks (the agents read JSON)."""
        text = self.kubectl("get", "ns,pods,networkpolicies", "-A", "-o", "yaml")
        return text, yaml.safe_load(text)

    # agents

    def agent_logs(self) -> dict[str, Path]:
        return {n: self.dir / f"agent-{n}.log" for n in self.state["agents"]}

    def agents_ready(self) -> bool:
        for log in self.agent_logs().values():
            starts = [r["health"] for r in _records(log) if r.get("event") == "start"]
            url = starts[-1] if starts else None  # the agent running now (lab up restarts)
            if url is None:
                return False
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                    if resp.status != 200:
                        return False
            except OSError:
                return False
        return True

    def _mark(self) -> None:
        """Where the agents' logs end now: syncs after this count for the next change."""
        self._offsets = {n: p.stat().st_size for n, p in self.agent_logs().items()}

    def synced(self, counts: dict[str, int]) -> tuple[bool, str]:
        """Every agent has committed a sync since the change, the latest of them over exactly
        the live objects' counts, none failed since, and the change is older than the agents'
        coalescing delay (so no event of it is still on its way)."""
        if time.monotonic() < self._applied_at + QUIET_AFTER_APPLY:
            return False, "too soon"
        for name, log in self.agent_logs().items():
            records = [r for r in _records(log, self._offsets.get(name, 0))
                       if r.get("event") in ("sync", "sync_failed")]
            if not records:
                return False, f"{name}: no sync since the change"
            last = records[-1]
            if last["event"] == "sync_failed":
                return False, f"{name}: {json.dumps(last)}"
            if last.get("objects") != counts:
                return False, f"{name}: last sync over {last.get('objects')}, live {counts}"
        return True, ""

    # the case's objects

    def create(self, case: Case) -> None:
        self.namespaces = set(case.namespace_names)
        self.apply(case.namespaces + case.pods)
        keys = set(case.pod_keys)

        def running() -> bool:
            pods = json.loads(self.kubectl("get", "pods", "-A", "-o", "json"))["items"]
            mine = {key_of(p): p for p in pods if key_of(p) in keys}
            if set(mine) != keys or not all(
                    p.get("status", {}).get("phase") == "Running"
                    and p["status"].get("podIP") for p in mine.values()):
                return False
            self.live_ips = {k: p["status"]["podIP"] for k, p in mine.items()}
            self.netns = {k: pod_netns(self.state["prefix"], p["metadata"]["uid"])[0]
                          for k, p in mine.items()}
            return True

        wait_for(f"the pods of {case.name} Running", running, RUNNING_TIMEOUT)

    def apply_policies(self, case: Case) -> float:
        policies, self.faithful = cidr_mapping(case, self.live_ips)
        self._mark()
        changed_at = time.monotonic()
        self.apply(policies)
        self._applied_at = time.monotonic()
        return changed_at

    def change(self, old: Case, new: Case) -> float:
        """From one step to the next: apply what differs, delete what is gone."""
        assert old.pod_keys == new.pod_keys, "pods added or removed between steps"
        policies, self.faithful = cidr_mapping(new, self.live_ips)
        old_ns = {n["metadata"]["name"]: n for n in old.namespaces}
        old_pods = {key_of(p): p for p in old.pods}
        old_policies, _ = cidr_mapping(old, self.live_ips)
        before = {key_of(p): p for p in old_policies}
        changed = [n for n in new.namespaces if old_ns.get(n["metadata"]["name"]) != n]
        changed += [p for p in new.pods if old_pods.get(key_of(p)) != p]
        changed += [p for p in policies if before.get(key_of(p)) != p]
        gone = sorted(set(before) - {key_of(p) for p in policies})
        for pod in new.pods:
            old_pod = old_pods[key_of(pod)]
            assert {**old_pod, "metadata": {}} == {**pod, "metadata": {}}, \
                "only metadata may change between steps"
        self._mark()
        changed_at = time.monotonic()
        self.apply(changed)
        for key in gone:
            ns, name = key.split("/")
            self.kubectl("-n", ns, "delete", "networkpolicy", name)
        self._applied_at = time.monotonic()
        self.namespaces |= set(new.namespace_names)
        return changed_at

    def targets(self, keys: list[str], probe: tuple[int, Protocol]) -> list[Target]:
        port, proto = probe
        return [Target(self.netns[s], ipaddress.ip_address(self.live_ips[d]), proto, port)
                for s in keys for d in keys]

    def probed(self, case: Case) -> list[tuple[int, Protocol]]:
        sctp = sctp_available()
        return [p for p in case.probes if p[1] is not Protocol.SCTP or sctp]

    def observe(self, case: Case) -> Doc:
        keys = case.pod_keys
        doc: Doc = {"pods": keys, "probes": []}
        for probe in self.probed(case):
            seen = iter(probe_all(self.targets(keys, probe)))
            doc["probes"].append({"port": probe[0], "protocol": probe[1].value,
                                  "matrix": {s: {d: next(seen) for d in keys} for s in keys}})
        return doc

    def analyzer(self, case: Case) -> tuple[Doc, Doc, dict[str, int]]:
        """The analyzer's matrix from the live objects: on the probed ports, on every port
        of the case; and the live object counts by kind."""
        text, live = self.live()
        analysis = Analysis(load_texts([("live.yaml", text, False)]))
        doc = probe_document(analysis, [Probe(port, proto) for port, proto in case.probes])
        counts = dict.fromkeys(KINDS, 0)
        for item in live["items"]:
            counts[item["kind"]] += 1
        return (restrict(doc, case.pod_keys, self.probed(case)),
                restrict(doc, case.pod_keys, case.probes), counts)

    def settle(self, case: Case, before: Doc, changed_at: float) -> Observation:
        analyzer, analyzer_all, counts = self.analyzer(case)
        upstream = restrict(case.expected, case.pod_keys, case.probes)
        # Latency: poll one cell whose answer must change, with a short probe timeout.
        latency = None
        cells = [(p["port"], p["protocol"], s, d, v) for p in analyzer["probes"]
                 for s, row in p["matrix"].items() for d, v in row.items()
                 if s != d and before_cell(before, p, s, d) != v]
        if cells:
            port, proto, s, d, want = cells[0]
            target = self.targets([s, d], (port, Protocol(proto)))[1]  # s -> d
            deadline = time.monotonic() + SYNC_TIMEOUT
            while time.monotonic() < deadline:
                if probe_all([target], LATENCY_PROBE_TIMEOUT)[0] == want:
                    latency = time.monotonic() - changed_at
                    break
        # Every agent synced the live state (bounded).
        deadline = time.monotonic() + SYNC_TIMEOUT
        synced, note = self.synced(counts)
        while not synced and time.monotonic() < deadline:
            time.sleep(0.2)
            synced, note = self.synced(counts)
        # Then the probes, again until they agree or the bound passes.
        deadline = time.monotonic() + SETTLE_TIMEOUT
        observed = self.observe(case)
        while observed != analyzer and time.monotonic() < deadline:
            time.sleep(0.3)
            observed = self.observe(case)
        return Observation(observed, analyzer, upstream, analyzer_all, self.faithful, synced,
                           note, latency)

    def clean(self) -> None:
        """Delete the case's namespaces and wait until they and their pods are gone."""
        if not self.namespaces:
            return
        names = sorted(self.namespaces)
        self.kubectl("delete", "namespace", *names, "--ignore-not-found", "--wait=false")

        def gone() -> bool:
            listed = json.loads(self.kubectl("get", "ns,pods", "-A", "-o", "json"))["items"]
            return not any((i["kind"] == "Namespace" and i["metadata"]["name"] in names)
                           or (i["kind"] == "Pod" and i["metadata"]["namespace"] in names)
                           for i in listed)

        wait_for(f"namespaces {', '.join(names)} deleted", gone, CLEAN_TIMEOUT, every=0.5)
        leftover = [n for n in self.netns.values() if n in netns.existing(n)]
        wait_for("the pods' network namespaces removed",
                 lambda: not any(n in netns.existing(n) for n in leftover), 30)
        self.namespaces = set()
        self.netns = {}
        self.live_ips = {}


def before_cell(doc: Doc, probe: Doc, s: str, d: str) -> bool | None:
    for p in doc["probes"]:
        if (p["port"], p["protocol"]) == (probe["port"], probe["protocol"]):
            return bool(p["matrix"][s][d])
    return None


def _records(log: Path, offset: int = 0) -> list[Doc]:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return []
    out = []
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                out.append(record)
    return out


@contextmanager
def lab_up(directory: Path) -> Iterator[Lab]:
    """`kubefence lab up --nodes 2 --agents` until the agents are ready; always `lab down`."""
    err = open(directory / "up.stderr", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubefence", "lab", "up", "--nodes", "2", "--dir",
         str(directory / "lab"), "--agents"],
        stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, text=True)
    state: Doc = {}
    try:
        state_file = directory / "lab" / "lab.json"
        wait_for("lab up", lambda: state_file.exists() or proc.poll() is not None, UP_TIMEOUT)
        assert proc.poll() is None, (directory / "up.stderr").read_text()[-3000:]
        state = json.loads(state_file.read_text())
        assert len(state["agents"]) == 2, state
        lab = Lab(proc, state)
        wait_for("the agents ready", lab.agents_ready, 60)
        yield lab
    finally:
        stop_lab_up(proc, directory / "lab", state["prefix"] if state else None)
        err.close()


def stop_lab_up(proc: subprocess.Popen[Any], lab_dir: Path, prefix: str | None) -> None:
    """Stop a `kubefence lab up` process the way a user would (`lab down`), kill it if that
    fails, and remove any namespace of its run that is left (only if it was killed)."""
    if proc.poll() is None:
        subprocess.run([sys.executable, "-m", "kubefence", "lab", "down", "--dir", str(lab_dir)],
                       capture_output=True, timeout=150, check=False)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for name in netns.existing(prefix) if prefix else []:
        netns.delete(name)
