"""Small builders for the pieces of a NetworkPolicy: selectors, peers, ports, rules, the policy.

Pure functions of their arguments (no randomness, no cluster state), used by `policies` and
`app_policies`. Optional fields are left out rather than set to null, so the output reads like
what `kubectl get -o yaml` returns; a peer or port list given as None is omitted, an empty one
is kept (it means "nothing" in one case and "everything" in the other).
"""

from __future__ import annotations

from benchmarks.clustergen.model import Obj


def selector(
    labels: dict[str, str] | None = None, exprs: list[tuple[str, str, list[str]]] | None = None
) -> Obj:
    out: Obj = {}
    if labels:
        out["matchLabels"] = dict(labels)
    if exprs:
        out["matchExpressions"] = [
            {"key": k, "operator": op, **({"values": vals} if vals else {})}
            for k, op, vals in exprs
        ]
    return out


def pods_peer(sel: Obj) -> Obj:
    return {"podSelector": sel}


def ns_peer(ns_sel: Obj, pod_sel: Obj | None = None) -> Obj:
    peer: Obj = {"namespaceSelector": ns_sel}
    if pod_sel is not None:
        peer["podSelector"] = pod_sel
    return peer


def ip_peer(cidr: str, excepts: tuple[str, ...] = ()) -> Obj:
    block: Obj = {"cidr": cidr}
    if excepts:
        block["except"] = list(excepts)
    return {"ipBlock": block}


def port(p: int | str | None = None, protocol: str = "TCP", end: int | None = None) -> Obj:
    out: Obj = {"protocol": protocol}
    if p is not None:
        out["port"] = p
    if end is not None:
        out["endPort"] = end
    return out


def network_policy(
    ns: str,
    name: str,
    pod_sel: Obj,
    types: list[str],
    ingress: list[Obj] | None = None,
    egress: list[Obj] | None = None,
) -> Obj:
    spec: Obj = {"podSelector": pod_sel, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": {"managed-by": "kubefence-bench"}},
        "spec": spec,
    }


def rule(peers: list[Obj] | None, ports: list[Obj] | None, direction: str) -> Obj:
    out: Obj = {}
    if peers is not None:
        out["from" if direction == "ingress" else "to"] = peers
    if ports is not None:
        out["ports"] = ports
    return out
