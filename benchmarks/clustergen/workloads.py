"""The API objects of a `Layout`: Namespaces, Nodes, workloads, their pods and Services.

`Workloads` expands each `App` the way the controllers would: a Deployment with its ReplicaSet
and pods `<rs>-<hash>`, a StatefulSet with pods `<name>-<i>`, a DaemonSet with one pod per node,
plus a `-canary` Deployment when the app has one, and a ClusterIP Service for every app that is
not a DaemonSet. Pods carry ownerReferences, the controllers' per-pod labels, container ports
(named and numeric) and an IP from their namespace's subnet (their node's IP with hostNetwork).
It shares the cluster's random stream with `layout` and `policies`, so `cluster` must call it
in a fixed order for the output to stay the same for the same seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

from benchmarks.clustergen.model import (
    HASH_CHARS,
    NAME_LABEL,
    PART_OF,
    TIERS,
    App,
    Namespace,
    Node,
    Obj,
)


class Workloads:
    def __init__(self, rng: random.Random, nodes: list[Node]) -> None:
        self.rng = rng
        self.nodes = nodes
        self.pod_names: set[tuple[str, str]] = set()

    # -- names and ids -----------------------------------------------------------------------

    def _hash(self, n: int) -> str:
        return "".join(self.rng.choice(HASH_CHARS) for _ in range(n))

    def _unique_name(self, ns: str, prefix: str) -> str:
        while True:
            name = f"{prefix}-{self._hash(5)}"
            if (ns, name) not in self.pod_names:
                self.pod_names.add((ns, name))
                return name

    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # -- cluster-scoped objects --------------------------------------------------------------

    def namespace_object(self, ns: Namespace) -> Obj:
        meta = {
            "name": ns.name,
            "uid": self._uid(),
            "labels": ns.labels | {NAME_LABEL: ns.name},
        }
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": meta,
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def node_object(self, node: Node) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "uid": self._uid(),
                "labels": {"kubernetes.io/hostname": node.name},
            },
            "status": {"addresses": [{"type": "InternalIP", "address": node.ip}]},
        }

    # -- pods --------------------------------------------------------------------------------

    def _pod_spec(self, app: App, node: Node | None) -> Obj:
        container: Obj = {
            "name": app.name.split("-canary")[0],
            "image": app.image,
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"memory": "512Mi"},
            },
        }
        if app.ports:
            container["ports"] = [
                {**({"name": name} if name else {}), "containerPort": number, "protocol": proto}
                for name, number, proto in app.ports
            ]
            container["readinessProbe"] = {
                "tcpSocket": {"port": app.ports[0][1]},
                "periodSeconds": 10,
            }
        containers = [container]
        if app.tier in ("frontend", "backend", "worker"):
            containers.append(
                {
                    "name": "log-shipper",
                    "image": "fluent/fluent-bit:3.0",
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                }
            )
        spec: Obj = {
            "containers": containers,
            "restartPolicy": "Always",
            "serviceAccountName": app.name,
            "terminationGracePeriodSeconds": 30,
        }
        if app.host_network:
            spec["hostNetwork"] = True
            spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if node is not None:
            spec["nodeName"] = node.name
        return spec

    def _meta(
        self,
        ns: str,
        name: str,
        labels: dict[str, str] | None = None,
        owner: tuple[str, str, str, str] | None = None,
    ) -> Obj:
        meta: Obj = {
            "name": name,
            "namespace": ns,
            "uid": self._uid(),
            "creationTimestamp": "2024-03-01T12:00:00Z",
        }
        if labels:
            meta["labels"] = dict(labels)
        if owner is not None:
            api, kind, oname, uid = owner
            meta["ownerReferences"] = [
                {
                    "apiVersion": api,
                    "kind": kind,
                    "name": oname,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        return meta

    def _pod(
        self,
        ns: Namespace,
        app: App,
        name: str,
        labels: dict[str, str],
        owner: tuple[str, str, str, str],
        node: Node,
    ) -> Obj:
        ip = node.ip if app.host_network else ns.next_ip()
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self._meta(ns.name, name, labels, owner),
            "spec": self._pod_spec(app, node),
            "status": {
                "phase": "Running",
                "hostIP": node.ip,
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "qosClass": "Burstable",
                "startTime": "2024-03-01T12:00:05Z",
            },
        }

    def _node(self) -> Node:
        return self.rng.choice(self.nodes)

    # -- workloads ---------------------------------------------------------------------------

    def objects(self, ns: Namespace) -> Iterator[Obj]:
        for app in ns.apps:
            variants = [(app, "stable", "v1")]
            if app.canary:
                canary = App(
                    f"{app.name}-canary", app.tier, app.kind, 1, app.ports, app.image, app.labels
                )
                variants.append((canary, "canary", "v2"))
            for variant, track, version in variants:
                yield from self._workload(ns, variant, app.labels, track, version)
            if app.kind != "DaemonSet":
                yield self._service(ns, app)

    def _workload(
        self, ns: Namespace, app: App, base_labels: dict[str, str], track: str, version: str
    ) -> Iterator[Obj]:
        labels = dict(base_labels)
        if app.tier in TIERS:
            labels |= {"version": version, "track": track}
        select = {k: v for k, v in labels.items() if k != PART_OF}
        api = "apps/v1"
        meta = self._meta(ns.name, app.name, labels)
        uid = meta["uid"]
        template_spec = self._pod_spec(app, None)
        replicas = app.replicas
        workload: Obj = {
            "apiVersion": api,
            "kind": app.kind,
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": select},
                "template": {"metadata": {"labels": labels}, "spec": template_spec},
            },
        }
        if app.kind != "DaemonSet":
            workload["spec"]["replicas"] = replicas
        workload["status"] = {"replicas": replicas, "readyReplicas": replicas}
        yield workload
        if app.kind == "Deployment":
            pth = self._hash(10)
            rs_labels = labels | {"pod-template-hash": pth}
            rs_meta = self._meta(
                ns.name, f"{app.name}-{pth}", rs_labels, (api, "Deployment", app.name, uid)
            )
            yield {
                "apiVersion": api,
                "kind": "ReplicaSet",
                "metadata": rs_meta,
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": select | {"pod-template-hash": pth}},
                    "template": {"metadata": {"labels": rs_labels}, "spec": template_spec},
                },
                "status": {"replicas": replicas},
            }
            owner = (api, "ReplicaSet", rs_meta["name"], rs_meta["uid"])
            for _ in range(replicas):
                name = self._unique_name(ns.name, rs_meta["name"])
                yield self._pod(ns, app, name, rs_labels, owner, self._node())
        elif app.kind == "StatefulSet":
            rev = f"{app.name}-{self._hash(10)}"
            for i in range(replicas):
                name = f"{app.name}-{i}"
                pod_labels = labels | {
                    "controller-revision-hash": rev,
                    "statefulset.kubernetes.io/pod-name": name,
                }
                yield self._pod(
                    ns, app, name, pod_labels, (api, "StatefulSet", app.name, uid), self._node()
                )
        else:  # DaemonSet: one pod per node
            rev = self._hash(10)
            pod_labels = labels | {"controller-revision-hash": rev, "pod-template-generation": "1"}
            for node in self.nodes[:replicas]:
                yield self._pod(
                    ns,
                    app,
                    self._unique_name(ns.name, app.name),
                    pod_labels,
                    (api, "DaemonSet", app.name, uid),
                    node,
                )

    def _service(self, ns: Namespace, app: App) -> Obj:
        select = {k: v for k, v in app.labels.items() if k != PART_OF}
        ports = [
            {
                "name": name or f"{proto.lower()}-{number}",
                "port": number,
                "targetPort": name or number,
                "protocol": proto,
            }
            for name, number, proto in app.ports
        ]
        spec: Obj = {"type": "ClusterIP", "selector": select}
        if ports:
            spec["ports"] = ports
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._meta(ns.name, app.name, app.labels),
            "spec": spec,
        }
