"""Serialising a generated cluster: multi-document YAML or one JSON `kind: List`.

YAML is written with libyaml's CSafeDumper when available (block style, keys in insertion
order, width 120), JSON with one-space indentation. `write` is what the benchmark driver
`benchmarks.bench_analyzer` calls; the command line in `benchmarks.generate` uses `render`.
This is the only module of `benchmarks.clustergen` that imports yaml.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from benchmarks.clustergen.cluster import generate
from benchmarks.clustergen.model import Obj, Summary


def render(docs: list[Obj], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=1) + "\n"
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump_all(
        docs, Dumper=dumper, sort_keys=False, default_flow_style=False, width=120
    )
    return text


def write(pods: int, policies: int, seed: int, out: Path, fmt: str = "yaml") -> Summary:
    docs, summary = generate(pods, policies, seed)
    out.write_text(render(docs, fmt), encoding="utf-8")
    return summary
