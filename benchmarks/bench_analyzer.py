"""Benchmark of the analyzer core: load + Analysis + the full matrix, per cluster size.

For each size the input is generated (not timed) by `benchmarks.generate` into a temporary
folder. Every measurement then runs in a fresh Python subprocess, which times, with
`time.perf_counter`:

- import:  importing numpy, pydantic, yaml and `policy` (reported, not part of total);
- load:    `policy.loader.load([file])` -> ClusterState;
- analyse: `policy.engine.Analysis(cluster)`;
- matrix:  a full pass over the matrix, `Analysis.block` over every row block of `--block`
           sources, counting the allowed (non-empty) cells, so every cell is really computed;
- total:   load + analyse + matrix;

and reports its peak RSS (VmHWM from /proc/self/status) after each phase. The parent also
reports the wall time of the whole subprocess (interpreter start-up and imports included).
With `--repeat K` each size is measured K times and the table shows min and median.

    python -m benchmarks.bench_analyzer                       # 1000x300 and 10000x3000
    python -m benchmarks.bench_analyzer --sizes 1000x300 --repeat 5
    python -m benchmarks.bench_analyzer --sizes 10000x3000 --profile /tmp/prof

`--profile DIR` adds one cProfile run per size (not in the table), writes DIR/<size>.prof and
prints the functions with the most cumulative and own time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

DEFAULT_SIZES = "1000x300,10000x3000"
TARGETS: dict[tuple[int, int], float] = {  # seconds, total (issue 5)
    (1000, 300): 0.5, (10000, 3000): 5.0, (150000, 100000): 60.0,
}
PHASES = ("import", "load", "analyse", "matrix", "total")


@dataclass(frozen=True)
class Size:
    pods: int
    policies: int

    @property
    def label(self) -> str:
        return f"{self.pods}x{self.policies}"

    @classmethod
    def parse(cls, text: str) -> Size:
        pods, sep, policies = text.strip().lower().partition("x")
        if not sep or not pods.isdigit() or not policies.isdigit():
            raise argparse.ArgumentTypeError(f"bad size {text!r}: expected PODSxPOLICIES")
        return cls(int(pods), int(policies))


@dataclass
class Sample:
    """One child run: phase seconds, peak RSS (MiB) after each phase, and what was computed."""

    seconds: dict[str, float]
    rss_mib: dict[str, float]
    process_s: float
    facts: dict[str, Any]  # counts, latencies, and the per-change re-analysis times


@dataclass
class Result:
    size: Size
    input_mb: float
    samples: list[Sample] = field(default_factory=list)

    def times(self, phase: str) -> list[float]:
        return [s.seconds[phase] for s in self.samples]

    def stat(self, values: list[float]) -> tuple[float, float]:
        return min(values), statistics.median(values)


# -- the child: one measurement ----------------------------------------------------------------


def vmhwm_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux /proc: ru_maxrss is KiB on Linux, bytes on macOS

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_child(path: str, block: int, profile_out: str | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    import numpy as np
    import numpy.typing as npt

    from policy.engine import Analysis
    from policy.loader import load

    t_import = time.perf_counter()
    rss: dict[str, float] = {"import": vmhwm_mib()}

    def matrix_pass(a: Analysis) -> int:
        """Allowed (non-empty) endpoint cells of the whole matrix, computed class by class:
        every class cell once, weighted by the endpoints of both classes (expanding to pods is
        output work); external x external is not a cell."""
        classes = a.classes
        count, pod_classes = classes.count, classes.n_pod_classes
        sizes = classes.sizes().astype(np.int64)
        allowed = 0
        for start in range(0, count, block):
            rows = np.arange(start, min(start + block, count), dtype=np.int64)
            nonempty: npt.NDArray[np.bool_] = np.any(a.class_block(rows), axis=2)
            if start + len(rows) > pod_classes:
                nonempty[max(0, pod_classes - start):, pod_classes:] = False
            allowed += int(sizes[rows] @ nonempty.astype(np.int64) @ sizes)
        return allowed

    def change_pass(a: Analysis) -> dict[str, tuple[float, str]]:
        """Seconds of `Analysis.updated` after one policy changes, three ways, and whether it
        was incremental ("" ) or why it was rebuilt."""
        import dataclasses

        policies = a.cluster.policies
        middle = policies[len(policies) // 2]
        variants = {
            "remove one policy": policies[:len(policies) // 2] + policies[len(policies) // 2 + 1:],
            "add one policy (a copy under a new name)":
                (*policies, dataclasses.replace(middle, name=middle.name + "-copy")),
            "drop one rule of one policy": tuple(
                dataclasses.replace(p, ingress=p.ingress[:-1]) if p is middle else p
                for p in policies),
        }
        out = {}
        for name, changed in variants.items():
            c0 = time.perf_counter()
            fresh = a.updated(dataclasses.replace(a.cluster, policies=tuple(changed)))
            out[name] = (time.perf_counter() - c0, fresh.rebuilt or "")
        return out

    def query_pass(a: Analysis, queries: int = 1000) -> tuple[float, float]:
        """Median and worst seconds of one `can` answer (ports allowed between two random
        pods) on the prepared analysis."""
        rng = np.random.default_rng(1)
        pairs = rng.integers(0, a.endpoints.n_pods, size=(queries, 2)).tolist()
        times = []
        for s, d in pairs:
            q0 = time.perf_counter()
            a.allowed(s, d)
            times.append(time.perf_counter() - q0)
        return float(np.median(times)), max(times)

    profiler = None
    if profile_out is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t1 = time.perf_counter()
    cluster = load([path])
    t2 = time.perf_counter()
    rss["load"] = vmhwm_mib()
    analysis = Analysis(cluster)
    t3 = time.perf_counter()
    rss["analyse"] = vmhwm_mib()
    allowed = matrix_pass(analysis)
    t4 = time.perf_counter()
    rss["matrix"] = rss["total"] = vmhwm_mib()
    can_median, can_worst = query_pass(analysis)
    changes = change_pass(analysis)
    if profiler is not None and profile_out is not None:
        profiler.disable()
        profiler.dump_stats(profile_out)
    ep = analysis.endpoints
    return {
        "seconds": {
            "import": t_import - t0,
            "load": t2 - t1,
            "analyse": t3 - t2,
            "matrix": t4 - t3,
            "total": t4 - t1,
        },
        "rss_mib": rss,
        "facts": {
            "pods": ep.n_pods,
            "policies": len(cluster.policies),
            "endpoints": ep.count,
            "externals": ep.count - ep.n_pods,
            "atoms": analysis.atoms.count,
            "words": analysis.atoms.words,
            "ingress_profiles": analysis.ingress.profiles,
            "egress_profiles": analysis.egress.profiles,
            "allowed_cells": allowed,
            "classes": analysis.classes.count,
            "changes": changes,
            "can_median_ms": can_median * 1000,
            "can_worst_ms": can_worst * 1000,
            "warnings": len(cluster.warnings),
        },
    }


# -- the parent --------------------------------------------------------------------------------


def child_command(path: Path, block: int, profile_out: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "benchmarks.bench_analyzer", "--child", str(path)]
    cmd += ["--block", str(block)]
    if profile_out is not None:
        cmd += ["--profile-out", str(profile_out)]
    return cmd


def measure(path: Path, block: int, timeout: float, profile_out: Path | None = None) -> Sample:
    cmd = child_command(path, block, profile_out)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child failed ({proc.returncode}): {shlex.join(cmd)}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return Sample(data["seconds"], data["rss_mib"], wall, data["facts"])


def fmt_pair(values: list[float], fmt: Callable[[float], str]) -> str:
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(min(values))} / {fmt(statistics.median(values))}"


def seconds(x: float) -> str:
    return f"{x:.3f}"


def mib(x: float) -> str:
    return f"{x:.0f}"


def table(results: list[Result], repeat: int) -> str:
    heads = [
        "size",
        "input MB",
        "import s",
        "load s",
        "analyse s",
        "matrix s",
        "total s",
        "process s",
        "peak RSS MiB",
        "target",
    ]
    rows: list[list[str]] = []
    for r in results:
        total_med = statistics.median(r.times("total"))
        target = TARGETS.get((r.size.pods, r.size.policies))
        verdict = (
            "-"
            if target is None
            else (f"{'ok' if total_med < target else 'MISSED'} (<{target:g} s)")
        )
        rows.append(
            [
                r.size.label,
                f"{r.input_mb:.1f}",
                *(fmt_pair(r.times(p), seconds) for p in PHASES),
                fmt_pair([s.process_s for s in r.samples], seconds),
                fmt_pair([s.rss_mib["total"] for s in r.samples], mib),
                verdict,
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    if repeat > 1:
        lines.append(f"(min / median of {repeat} runs; target compares the median total)")
    return "\n".join(lines)


def details(results: list[Result]) -> str:
    lines = []
    for r in results:
        f = r.samples[0].facts
        rss = r.samples[0].rss_mib
        lines.append(
            f"{r.size.label}: {f['pods']} pods, {f['policies']} policies, {f['endpoints']} "
            f"endpoints ({f['externals']} external), {f['atoms']} port atoms in {f['words']} "
            f"word(s), {f['classes']} peer classes, {f['ingress_profiles']} ingress / "
            f"{f['egress_profiles']} egress profiles, {f['allowed_cells']:,} allowed cells, "
            f"{f['warnings']} warnings; one `can` answer {f['can_median_ms']:.3f} ms median, "
            f"{f['can_worst_ms']:.3f} ms worst of 1000; re-analysis after one policy change: "
            + ", ".join(f"{k} {s:.3f} s" + (f" (rebuilt: {why})" if why else "")
                        for k, (s, why) in f["changes"].items())
            + "; peak RSS after "
            + ", ".join(f"{p} {rss[p]:.0f}" for p in ("import", "load", "analyse", "matrix"))
            + " MiB"
        )
    return "\n".join(lines)


def environment() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        rev = ""
    import numpy

    return (
        f"python {platform.python_version()}, numpy {numpy.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}, "
        f"git {rev or 'unknown'}"
    )


def print_profile(prof: Path, top: int) -> None:
    import pstats

    for key in ("cumulative", "tottime"):
        print(f"\n--- {prof.name}: top {top} by {key} ---")
        stats = pstats.Stats(str(prof), stream=sys.stdout)
        stats.strip_dirs().sort_stats(key).print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Time load + Analysis + full matrix on generated clusters.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    ap.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated PODSxPOLICIES (default {DEFAULT_SIZES})",
    )
    ap.add_argument("--repeat", type=int, default=1, help="measurements per size (default 1)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--block", type=int, default=256, help="source rows per block (256)")
    ap.add_argument(
        "--json-input",
        action="store_true",
        help="generate one JSON List instead of multi-document YAML",
    )
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR and keep the inputs")
    ap.add_argument("--timeout", type=float, default=900, help="per child, seconds (900)")
    ap.add_argument(
        "--profile", metavar="DIR", help="also run each size once under cProfile, stats into DIR"
    )
    ap.add_argument("--top", type=int, default=30, help="functions shown per profile (30)")
    ap.add_argument("--json-out", metavar="FILE", help="write the raw samples as JSON")
    ap.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child is not None:
        print(json.dumps(run_child(args.child, args.block, args.profile_out)))
        return 0
    if args.repeat < 1 or args.block < 1:
        ap.error("--repeat and --block must be at least 1")
    sizes = [Size.parse(s) for s in args.sizes.split(",") if s.strip()]
    from benchmarks.generate import write  # here: the child should not pay for yaml early

    argv_list = list(sys.argv[1:] if argv is None else argv)
    print("command: " + shlex.join([sys.executable, "-m", "benchmarks.bench_analyzer", *argv_list]))
    print("environment: " + environment())

    with tempfile.TemporaryDirectory(prefix="kubefence-bench-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results: list[Result] = []
        for size in sizes:
            suffix = "json" if args.json_input else "yaml"
            path = folder / f"cluster-{size.label}-seed{args.seed}.{suffix}"
            t = time.perf_counter()
            summary = write(
                size.pods, size.policies, args.seed, path, "json" if args.json_input else "yaml"
            )
            mb = path.stat().st_size / 1e6
            print(
                f"generated {path.name}: {summary.documents} objects, {mb:.1f} MB "
                f"in {time.perf_counter() - t:.1f} s (not timed)"
            )
            print("  child: " + shlex.join(child_command(path, args.block)))
            result = Result(size, mb)
            for i in range(args.repeat):
                sample = measure(path, args.block, args.timeout)
                result.samples.append(sample)
                print(
                    f"  run {i + 1}/{args.repeat}: total {sample.seconds['total']:.3f} s, "
                    f"peak RSS {sample.rss_mib['total']:.0f} MiB",
                    flush=True,
                )
            results.append(result)
            if args.profile:
                pdir = Path(args.profile)
                pdir.mkdir(parents=True, exist_ok=True)
                prof = pdir / f"{size.label}.prof"
                measure(path, args.block, args.timeout, prof)
                print_profile(prof, args.top)

    print()
    print(table(results, args.repeat))
    print(details(results))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                [
                    {
                        "size": r.size.label,
                        "input_mb": r.input_mb,
                        "samples": [s.__dict__ for s in r.samples],
                    }
                    for r in results
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
