"""Benchmark of the node agent's own work at scale (root): what one agent spends per sync, and
its memory, with the cluster a generated one (`benchmarks.clustergen`).

No API server: the generated Namespaces, Pods and NetworkPolicies are written (by a child
process, as JSON lines) and handed to the agent's `Store` the way its watches do it, a page of
500 objects at a time converted and the page dropped (`stored_items`, `Store.replace_stored`),
so the process holds what the agent holds and its RSS is the agent's. Then
the agent's `SyncLoop.sync_once` runs exactly as in `kubefence agent`, committing with
libnftables into a fresh network namespace standing for the node (the node of the first
ordinary pod). Then, one at a time, as watch events (`Store.apply`): a policy changed, a pod
added on another node (a Deployment scaled up: an existing pod's labels and ports, a new
address), and a pod added on the bench node. Each sync's time is the agent's: snapshot,
assembly, analysis (incremental when `Analysis.updated` can), compile, delta, commit. The
process's peak RSS (VmHWM) is printed after each step.

    sudo .venv/bin/python -m benchmarks.bench_agent                         # 10000x3000
    sudo .venv/bin/python -m benchmarks.bench_agent --sizes 150000x100000
"""

from __future__ import annotations

import argparse
import copy
import io
import ipaddress
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from enforcer.agent.health import Status  # noqa: E402
from enforcer.agent.logs import Log  # noqa: E402
from enforcer.agent.loop import SyncLoop, Timing  # noqa: E402
from enforcer.agent.metrics import Metrics  # noqa: E402
from enforcer.agent.netns import NetnsDataplane  # noqa: E402
from enforcer.agent.store import KINDS, Store, Stored, stored_items  # noqa: E402
from enforcer.sync import Syncer  # noqa: E402
from lab import netns  # noqa: E402

Obj = dict[str, Any]


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


GENERATE = """
import json, sys
from benchmarks.clustergen.cluster import generate
docs, _ = generate(int(sys.argv[1]), int(sys.argv[2]), 1)
with open(sys.argv[3], "w") as out:
    for d in docs:
        if d["kind"] in ("Namespace", "Pod", "NetworkPolicy"):
            out.write(json.dumps(d) + "\\n")
"""
PAGE = 500


@dataclass
class Plan:
    """What the steps need, noted while the objects stream by."""

    node: str = ""  # the first ordinary pod's
    local: Obj | None = None  # that pod
    remote: Obj | None = None  # the first ordinary pod on another node
    policy: Obj | None = None  # the last policy
    highest: int = 0  # the highest pod address


def fill(store: Store, path: Path) -> Plan:
    """Stream the JSON lines into the store a page at a time, as the agent's watches do."""
    plan = Plan()
    objects: dict[str, dict[str, Stored]] = {k: {} for k in KINDS}
    page: dict[str, list[Obj]] = {k: [] for k in KINDS}
    with path.open() as lines:
        for line in lines:
            obj = json.loads(line)
            kind = obj["kind"]
            page[kind].append(obj)
            if kind == "Pod" and not obj["spec"].get("hostNetwork"):
                ip = obj.get("status", {}).get("podIP")
                if ip:
                    plan.highest = max(plan.highest, int(ipaddress.ip_address(ip)))
                if plan.local is None:
                    plan.node, plan.local = obj["spec"]["nodeName"], obj
                elif plan.remote is None and obj["spec"]["nodeName"] != plan.node:
                    plan.remote = obj
            elif kind == "NetworkPolicy":
                plan.policy = obj
            if len(page[kind]) >= PAGE:
                objects[kind].update(stored_items(kind, page[kind]))
                page[kind] = []
    for kind in KINDS:
        objects[kind].update(stored_items(kind, page[kind]))
        store.replace_stored(kind, objects[kind])
    return plan


