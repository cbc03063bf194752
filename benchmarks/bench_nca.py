"""kubefence side by side with network-config-analyzer (NCA), the Python analyzer from PyPI.

For each size PODSxPOLICIES a cluster is generated (not timed) by `benchmarks.generate` and both
tools compute the connectivity map of the same file, each in a fresh process, timed from the
parent (wall time including interpreter start-up; peak RSS from `os.wait4`):

    kubefence:  .venv/bin/kubefence matrix FILE -o json
    NCA:        nca --connectivity -r FILE -o txt_no_fw_rules --output_endpoints pods -f OUT

`txt_no_fw_rules` with `--output_endpoints pods` is NCA's output closest to kubefence's matrix:
one line `SRC => DST : CONNECTIONS` per connected pair of (representative) pods. With
`--fw-rules` NCA's default output (`txt`, connectivity minimised into firewall rules, which
costs more) is timed as well. A run longer than `--timeout` seconds is killed (its whole process
group) and reported as "did not finish"; NCA is then not tried on the larger sizes. With
`--repeat K` the table shows the fastest of K runs; one untimed run of each tool on a 100x30
cluster warms up first (.pyc files, page cache). NCA comes from its own virtualenv, made on first
use by scripts/setup-nca.sh. `--rev REV` runs kubefence from a clean `git archive` export of a
commit rather than from the working tree (whose files may be half edited).

Input transformation (not timed; the same file goes to both tools): the generator writes a
cluster as `kubectl get -A -o yaml` does, with the workloads (Deployment, ReplicaSet,
StatefulSet, DaemonSet), Services and Nodes besides the Pods. NCA creates pods of its own from
every workload's pod template, on top of the Pod objects, so it would count each pod twice
(and a Deployment's pods three times, through the ReplicaSet as well). The file both tools read
therefore keeps only the Namespace, Pod and NetworkPolicy documents, in the generator's order;
neither tool uses the others for the connectivity map (kubefence finds each pod's workload in
its ownerReferences).

Agreement: both outputs become sets of allowed (source pod, destination pod) pairs, each with its
allowed ports (TCP, UDP and SCTP port intervals; NCA's "All connections" is every port of the
three, its ICMP is left out since a NetworkPolicy cannot express it), over every ordered pair of
distinct pods. NCA does not model every pod: it keeps at most two pods of each class of
indistinguishable ones (same namespace, same workload from the first ownerReference, same
labels; the first two of the class in the input) and names those. This script computes the same
classes from the input, checks that NCA named no other pod, and gives every pod the connectivity
of its class's representatives: pod p to pod q (p != q) is NCA's answer for the first
representative of p's class to the first representative of q's class, or to the second one when
both are in the same class. Addresses (ipBlock ranges) are not compared.

The models differ in two ways, both left open by the NetworkPolicy API: NCA gives pods no IP
address, so an ipBlock never matches a pod, where kubefence matches pod IPs (as the upstream e2e
tests of ipBlock do); and NCA treats hostNetwork pods as ordinary pods, where kubefence leaves
them out of selectors and sees them at their node's IP (the behaviour the Kubernetes docs call
the most common). So, unless `--no-aligned-check`, both tools also run (untimed) on a variant of
the input where the two models coincide, every pod on an IPv6 address of its own (which no IPv4
ipBlock matches) and without hostNetwork: there any disagreement would be a bug in one of them.

    python -m benchmarks.bench_nca                          # 100x30,300x90,1000x300
    python -m benchmarks.bench_nca --repeat 3 --fw-rules --rev HEAD
    python -m benchmarks.bench_nca --sizes 3000x900,5000x1500 --json-out nca.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import ipaddress
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import hexdigits
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.bench_analyzer import Size  # noqa: E402 (after the path set-up above)

DEFAULT_SIZES = "100x30,300x90,1000x300"
NCA_VERSION = "2.1.0"
SETUP_SCRIPT = REPO / "scripts" / "setup-nca.sh"
KEPT_KINDS = ("Namespace", "Pod", "NetworkPolicy")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_PORT = 65535

Obj = dict[str, Any]
Pair = tuple[str, str]
# Allowed ports of one pair: per protocol, sorted disjoint inclusive (first, last) intervals.
Ports = tuple[tuple[str, tuple[tuple[int, int], ...]], ...]


# -- NCA's own virtualenv ---------------------------------------------------------------------


def default_venv() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "kubefence" / "nca-venv"


def ensure_nca(venv: Path, version: str) -> Path:
    """The `nca` program of `venv`, installed there first by scripts/setup-nca.sh if needed."""
    subprocess.run(["bash", str(SETUP_SCRIPT), str(venv), version], check=True)
    return venv / "bin" / "nca"


def output_of(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return (proc.stdout or proc.stderr).strip() or "unknown"


def load_average() -> str:
    """The 1-minute load average: other work on the machine slows both tools alike."""
    return f"load average {os.getloadavg()[0]:.1f}"


def environment(nca: Path, kubefence: Path, rev: str | None) -> list[str]:
    if rev is None:
        source = "working tree, git " + output_of(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
        )
    else:
        source = f"clean export of {rev}, git {resolve(rev)[:12]}"
    nca_python = output_of([str(nca.parent / "python"), "--version"])
    paths = ["--", "benchmarks/clustergen", "benchmarks/generate.py"]
    generator = output_of(["git", "-C", str(REPO), "log", "-1", "--format=%h", *paths])
    edited = output_of(["git", "-C", str(REPO), "status", "--porcelain", *paths])
    edited = "" if edited == "unknown" else edited
    return [
        f"kubefence: {kubefence} ({source}), python {platform.python_version()}",
        f"generator: the working tree's, last changed in git {generator}"
        + (" (with uncommitted changes)" if edited else ""),
        f"NCA: {output_of([str(nca), '--version'])}, {nca_python} ({nca.parent.parent})",
        f"machine: {os.cpu_count()} CPUs, {platform.machine()} {platform.system()} "
        f"{platform.release()}, {load_average()}",
    ]


# -- inputs -----------------------------------------------------------------------------------


WARM_UP = Size(100, 30)


@dataclass
class Input:
    """The file both tools read, and what the agreement check needs to know of its pods."""

    path: Path
    megabytes: float
    documents: int
    pods: list[str]  # "namespace/name", in input order
    nca_class: dict[str, str]  # pod -> NCA's class of indistinguishable pods
    host_network: frozenset[str]  # the hostNetwork pods


def shared_documents(docs: Iterable[Obj]) -> list[Obj]:
    """The transformation: only the Namespaces, Pods and NetworkPolicies (see the docstring)."""
    return [d for d in docs if d.get("kind") in KEPT_KINDS]


def nca_workload(namespace: str, pod_name: str, meta: Obj) -> str:
    """NCA's workload name of a pod (nca.CoreDS.Peer.Pod): the first ownerReference's."""
    owners = meta.get("ownerReferences") or []
    if not owners:
        return f"{namespace}/{pod_name}(Pod)"
    name, kind = owners[0].get("name", ""), owners[0].get("kind", "")
    if kind == "ReplicaSet":
        base, _, suffix = name.rpartition("-")
        if all(c in hexdigits for c in suffix):  # NCA's guess: made by a Deployment
            return f"{namespace}/{base}(Deployment-StatefulSet)"
    return f"{namespace}/{name}({kind})"


def nca_class_key(pod: Obj) -> str:
    """NCA's canonical form of a pod: namespace, workload and labels (Pod.canonical_form)."""
    meta = pod.get("metadata") or {}
    namespace, name = meta.get("namespace", "default"), meta.get("name", "")
    labels = sorted((meta.get("labels") or {}).items())
    return f"{namespace}_{nca_workload(namespace, name, meta)}_{labels}"


