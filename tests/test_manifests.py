"""manifests/agent against a real API server (`tests.labcluster`): every object passes the
server's validation and admission (`kubectl apply --dry-run=server`), the DaemonSet has the
shape the agent needs, and the agent's ServiceAccount may read exactly pods, namespaces and
NetworkPolicies (`kubectl auth can-i` against the applied RBAC objects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.labcluster import LabCluster

pytestmark = pytest.mark.privileged  # with the other tests that start the lab control plane

AGENT = REPO / "manifests" / "agent"
SA = "system:serviceaccount:kube-system:kubefence-agent"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_manifests_pass_server_side_dry_run(lab_cluster: LabCluster) -> None:
    # A dry run creates nothing, so the example's namespace must exist for its policies.
    lab_cluster.kubectl("create", "namespace", "demo")
    try:
        out = lab_cluster.kubectl("apply", "--dry-run=server", "-f", str(AGENT))
    finally:
        lab_cluster.kubectl("delete", "namespace", "demo", "--wait=false")
    objects = [d for f in sorted(AGENT.glob("*.yaml")) for d in documents(f)]
    assert out.count("(server dry run)") == len(objects), out
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet",
                 "NetworkPolicy"):
        assert any(o["kind"] == kind for o in objects), kind
    # nothing was created
    assert lab_cluster.kubectl("get", "daemonset", "-n", "kube-system", "kubefence-agent",
                               check=False) == ""


def test_daemonset_shape() -> None:
    (ds,) = documents(AGENT / "daemonset.yaml")
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["serviceAccountName"] == "kubefence-agent"
    assert {"operator": "Exists"} in spec["tolerations"]
    (agent,) = spec["containers"]
    assert agent["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]
    assert set(agent["resources"]["requests"]) == {"cpu", "memory"}
    assert agent["args"][0] == "agent" and "--node=$(NODE_NAME)" in agent["args"]
    port = int(next(a for a in agent["args"] if a.startswith("--health-port=")).split("=")[1])
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}


CAN = [
    ("list", "pods"), ("watch", "pods"), ("get", "pods"),
    ("list", "namespaces"), ("watch", "namespaces"),
    ("list", "networkpolicies.networking.k8s.io"), ("watch", "networkpolicies.networking.k8s.io"),
]
CANNOT = [
    ("get", "secrets"), ("list", "secrets"), ("create", "pods"), ("patch", "pods"),
    ("delete", "pods"), ("update", "pods/status"), ("create", "networkpolicies.networking.k8s.io"),
    ("delete", "namespaces"), ("list", "configmaps"), ("list", "nodes"),
]


def test_agent_rbac_is_read_only_on_its_three_kinds(lab_cluster: LabCluster) -> None:
    rbac = str(AGENT / "rbac.yaml")
    lab_cluster.kubectl("apply", "-f", rbac)
    try:
        def can(verb: str, resource: str) -> str:
            return lab_cluster.kubectl("auth", "can-i", verb, resource, "--all-namespaces",
                                       f"--as={SA}", check=False).strip()

        assert {(v, r): can(v, r) for v, r in CAN} == {(v, r): "yes" for v, r in CAN}
        assert {(v, r): can(v, r) for v, r in CANNOT} == {(v, r): "no" for v, r in CANNOT}
    finally:
        lab_cluster.kubectl("delete", "-f", rbac, "--ignore-not-found")