class Bench:
    def __init__(self, node: str, store: Store, ns_name: str) -> None:
        self.node = node
        self.store = store
        self.out = io.StringIO()
        self.loop = SyncLoop(self.node, self.store, Syncer(NetnsDataplane(ns_name)),
                             Status(60.0), Metrics(), Log(self.out), threading.Event(),
                             Timing(resync=3600.0))

    def last_sync(self) -> Obj:
        lines = [json.loads(x) for x in self.out.getvalue().splitlines()]
        return next(r for r in reversed(lines) if r["event"] in ("sync", "sync_failed"))

    def step(self, what: str, full: bool) -> None:
        start = time.perf_counter()
        ok = self.loop.sync_once(full)
        seconds = time.perf_counter() - start
        r = self.last_sync()
        detail = (f"{r['kind']}, {r['commands']} commands, analysis: {r['analysis']}" if ok
                  else f"FAILED: {r.get('error') or r.get('problems')}")
        print(f"  {what}: {seconds * 1000:.1f} ms ({detail}); RSS {rss_mib():.0f} MiB, "
              f"peak {peak_rss_mib():.0f} MiB", flush=True)


def scaled(model: Obj, suffix: str, node: str, ip: str) -> Obj:
    pod = copy.deepcopy(model)
    pod["metadata"]["name"] += suffix
    pod["metadata"]["uid"] = f"bench-{suffix}"
    pod["spec"]["nodeName"] = node
    pod["status"]["podIP"] = ip
    pod["status"]["podIPs"] = [{"ip": ip}]
    return pod


def run(pods: int, policies: int, workdir: Path) -> None:
    start = time.perf_counter()
    path = workdir / f"objects-{pods}x{policies}.jsonl"
    subprocess.run([sys.executable, "-c", GENERATE, str(pods), str(policies), str(path)],
                   cwd=REPO, check=True, timeout=1800)
    print(f"{pods}x{policies}: generated (in a child process) in "
          f"{time.perf_counter() - start:.1f} s; RSS {rss_mib():.0f} MiB", flush=True)
    name = f"kfbagent-{secrets.token_hex(3)}"
    netns.add(name)
    try:
        store = Store()
        start = time.perf_counter()
        plan = fill(store, path)
        assert plan.local is not None and plan.remote is not None and plan.policy is not None
        print(f"  store filled a page at a time (every object converted once): "
              f"{time.perf_counter() - start:.1f} s; RSS {rss_mib():.0f} MiB", flush=True)
        b = Bench(plan.node, store, name)
        b.step("first sync (full)", full=True)
        policy = copy.deepcopy(plan.policy)
        rules = policy["spec"].get("ingress") or policy["spec"].get("egress") or []
        if len(rules) > 1:
            rules.pop()
        policy["metadata"]["labels"] = {**policy["metadata"].get("labels", {}), "bench": "1"}
        b.store.apply("NetworkPolicy", "MODIFIED", policy)
        b.step("a policy changed (delta)", full=False)
        ip1 = str(ipaddress.ip_address(plan.highest + 1))
        ip2 = str(ipaddress.ip_address(plan.highest + 2))
        remote = plan.remote
        b.store.apply("Pod", "ADDED", scaled(remote, "-x1", remote["spec"]["nodeName"], ip1))
        b.step("a pod added on another node (delta)", full=False)
        b.store.apply("Pod", "ADDED", scaled(plan.local, "-x2", b.node, ip2))
        b.step("a pod added on this node (delta)", full=False)
        b.step("periodic resync (full)", full=True)
    finally:
        netns.delete(name)
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000x3000", help="comma-separated PODSxPOLICIES")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_agent needs root (a network namespace and nftables)", file=sys.stderr)
        return 2
    print("command:", " ".join([Path(sys.executable).name, "-m", "benchmarks.bench_agent",
                                *(argv if argv is not None else sys.argv[1:])]))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            pods, policies = (int(x) for x in size.split("x"))
            run(pods, policies, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