def aligned_documents(docs: Iterable[Obj]) -> list[Obj]:
    """The variant of the input on which NCA's model and kubefence's coincide (the check).

    NCA gives pods no addresses, so an ipBlock never matches a pod, and it treats hostNetwork
    pods as ordinary pods. Here every pod gets an IPv6 address of its own (fd00::N), which no
    IPv4 ipBlock of the policies matches, and loses `hostNetwork`; the rest is unchanged.
    """
    out: list[Obj] = []
    base = ipaddress.IPv6Address("fd00::")
    for i, doc in enumerate(docs):
        if doc.get("kind") != "Pod":
            out.append(doc)
            continue
        pod = copy.deepcopy(doc)
        pod.get("spec", {}).pop("hostNetwork", None)
        address = str(base + i + 1)
        pod.setdefault("status", {}).update(podIP=address, podIPs=[{"ip": address}])
        out.append(pod)
    return out


def write_input(docs: list[Obj], path: Path) -> Input:
    """Write `docs` as multi-document YAML to `path` (what both tools read)."""
    from benchmarks.generate import render  # here: not needed by --help

    path.write_text(render(docs, "yaml"), encoding="utf-8")
    pods = [d for d in docs if d["kind"] == "Pod"]
    names = [f"{p['metadata'].get('namespace', 'default')}/{p['metadata']['name']}" for p in pods]
    return Input(
        path=path,
        megabytes=path.stat().st_size / 1e6,
        documents=len(docs),
        pods=names,
        nca_class={n: nca_class_key(p) for n, p in zip(names, pods, strict=True)},
        host_network=frozenset(
            n for n, p in zip(names, pods, strict=True) if p.get("spec", {}).get("hostNetwork")
        ),
    )


