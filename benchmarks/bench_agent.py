"""Benchmark of the node agent's own work at scale (root): what one agent spends per sync, and
its memory, with the cluster a generated one (`benchmarks.clustergen`).

No API server: the generated Namespaces, Pods and NetworkPolicies are handed to the agent's
`Store` as a list response would be (`Store.replace`, which converts every object once), and
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
import gc
import io
import ipaddress
import json
import os
import platform
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from benchmarks.clustergen.cluster import generate  # noqa: E402
from enforcer.agent.health import Status  # noqa: E402
from enforcer.agent.logs import Log  # noqa: E402
from enforcer.agent.loop import SyncLoop, Timing  # noqa: E402
from enforcer.agent.metrics import Metrics  # noqa: E402
from enforcer.agent.netns import NetnsDataplane  # noqa: E402
from enforcer.agent.store import KINDS, Store  # noqa: E402
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


class Bench:
    def __init__(self, docs: list[Obj], ns_name: str) -> None:
        self.by_kind: dict[str, list[Obj]] = {k: [] for k in KINDS}
        for d in docs:
            if d["kind"] in KINDS:
                self.by_kind[d["kind"]].append(d)
        ordinary = [p for p in self.by_kind["Pod"] if not p["spec"].get("hostNetwork")]
        self.node = ordinary[0]["spec"]["nodeName"]
        self.store = Store()
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


def new_address(pods: list[Obj]) -> str:
    highest = max(int(ipaddress.ip_address(p["status"]["podIP"])) for p in pods
                  if p.get("status", {}).get("podIP") and not p["spec"].get("hostNetwork"))
    return str(ipaddress.ip_address(highest + 1))


def scaled(model: Obj, suffix: str, node: str, ip: str) -> Obj:
    pod = copy.deepcopy(model)
    pod["metadata"]["name"] += suffix
    pod["metadata"]["uid"] = f"bench-{suffix}"
    pod["spec"]["nodeName"] = node
    pod["status"]["podIP"] = ip
    pod["status"]["podIPs"] = [{"ip": ip}]
    return pod


def run(pods: int, policies: int) -> None:
    start = time.perf_counter()
    docs, _ = generate(pods, policies, 1)
    print(f"{pods}x{policies}: generated in {time.perf_counter() - start:.1f} s; "
          f"RSS {rss_mib():.0f} MiB", flush=True)
    name = f"kfbagent-{secrets.token_hex(3)}"
    netns.add(name)
    try:
        b = Bench(docs, name)
        del docs
        start = time.perf_counter()
        for kind in ("Namespace", "NetworkPolicy", "Pod"):
            b.store.replace(kind, b.by_kind[kind])
        print(f"  store filled (every object converted once): "
              f"{time.perf_counter() - start:.1f} s; RSS {rss_mib():.0f} MiB", flush=True)
        pods_ = b.by_kind["Pod"]
        model = next(p for p in pods_ if p["spec"]["nodeName"] != b.node
                     and not p["spec"].get("hostNetwork"))
        local = next(p for p in pods_ if p["spec"]["nodeName"] == b.node
                     and not p["spec"].get("hostNetwork"))
        ip1 = new_address(pods_)
        ip2 = str(ipaddress.ip_address(int(ipaddress.ip_address(ip1)) + 1))
        policy = copy.deepcopy(b.by_kind["NetworkPolicy"][-1])
        b.by_kind = {}  # the agent keeps only what the store converted
        gc.collect()
        print(f"  the objects' JSON dropped: RSS {rss_mib():.0f} MiB", flush=True)
        b.step("first sync (full)", full=True)
        rules = policy["spec"].get("ingress") or policy["spec"].get("egress") or []
        if len(rules) > 1:
            rules.pop()
        policy["metadata"]["labels"] = {**policy["metadata"].get("labels", {}), "bench": "1"}
        b.store.apply("NetworkPolicy", "MODIFIED", policy)
        b.step("a policy changed (delta)", full=False)
        b.store.apply("Pod", "ADDED", scaled(model, "-x1", model["spec"]["nodeName"], ip1))
        b.step("a pod added on another node (delta)", full=False)
        b.store.apply("Pod", "ADDED", scaled(local, "-x2", b.node, ip2))
        b.step("a pod added on this node (delta)", full=False)
        b.step("periodic resync (full)", full=True)
    finally:
        netns.delete(name)


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
    for size in args.sizes.split(","):
        pods, policies = (int(x) for x in size.split("x"))
        run(pods, policies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
