"""Which pods are on which node: `spec.nodeName`, or a round-robin placement for input that has
none (CI manifests, the conformance cases), and what a node's ruleset leaves out.

A pod is local to the node named by its `spec.nodeName`. `assign_round_robin` replaces that with
`node-0`..`node-{n-1}`, in the loaded (namespace/name) order, so the same input always lands the
same way. Of a node's pods the compiler programs only those with an address of their own:
hostNetwork pods and pods without `status.podIPs` (workloads standing for their pods, YAML
from CI) are left out, and `unprogrammed` names them.
"""

from __future__ import annotations

import dataclasses

from enforcer.compiler import local_pods
from policy.cluster import ClusterState, PodInfo
from policy.errors import KubefenceError

_SHOWN = 10  # names listed in a message before "and N more"


def _names(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


class UnknownNodeError(KubefenceError):
    """No pod of the input is on the node asked for."""

    def __init__(self, node: str, known: list[str], hint: str = "") -> None:
        self.node = node
        self.known = known
        if known:
            message = (f"no pod in the input is on node {node!r} (spec.nodeName); "
                       f"nodes in the input: {_names(known)}")
        else:
            message = f"no pod in the input is on node {node!r}: no pod has a spec.nodeName"
            if hint:
                message += f" ({hint})"
        super().__init__(message)


def node_names(cluster: ClusterState) -> list[str]:
    """Every node some pod of the input is on, sorted."""
    return sorted({p.node_name for p in cluster.pods if p.node_name is not None})


def assign_round_robin(cluster: ClusterState, nodes: int,
                       keep_existing: bool = False) -> ClusterState:
    """Every pod placed on `node-{i % nodes}`, i its index in the loaded order; with
    `keep_existing`, a pod whose spec.nodeName already names one of those nodes stays there."""
    if nodes < 1:
        raise ValueError("nodes must be at least 1")
    names = [f"node-{i}" for i in range(nodes)]
    pods = tuple(
        p if keep_existing and p.node_name in names
        else dataclasses.replace(p, node_name=names[i % nodes])
        for i, p in enumerate(cluster.pods)
    )
    return dataclasses.replace(cluster, pods=pods)


def require_node(cluster: ClusterState, node: str, hint: str = "") -> None:
    """Raise `UnknownNodeError` unless some pod is on `node`; `hint` is added to the message
    when no pod has a node at all."""
    known = node_names(cluster)
    if node not in known:
        raise UnknownNodeError(node, known, hint)


def unprogrammed(cluster: ClusterState, node: str) -> list[PodInfo]:
    """The node's pods its ruleset leaves out: hostNetwork, or without an address."""
    programmed = {p.key for p in local_pods(cluster, node)}
    return [p for p in cluster.pods if p.node_name == node and p.key not in programmed]


def unprogrammed_note(cluster: ClusterState, node: str) -> str | None:
    """A one-line note naming the pods `unprogrammed` returns, if any."""
    left_out = [p.key for p in unprogrammed(cluster, node)]
    if not left_out:
        return None
    return (f"left out {len(left_out)} pods of node {node} that have no address of their own "
            f"(hostNetwork, or no status.podIPs): {_names(left_out)}")
