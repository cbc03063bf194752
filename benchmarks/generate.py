"""A deterministic generator of realistic clusters, for the benchmarks.

This is the command line; the generator itself is the package `benchmarks.clustergen`, whose
docstring describes what the clusters look like. `write`, `render` and `generate` are
re-exported here for `benchmarks.bench_analyzer` and other callers.

    python -m benchmarks.generate --pods 1000 --policies 300 --seed 1 --out cluster.yaml
    python -m benchmarks.generate --pods 300 --policies 90 --seed 1 --out cluster.json --json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clustergen import (
    ClusterGenerator,
    Summary,
    apportion,
    generate,
    render,
    write,
)

__all__ = ["ClusterGenerator", "Summary", "apportion", "generate", "main", "render", "write"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pods", type=int, default=1000, help="pods (exact; default 1000)")
    ap.add_argument("--policies", type=int, default=300, help="NetworkPolicies (exact)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="-", help="output file, `-` for stdout (default)")
    ap.add_argument(
        "--json",
        action="store_true",
        help="write one JSON `kind: List` instead of multi-document YAML",
    )
    args = ap.parse_args(argv)
    fmt = "json" if args.json else "yaml"
    try:
        docs, summary = generate(args.pods, args.policies, args.seed)
    except ValueError as exc:
        ap.error(str(exc))
    text = render(docs, fmt)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.kinds.items()))
    print(
        f"{summary.namespaces} namespaces, {summary.nodes} nodes, {summary.documents} objects "
        f"({kinds}), {len(text) / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
