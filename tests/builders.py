"""Small builders for test clusters: plain dicts shaped like the API objects."""

from __future__ import annotations

from typing import Any

import yaml

from analyzer.resolve import resolve
from policy.engine import Analysis
from policy.loader import load_texts
from policy.ports import Protocol

Obj = dict[str, Any]


def namespace(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels)}}


def pod(ns: str, name: str, labels: dict[str, str] | None = None,
        ports: list[tuple[str | None, int, str]] | None = None, ip: str | None = None,
        host_network: bool = False, host_ip: str | None = None,
        ips: list[str] | None = None) -> Obj:
    containers = [{"name": "c", "image": "x", "ports": [
        {**({"name": n} if n else {}), "containerPort": p, "protocol": proto}
        for n, p, proto in (ports or [])]}]
    status: Obj = {"phase": "Running"}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": i} for i in (ips or [ip])]
    if host_ip:
        status["hostIP"] = host_ip
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"containers": containers, "hostNetwork": host_network},
            "status": status}


def netpol(ns: str, name: str, spec: Obj) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def to_yaml(objects: list[Obj]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def analyze(objects: list[Obj]) -> Analysis:
    return Analysis(load_texts([("test.yaml", to_yaml(objects), False)]))


def allowed(analysis: Analysis, src: str, dst: str, port: int, proto: str = "TCP") -> bool:
    s, d = resolve(analysis, src).index, resolve(analysis, dst).index
    return analysis.allowed(s, d).contains(Protocol(proto), port)