# -- timing one process -----------------------------------------------------------------------


@dataclass
class Run:
    """One process: wall seconds from start to exit, its peak RSS, and how it ended."""

    command: list[str]
    seconds: float
    peak_rss_mib: float
    returncode: int | None  # None: killed at the timeout
    output: str  # the file the connectivity map was written to

    @property
    def finished(self) -> bool:
        return self.returncode == 0


def run_timed(
    cmd: list[str], stdout: Path, stderr: Path, timeout: float, output: Path | None = None
) -> Run:
    """Run `cmd` in a new process group; kill the group after `timeout` seconds.

    `output` is the file the command writes its result to, `stdout` when None.
    """
    timed_out = threading.Event()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True, cwd=REPO)

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    code = None if timed_out.is_set() else proc.returncode
    return Run(cmd, seconds, usage.ru_maxrss / 1024, code, str(output or stdout))


def kubefence_command(kubefence: Path, path: Path) -> list[str]:
    return [str(kubefence), "matrix", str(path), "-o", "json"]


def nca_command(nca: Path, path: Path, out: Path, fw_rules: bool) -> list[str]:
    cmd = [str(nca), "--connectivity", "-r", str(path)]
    if not fw_rules:
        cmd += ["-o", "txt_no_fw_rules", "--output_endpoints", "pods"]
    return [*cmd, "-f", str(out)]


def best(runs: list[Run]) -> Run | None:
    """The fastest finished run (all runs of a size must finish), else None."""
    if not runs or not all(r.finished for r in runs):
        return None
    return min(runs, key=lambda r: r.seconds)


# -- port sets ----------------------------------------------------------------------------------


