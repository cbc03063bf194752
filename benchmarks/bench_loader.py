"""Benchmark of loading across files: one process against worker processes (`policy.loader`).

A generated cluster (`benchmarks.clustergen`) is written as FILES files, its documents dealt
round-robin (the namespaces first, in the first file, as a repository of manifests would hold
them), in YAML or JSON. Each measurement runs in a fresh Python subprocess that times
`policy.loader.load([folder])` with `workers=1` (every file converted in this process) and with
the default (a worker per CPU when there are several files and at least 4 MiB of text), and
checks that both give the same cluster. Figures are min / median over --repeat runs.

    .venv/bin/python -m benchmarks.bench_loader                       # 10000x3000, 8 YAML files
    .venv/bin/python -m benchmarks.bench_loader --sizes 150000x100000 --files 16 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from benchmarks.clustergen.cluster import generate  # noqa: E402
from benchmarks.clustergen.output import render  # noqa: E402

CHILD = """
import hashlib, json, sys, time
from policy import loader
folder, workers = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
cluster = loader.load_texts(
    [(n, loader.read_source(n), w) for n, w in loader.expand_paths([folder])],
    workers=None if workers == 0 else workers)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "pods": len(cluster.pods),
                  "policies": len(cluster.policies), "digest": hashlib.sha256(
                  repr((cluster.pods, cluster.policies)).encode()).hexdigest()}))
"""


def write_files(pods: int, policies: int, files: int, fmt: str, folder: Path) -> int:
    docs, _ = generate(pods, policies, 1)
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    rest = [d for d in docs if d["kind"] != "Namespace"]
    shares: list[list[dict[str, object]]] = [[] for _ in range(files)]
    shares[0].extend(namespaces)
    for i, doc in enumerate(rest):
        shares[i % files].append(doc)
    size = 0
    for i, share in enumerate(shares):
        text = render(share, fmt)
        (folder / f"part-{i:03d}.{fmt}").write_text(text, encoding="utf-8")
        size += len(text)
    return size


def measure(folder: Path, workers: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(workers)], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=1800, env=env)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000x3000", help="comma-separated PODSxPOLICIES")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="JSON files instead of YAML")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    fmt = "json" if args.json else "yaml"
    print("command:", " ".join([Path(sys.executable).name, "-m", "benchmarks.bench_loader",
                                *(argv if argv is not None else sys.argv[1:])]))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    for size in args.sizes.split(","):
        pods, policies = (int(x) for x in size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            chars = write_files(pods, policies, args.files, fmt, folder)
            runs: dict[str, list[float]] = {"one process": [], "workers": []}
            digests = set()
            for _ in range(args.repeat):  # alternated, so drift hits both alike
                for label, workers in (("one process", 1), ("workers", 0)):
                    r = measure(folder, workers)
                    runs[label].append(r["seconds"])
                    digests.add(r["digest"])
            same = "same cluster" if len(digests) == 1 else "DIFFERENT CLUSTERS"
            one, par = (statistics.median(runs[k]) for k in ("one process", "workers"))
            print(f"{size}, {args.files} {fmt} files, {chars / 1e6:.0f} MB: one process "
                  f"{min(runs['one process']):.2f} / {one:.2f} s, workers "
                  f"{min(runs['workers']):.2f} / {par:.2f} s (min / median of {args.repeat}); "
                  f"speed-up {one / par:.2f}x; {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