def merge(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def subtract(
    base: tuple[tuple[int, int], ...], cut: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in base:
        pieces = [(lo, hi)]
        for clo, chi in cut:
            pieces = [
                p
                for a, b in pieces
                for p in ((a, min(b, clo - 1)), (max(a, chi + 1), b))
                if p[0] <= p[1]
            ]
        out += pieces
    return merge(out)


def ports_of(per_protocol: dict[str, list[tuple[int, int]]]) -> Ports:
    return tuple((p, merge(per_protocol[p])) for p in PROTOCOLS if per_protocol.get(p))


ALL_PORTS: Ports = tuple((p, ((1, MAX_PORT),)) for p in PROTOCOLS)


def kubefence_ports(cell: list[dict[str, Any]]) -> Ports:
    per: dict[str, list[tuple[int, int]]] = {}
    for r in cell:
        per.setdefault(r["protocol"], []).append((int(r["from"]), int(r["to"])))
    return ports_of(per)


CUBE_ITEM = re.compile(r",(?=[a-z_]+:)")  # items of `{protocols:TCP, UDP,dst_ports:53,80-90}`


def nca_cube(text: str) -> dict[str, list[tuple[int, int]]]:
    """One cube of NCA's connection text; dimensions other than these two are not expected."""
    items = dict(item.split(":", 1) for item in CUBE_ITEM.split(text.strip().strip("{}")))
    protocols = [p.strip() for p in items.pop("protocols", ",".join(PROTOCOLS)).split(",")]
    ports: list[tuple[int, int]] = []
    for part in items.pop("dst_ports", f"1-{MAX_PORT}").split(","):
        lo, _, hi = part.strip().partition("-")
        ports.append((int(lo), int(hi or lo)))
    if items:
        raise ValueError(f"unexpected dimensions in NCA output: {sorted(items)}")
    return {p: ports for p in protocols if p in PROTOCOLS}


def nca_ports(text: str) -> Ports:
    """NCA's `All connections`, `{cube},{cube}` or `All but {cube},...`, as TCP/UDP/SCTP ports."""
    text = text.strip()
    if text == "All connections":
        return ALL_PORTS
    negate = text.startswith("All but ")
    per: dict[str, list[tuple[int, int]]] = {}
    for cube in re.findall(r"\{[^{}]*\}", text):
        for proto, ports in nca_cube(cube).items():
            per.setdefault(proto, []).extend(ports)
    if not negate:
        return ports_of(per)
    return tuple(
        (p, rest) for p, whole in ALL_PORTS if (rest := subtract(whole, merge(per.get(p, []))))
    )


def union(a: Ports, b: Ports) -> Ports:
    per: dict[str, list[tuple[int, int]]] = {}
    for proto, intervals in (*a, *b):
        per.setdefault(proto, []).extend(intervals)
    return ports_of(per)


def show_ports(ports: Ports) -> str:
    if not ports:
        return "-"
    return "; ".join(
        f"{proto} " + ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ivs)
        for proto, ivs in ports
    )


# -- the two outputs ----------------------------------------------------------------------------


def read_kubefence(path: Path) -> dict[Pair, Ports]:
    """Allowed pod-to-pod pairs of `kubefence matrix -o json` (external endpoints left out)."""
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    pods = {e["name"] for e in data["endpoints"] if e["kind"] == "pod"}
    allowed: dict[Pair, Ports] = {}
    for src, row in data["matrix"].items():
        if src not in pods:
            continue
        for dst, cell in row.items():
            if dst in pods and dst != src and cell and (ports := kubefence_ports(cell)):
                allowed[(src, dst)] = ports
    return allowed


CUBES = r"\{[^{}]*\}(?:,\{[^{}]*\})*"
NCA_LINE = re.compile(rf"^(\S+) => (\S+) : (All connections|All but {CUBES}|{CUBES})$")


def read_nca(path: Path) -> dict[Pair, Ports]:
    """Pod-to-pod lines of NCA's txt_no_fw_rules output, a pair's lines united (ranges dropped)."""
    allowed: dict[Pair, Ports] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = NCA_LINE.match(line)
        if m is None and " => " in line:
            raise ValueError(f"{path}: unexpected line {line!r}")
        if m is None or "/" not in m[1] or "/" not in m[2]:
            continue  # a header, or an address range at either end
        pair = (m[1], m[2])
        allowed[pair] = union(allowed.get(pair, ()), nca_ports(m[3]))
    return {pair: ports for pair, ports in allowed.items() if ports}


def representatives(inp: Input) -> dict[str, list[str]]:
    """NCA's class -> the (at most two) pods it models, the first ones of the input."""
    reps: dict[str, list[str]] = {}
    for pod in inp.pods:
        members = reps.setdefault(inp.nca_class[pod], [])
        if len(members) < 2:
            members.append(pod)
    return reps


def expand_nca(inp: Input, nca: dict[Pair, Ports]) -> tuple[dict[Pair, Ports], list[str]]:
    """NCA's answer for every ordered pair of distinct pods, and the pods it named unexpectedly."""
    reps = representatives(inp)
    modelled = {p for members in reps.values() for p in members}
    unexpected = sorted({p for pair in nca for p in pair} - modelled)
    first = {pod: reps[inp.nca_class[pod]][0] for pod in inp.pods}
    second = {pod: reps[inp.nca_class[pod]][-1] for pod in inp.pods}
    allowed: dict[Pair, Ports] = {}
    for src in inp.pods:
        rs = first[src]
        for dst in inp.pods:
            if dst == src:
                continue
            rd = first[dst] if first[dst] != rs else second[dst]
            if (ports := nca.get((rs, rd))) is not None:
                allowed[(src, dst)] = ports
    return allowed, unexpected


# -- agreement ----------------------------------------------------------------------------------


@dataclass
class Agreement:
    pairs: int = 0  # ordered pairs of distinct pods
    both_allow: int = 0
    both_deny: int = 0
    only_kubefence: int = 0  # kubefence allows, NCA does not
    only_nca: int = 0
    same_ports: int = 0  # of both_allow
    different_ports: int = 0
    with_host_network: int = 0  # of the disagreeing pairs: a hostNetwork pod at either end
    unexpected_nca_pods: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # no hostNetwork pod, then some
    by_workloads: list[tuple[str, int]] = field(default_factory=list)

    @property
    def agree(self) -> int:
        return self.both_deny + self.same_ports

    @property
    def disagree(self) -> int:
        return self.only_kubefence + self.only_nca + self.different_ports


def workload_of(inp: Input, pod: str) -> str:
    return inp.nca_class[pod].split("_", 2)[1]


def compare(inp: Input, kf: dict[Pair, Ports], nca_raw: dict[Pair, Ports], shown: int) -> Agreement:
    nca, unexpected = expand_nca(inp, nca_raw)
    n = len(inp.pods)
    a = Agreement(pairs=n * (n - 1), unexpected_nca_pods=unexpected[:shown])
    groups: Counter[str] = Counter()
    examples: tuple[list[str], list[str]] = ([], [])  # without, with a hostNetwork pod
    for pair in sorted(kf.keys() | nca.keys()):
        k, c = kf.get(pair), nca.get(pair)
        if k is not None and c is not None:
            a.both_allow += 1
            if k == c:
                a.same_ports += 1
                continue
            a.different_ports += 1
        elif k is not None:
            a.only_kubefence += 1
        else:
            a.only_nca += 1
        src, dst = pair
        groups[f"{workload_of(inp, src)} -> {workload_of(inp, dst)}"] += 1
        host_network = src in inp.host_network or dst in inp.host_network
        a.with_host_network += host_network
        if len(examples[host_network]) < shown:
            examples[host_network].append(
                f"{src} -> {dst}: kubefence {show_ports(k or ())}, NCA {show_ports(c or ())}"
                + (" (hostNetwork)" if host_network else "")
            )
    a.both_deny = a.pairs - a.both_allow - a.only_kubefence - a.only_nca
    others = min(len(examples[0]), shown - min(len(examples[1]), shown // 2))  # both kinds
    a.examples = examples[0][:others] + examples[1][: shown - others]
    a.by_workloads = groups.most_common(shown)
    return a


# -- one size, and the report -------------------------------------------------------------------


@dataclass
class Result:
    size: Size
    input_mb: float
    documents: int
    pods: int
    nca_models: int  # the pods NCA keeps (at most two of each class)
    kubefence: list[Run] = field(default_factory=list)
    nca: list[Run] = field(default_factory=list)
    nca_fw_rules: list[Run] = field(default_factory=list)
    nca_skipped: str = ""  # why NCA was not run at this size
    agreement: Agreement | None = None
    aligned_runs: list[Run] = field(default_factory=list)  # the check's kubefence and NCA
    aligned: Agreement | None = None  # on aligned_documents: should be complete


@dataclass(frozen=True)
class Setup:
    kubefence: Path
    nca: Path
    folder: Path
    seed: int
    repeat: int
    timeout: float
    fw_rules: bool
    aligned: bool
    shown: int


def measure(setup: Setup, stem: Path, label: str, cmd: list[str], out: Path | None) -> Run:
    """One timed run; its stdout and stderr go to STEM.LABEL.stdout / .stderr."""
    stdout, stderr = Path(f"{stem}.{label}.stdout"), Path(f"{stem}.{label}.stderr")
    if out is not None:
        out.unlink(missing_ok=True)  # NCA's -f appends to an existing file
    run = run_timed(cmd, stdout, stderr, setup.timeout, out)
    if run.finished:
        state = f"{run.seconds:.2f} s, peak RSS {run.peak_rss_mib:.0f} MiB"
    elif run.returncode is None:
        state = f"did not finish in {setup.timeout:g} s (killed)"
    else:
        state = f"FAILED (exit {run.returncode}; see {stderr})"
    print(f"  {label}: {state}", flush=True)
    return run


def repeated(setup: Setup, stem: Path, label: str, cmd: list[str], out: Path | None) -> list[Run]:
    """Up to `repeat` runs, stopping at the first one that does not finish."""
    runs: list[Run] = []
    for _ in range(setup.repeat):
        runs.append(measure(setup, stem, label, cmd, out))
        if not runs[-1].finished:
            break
    return runs


def agreement_of(setup: Setup, inp: Input, kf: Run, nca: Run, label: str) -> Agreement:
    t = time.perf_counter()
    a = compare(inp, read_kubefence(Path(kf.output)), read_nca(Path(nca.output)), setup.shown)
    print(f"  {label}: {agreement_line(a)} ({time.perf_counter() - t:.1f} s)", flush=True)
    return a


def aligned_check(setup: Setup, docs: list[Obj], stem: Path, res: Result) -> None:
    """Both tools once more, on the aligned variant (not in the timings), and compare."""
    inp = write_input(aligned_documents(docs), Path(f"{stem}.aligned.yaml"))
    astem = inp.path.with_suffix("")
    kf = measure(setup, astem, "kubefence", kubefence_command(setup.kubefence, inp.path), None)
    out = Path(f"{astem}.nca.txt")
    nca = measure(setup, astem, "nca", nca_command(setup.nca, inp.path, out, False), out)
    res.aligned_runs = [kf, nca]
    if kf.finished and nca.finished:
        res.aligned = agreement_of(setup, inp, kf, nca, "aligned check")


def warm_up(setup: Setup) -> None:
    """One untimed run of each tool on a small cluster: compiles .pyc files, fills caches."""
    from benchmarks.generate import generate

    print(f"warm-up on {WARM_UP.label} (not counted):")
    docs = shared_documents(generate(WARM_UP.pods, WARM_UP.policies, setup.seed)[0])
    inp = write_input(docs, setup.folder / f"warm-up-{WARM_UP.label}.yaml")
    stem = inp.path.with_suffix("")
    measure(setup, stem, "kubefence", kubefence_command(setup.kubefence, inp.path), None)
    out = Path(f"{stem}.nca.txt")
    measure(setup, stem, "nca", nca_command(setup.nca, inp.path, out, False), out)


def run_size(setup: Setup, size: Size, try_nca: bool) -> Result:
    from benchmarks.generate import generate  # here: not needed by --help

    t = time.perf_counter()
    docs = shared_documents(generate(size.pods, size.policies, setup.seed)[0])
    inp = write_input(docs, setup.folder / f"cluster-{size.label}-seed{setup.seed}.yaml")
    print(
        f"{size.label}: {inp.path}: {inp.documents} documents ({len(inp.pods)} pods), "
        f"{inp.megabytes:.1f} MB, made in {time.perf_counter() - t:.1f} s (not timed)",
        flush=True,
    )
    nca_models = sum(len(members) for members in representatives(inp).values())
    res = Result(size, inp.megabytes, inp.documents, len(inp.pods), nca_models)
    stem = inp.path.with_suffix("")
    kf_cmd = kubefence_command(setup.kubefence, inp.path)
    res.kubefence = repeated(setup, stem, "kubefence", kf_cmd, None)  # the matrix is its stdout
    if not try_nca:
        res.nca_skipped = "not run: NCA did not finish a smaller size"
        print(f"  nca: {res.nca_skipped}")
        return res
    nca_out = Path(f"{stem}.nca.txt")
    nca_cmd = nca_command(setup.nca, inp.path, nca_out, False)
    res.nca = repeated(setup, stem, "nca", nca_cmd, nca_out)
    kf, nca = best(res.kubefence), best(res.nca)
    if nca is not None and setup.fw_rules:
        fw_out = Path(f"{stem}.nca-fw-rules.txt")
        fw_cmd = nca_command(setup.nca, inp.path, fw_out, True)
        res.nca_fw_rules = repeated(setup, stem, "nca-fw-rules", fw_cmd, fw_out)
    if kf is not None and nca is not None:
        res.agreement = agreement_of(setup, inp, kf, nca, "agreement")
        if setup.aligned:
            aligned_check(setup, docs, stem, res)
    return res


def agreement_line(a: Agreement) -> str:
    line = (
        f"{a.agree:,} of {a.pairs:,} ordered pod pairs agree "
        f"({a.both_allow:,} allowed by both, {a.same_ports:,} of them with the same ports; "
        f"{a.both_deny:,} denied by both); {a.disagree:,} disagree: "
        f"{a.only_kubefence:,} allowed only by kubefence, {a.only_nca:,} only by NCA, "
        f"{a.different_ports:,} allowed by both with different ports"
        f" ({a.with_host_network:,} of the {a.disagree:,} with a hostNetwork pod)"
    )
    if a.unexpected_nca_pods:
        line += f"; NCA named pods outside its expected classes: {a.unexpected_nca_pods}"
    return line


def seconds_cell(runs: list[Run], skipped: str = "") -> str:
    if not runs:
        return "not run" if skipped else "-"
    b = best(runs)
    if b is not None:
        return f"{b.seconds:.2f}"
    last = runs[-1]
    return "did not finish" if last.returncode is None else f"failed ({last.returncode})"


def rss_cell(runs: list[Run]) -> str:
    return f"{max(r.peak_rss_mib for r in runs):.0f}" if best(runs) is not None else "-"


def ratio_cell(num: list[Run], den: list[Run], timeout: float) -> str:
    n, d = best(num), best(den)
    if d is None:
        return "-"
    if n is None:
        return f"> {timeout / d.seconds:.0f}" if num and num[-1].returncode is None else "-"
    return f"{n.seconds / d.seconds:.1f}"


def agreement_cell(a: Agreement | None) -> str:
    if a is None:
        return "-"
    return f"{a.agree:,}/{a.pairs:,}" + ("" if not a.disagree else f" ({a.disagree:,} differ)")


def table(results: list[Result], setup: Setup) -> str:
    heads = ["size", "pods", "NCA models", "kubefence s", "NCA s", "NCA / kubefence"]
    if setup.fw_rules:
        heads += ["NCA fw-rules s", "fw-rules / kubefence"]
    heads += ["kubefence RSS MiB", "NCA RSS MiB", "pairs agreeing"]
    if setup.aligned:
        heads.append("aligned check")
    rows: list[list[str]] = []
    for r in results:
        row = [r.size.label, str(r.pods), str(r.nca_models), seconds_cell(r.kubefence)]
        row += [seconds_cell(r.nca, r.nca_skipped), ratio_cell(r.nca, r.kubefence, setup.timeout)]
        if setup.fw_rules:
            row += [
                seconds_cell(r.nca_fw_rules, "skipped" if best(r.nca) is None else ""),
                ratio_cell(r.nca_fw_rules, r.kubefence, setup.timeout),
            ]
        row += [rss_cell(r.kubefence), rss_cell(r.nca), agreement_cell(r.agreement)]
        if setup.aligned:
            row.append(agreement_cell(r.aligned))
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(
        "(wall seconds of the whole process, interpreter start-up included"
        + (f"; the fastest of {setup.repeat} runs" if setup.repeat > 1 else "")
        + "; peak RSS from wait4; 'NCA models': the pods NCA keeps, at most two per class"
        + " of indistinguishable pods"
        + (
            "; 'aligned check': the agreement on the input without hostNetwork and with pods"
            " moved to IPv6, untimed"
            if setup.aligned
            else ""
        )
        + ")"
    )
    return "\n".join(lines)


def differences(results: list[Result]) -> list[str]:
    lines: list[str] = []
    for r in results:
        for what, a in (("", r.agreement), (" (aligned check)", r.aligned)):
            if a is None or not a.disagree:
                continue
            lines.append(f"{r.size.label}{what}: differences (by pod name):")
            lines += [f"  {e}" for e in a.examples]
            lines.append(f"{r.size.label}{what}: differing pairs by NCA's workload names:")
            lines += [f"  {n:7,}  {w}" for w, n in a.by_workloads]
    return lines


def write_json(path: Path, results: list[Result], setup: Setup, env: list[str]) -> None:
    doc = {
        "environment": env,
        "seed": setup.seed,
        "timeout_s": setup.timeout,
        "results": [{**asdict(r), "size": r.size.label} for r in results],
    }
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def find_kubefence() -> Path:
    beside = Path(sys.executable).parent / "kubefence"
    return beside if beside.exists() else REPO / ".venv" / "bin" / "kubefence"


def resolve(rev: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def exported_kubefence(rev: str, folder: Path) -> Path:
    """A `kubefence` program running commit `rev`, exported with `git archive` into `folder`.

    For a checkout whose working tree is being edited: the program is the console script's
    equivalent, run by this interpreter (so with this virtualenv's packages), with the export
    first on sys.path (before the editable install's finder).
    """
    commit = resolve(rev)
    tree = folder / f"kubefence-{commit[:12]}"
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    program = folder / f"bin-{commit[:12]}" / "kubefence"
    program.parent.mkdir(exist_ok=True)
    program.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(tree)!r})\n"
        "from kubefence.cli import run\n"
        "sys.exit(run())\n",
        encoding="utf-8",
    )
    program.chmod(0o755)
    return program


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time kubefence and network-config-analyzer on the same generated clusters.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"PODSxPOLICIES,... ({DEFAULT_SIZES})")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and size (fastest shown)")
    ap.add_argument("--timeout", type=float, default=600, help="per run, seconds (default 600)")
    ap.add_argument("--fw-rules", action="store_true", help="also time NCA's default txt output")
    ap.add_argument(
        "--no-aligned-check",
        action="store_true",
        help="skip the second comparison, on the input where the two models coincide",
    )
    ap.add_argument("--nca-venv", type=Path, default=default_venv(), help="NCA's virtualenv")
    ap.add_argument("--nca-version", default=NCA_VERSION, help=f"default {NCA_VERSION}")
    ap.add_argument("--kubefence", type=Path, default=find_kubefence(), help="kubefence program")
    ap.add_argument(
        "--rev",
        help="run kubefence from a clean `git archive` export of this commit instead (for a "
        "working tree being edited)",
    )
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep the files")
    ap.add_argument("--show", type=int, default=10, help="differences listed per size (10)")
    ap.add_argument("--json-out", type=Path, metavar="FILE", help="write the raw results as JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.timeout <= 0:
        ap.error("--repeat must be at least 1 and --timeout positive")
    try:
        args.sizes = [Size.parse(s) for s in args.sizes.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nca = ensure_nca(args.nca_venv, args.nca_version)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    print("command: " + shlex.join([sys.executable, "-m", "benchmarks.bench_nca", *argv_list]))
    with tempfile.TemporaryDirectory(prefix="kubefence-nca-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        kubefence = args.kubefence if args.rev is None else exported_kubefence(args.rev, folder)
        env = environment(nca, kubefence, args.rev)
        print("\n".join(env))
        setup = Setup(
            kubefence,
            nca,
            folder,
            args.seed,
            args.repeat,
            args.timeout,
            args.fw_rules,
            not args.no_aligned_check,
            args.show,
        )
        print(
            "inputs: python -m benchmarks.generate --pods P --policies Q --seed "
            f"{args.seed} (in process), keeping only {', '.join(KEPT_KINDS)} documents"
        )
        print("timed:  " + shlex.join(kubefence_command(kubefence, Path("FILE"))))
        print("        " + shlex.join(nca_command(nca, Path("FILE"), Path("OUT"), False)))
        if args.fw_rules:
            print("        " + shlex.join(nca_command(nca, Path("FILE"), Path("OUT"), True)))
        warm_up(setup)
        results: list[Result] = []
        try_nca = True
        for size in args.sizes:
            results.append(run_size(setup, size, try_nca))
            try_nca = try_nca and best(results[-1].nca) is not None
    print(f"\nat the end: {load_average()}")
    print(table(results, setup))
    for line in differences(results):
        print(line)
    if args.json_out:
        write_json(args.json_out, results, setup, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
