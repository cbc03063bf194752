"""The lab node: a stand-in for the kubelet of one lab node, through the official client.

It registers its Node (podCIDR, capacity, addresses, Ready=True), renews its Lease in
`kube-node-lease` every 10 s (and posts Ready=True again whenever the node lifecycle controller
has marked it otherwise), and lists-then-watches the pods bound to it (`spec.nodeName`, from the
last resourceVersion; a relist on 410 Gone or any broken watch). For a new pod it makes the
pod's namespace and veth into the node namespace (`lab.topology.add_pod`), gives it the lowest
free address of the node's podCIDR, serves its TCP and UDP containerPorts (`lab.servers`; SCTP
only where the kernel has it, as the lab's prober does), and writes status through the status
subresource: Running, podIP(s), hostIP, the four conditions True and ready container statuses.
A pod that is deleted (DELETED, or a deletionTimestamp: then, as a kubelet finalizes it, the
object is deleted with grace 0 once cleaned up) loses its namespace and frees its address.

It runs as two threads of the process that holds the lab (the API server is on the root
namespace's 127.0.0.1); the pod namespaces are entered with `ip netns exec` and setns.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config, watch

from lab.netns import LabError
from lab.servers import Servers
from lab.topology import LabNode, add_pod, remove_pod
from policy.ports import Protocol

log = logging.getLogger("kubefence.lab.kubelet")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_EVERY = 10.0
LEASE_DURATION = 40
STATUS_EVERY = 300.0  # a kubelet posts its status on change or every 5 minutes
WATCH_SECONDS = 3  # how long one watch request lasts: bounds how soon close() is noticed
RESOURCES = {"cpu": "4", "memory": "8Gi", "pods": "110"}
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


def now(micro: bool = False) -> str:
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def pod_netns_prefix(prefix: str) -> str:
    """What a pod's namespace is named by, before its uid (the agents' `--pod-netns-prefix`)."""
    return f"{prefix}pod-"


def pod_netns(prefix: str, uid: str) -> tuple[str, str]:
    """A pod's namespace (named by its uid, which the agents find it by) and the name of its
    veth on the node side (at most 15 characters)."""
    digest = hashlib.sha256(uid.encode()).hexdigest()
    return f"{pod_netns_prefix(prefix)}{uid}", f"v{digest[:12]}"


def pod_cidr(index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.244.{index}.0/24")


@dataclass
class Addresses:
    """The node's podCIDR, handed out lowest free first (.0 and .1 kept back)."""

    cidr: ipaddress.IPv4Network
    used: set[ipaddress.IPv4Address] = field(default_factory=set)

    def take(self) -> ipaddress.IPv4Address:
        for ip in self.cidr.hosts():
            if int(ip) - int(self.cidr.network_address) >= 2 and ip not in self.used:
                self.used.add(ip)
                return ip
        raise RuntimeError(f"no free address left in {self.cidr}")

    def free(self, ip: ipaddress.IPv4Address) -> None:
        self.used.discard(ip)


@dataclass
class LabPodRun:
    uid: str
    key: str
    netns: str
    veth: str
    ip: ipaddress.IPv4Address
    servers: Servers
    skipped: list[str]


def _json(resp: Any) -> Any:
    return json.loads(resp.data)


class Kubelet:
    """One lab node's kubelet stand-in; `register()` then `start()`, and `close()` always."""

    def __init__(self, node: LabNode, index: int, kubeconfig: str, prefix: str) -> None:
        self.node = node
        self.name = node.name
        self.prefix = prefix
        self.addresses = Addresses(pod_cidr(index))
        self.pods: dict[str, LabPodRun] = {}
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.last_renew = ""

    # --- the node and its heartbeat

    def register(self) -> None:
        try:
            self._register()
        except client.ApiException as exc:
            raise LabError(f"could not register lab node {self.name}: {exc.status} "
                           f"{exc.reason}") from exc

    def _register(self) -> None:
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name,
                         "labels": {"kubernetes.io/hostname": self.name,
                                    "kubernetes.io/os": "linux",
                                    "kubefence.io/lab-netns": self.node.netns}},
            "spec": {"podCIDR": str(self.addresses.cidr),
                     "podCIDRs": [str(self.addresses.cidr)]},
        }
        self.core.create_node(body=body, _preload_content=False)
        self.post_ready()
        lease = {"metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
                 "spec": {"holderIdentity": self.name,
                          "leaseDurationSeconds": LEASE_DURATION}}
        self.coordination.create_namespaced_lease(LEASE_NAMESPACE, body=lease,
                                                  _preload_content=False)
        self.renew()

    def post_ready(self) -> None:
        stamp = now()
        self.core.patch_node_status(self.name, body={"status": {
            "capacity": RESOURCES, "allocatable": RESOURCES,
            "addresses": [{"type": "InternalIP", "address": str(self.node.uplink4)},
                          {"type": "Hostname", "address": self.name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubefence lab node is posting ready status",
                            "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
        }}, _content_type=STRATEGIC, _preload_content=False)

    def renew(self) -> None:
        stamp = now(micro=True)
        self.coordination.patch_namespaced_lease(
            self.name, LEASE_NAMESPACE, body={"spec": {"renewTime": stamp,
                                                       "holderIdentity": self.name}},
            _content_type=MERGE, _preload_content=False)
        self.last_renew = stamp

    def ready(self) -> bool:
        node = _json(self.core.read_node(self.name, _preload_content=False))
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in node.get("status", {}).get("conditions", []))

    def _heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self._stop.wait(LEASE_EVERY):
            try:
                self.renew()
                if not self.ready() or time.monotonic() - last_status > STATUS_EVERY:
                    self.post_ready()
                    last_status = time.monotonic()
            except Exception as exc:  # the next beat tries again
                log.warning("%s: heartbeat: %s", self.name, exc)

    # --- pods

    def start(self) -> None:
        for target, name in ((self._heartbeat, "lease"), (self._pods_loop, "pods")):
            thread = threading.Thread(target=target, name=f"{self.name}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pods_loop(self) -> None:
        selector = f"spec.nodeName={self.name}"
        while not self._stop.is_set():
            try:
                listed = _json(self.core.list_pod_for_all_namespaces(
                    field_selector=selector, _preload_content=False, _request_timeout=30))
                self._relisted(listed["items"])
                version = listed["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    w = watch.Watch()
                    for event in w.stream(self.core.list_pod_for_all_namespaces,
                                          field_selector=selector, resource_version=version,
                                          allow_watch_bookmarks=True,
                                          timeout_seconds=WATCH_SECONDS,
                                          _request_timeout=WATCH_SECONDS + 10):
                        obj = event["raw_object"]
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] == "DELETED":
                            self._gone(obj["metadata"]["uid"])
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            self._seen(obj)
                        if self._stop.is_set():
                            w.stop()
            except client.ApiException as exc:
                if exc.status != 410:
                    log.warning("%s: watch: %s", self.name, exc)
                    self._stop.wait(1)
            except Exception as exc:  # a broken connection: relist
                log.warning("%s: watch: %s", self.name, exc)
                self._stop.wait(1)

    def _relisted(self, items: list[dict[str, Any]]) -> None:
        present = {item["metadata"]["uid"] for item in items}
        for uid in list(self.pods):
            if uid not in present:
                self._gone(uid)
        for item in items:
            self._seen(item)

    def _seen(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            self._gone(uid)
            try:
                self.core.delete_namespaced_pod(
                    meta["name"], meta["namespace"],
                    body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
                    _preload_content=False)
            except client.ApiException as exc:
                if exc.status not in (404, 409):
                    log.warning("%s: finalizing %s/%s: %s", self.name, meta["namespace"],
                                meta["name"], exc)
            return
        status = pod.get("status", {})
        if uid in self.pods:
            if not status.get("podIP"):  # our status was lost (or is not seen yet): again
                self._post_quietly(pod, self.pods[uid])
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if pod["spec"].get("hostNetwork"):
            # The node's own network: no namespace of its own, the node's address.
            self._post_quietly(pod, None)
            return
        try:
            run = self._start_pod(pod)
        except Exception as exc:
            log.warning("%s: starting %s/%s: %s", self.name, meta["namespace"], meta["name"],
                        exc)
            return
        self._post_quietly(pod, run)

    def _post_quietly(self, pod: dict[str, Any], run: LabPodRun | None) -> None:
        try:
            self._post_running(pod, run)
        except Exception as exc:  # the next event without a podIP tries again
            meta = pod["metadata"]
            log.warning("%s: status of %s/%s: %s", self.name, meta["namespace"],
                        meta["name"], exc)

    def _start_pod(self, pod: dict[str, Any]) -> LabPodRun:
        meta = pod["metadata"]
        uid = meta["uid"]
        netns, veth = pod_netns(self.prefix, uid)
        key = f"{meta['namespace']}/{meta['name']}"
        with self._lock:
            ip = self.addresses.take()
        servers = Servers()
        run = LabPodRun(uid, key, netns, veth, ip, servers, [])
        try:
            add_pod(self.node, netns, veth, [ip])
            served: set[tuple[Protocol, int]] = set()
            for container in pod["spec"].get("containers", []):
                for port in container.get("ports") or []:
                    served.add((Protocol(port.get("protocol", "TCP")), port["containerPort"]))
            for protocol, number in sorted(served, key=lambda s: (s[1], s[0].value)):
                if not servers.listen(netns, protocol, number, ipv6=False):
                    run.skipped.append(f"{number}/{protocol.value}")
            if run.skipped:
                log.info("%s: %s: not served (no SCTP sockets in this kernel): %s",
                         self.name, key, ", ".join(run.skipped))
            servers.start()
        except BaseException:
            self._cleanup(run)
            raise
        self.pods[uid] = run
        return run

    def _post_running(self, pod: dict[str, Any], run: LabPodRun | None) -> None:
        """Running and ready; `run` None: a hostNetwork pod, with the node's address."""
        stamp = now()
        conditions = [{"type": t, "status": "True", "lastTransitionTime": stamp}
                      for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                "ContainersReady", "PodScheduled")]
        uid = pod["metadata"]["uid"]
        ip = str(run.ip if run is not None else self.node.uplink4)
        statuses = []
        for container in pod["spec"].get("containers", []):
            cid = hashlib.sha256(f"{uid}/{container['name']}".encode()).hexdigest()
            statuses.append({
                "name": container["name"], "image": container.get("image", ""),
                "imageID": "", "containerID": f"kubefence://{cid}", "ready": True,
                "started": True, "restartCount": 0,
                "state": {"running": {"startedAt": stamp}},
            })
        body = {"status": {
            "phase": "Running", "hostIP": str(self.node.uplink4),
            "hostIPs": [{"ip": str(self.node.uplink4)}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": stamp,
            "conditions": conditions, "containerStatuses": statuses,
        }}
        meta = pod["metadata"]
        self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], body=body,
                                              _content_type=STRATEGIC, _preload_content=False)

    def _gone(self, uid: str) -> None:
        run = self.pods.pop(uid, None)
        if run is not None:
            self._cleanup(run)

    def _cleanup(self, run: LabPodRun) -> None:
        run.servers.close()  # the sockets hold the namespace: closed first
        remove_pod(self.node, run.netns, run.veth)
        with self._lock:
            self.addresses.free(run.ip)

    def stop(self) -> None:
        """Ask both threads to stop (the pods thread notices within WATCH_SECONDS)."""
        self._stop.set()

    def close(self) -> None:
        """Stop both threads and remove every pod namespace of this node (not the API
        objects: the control plane goes away with the lab)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WATCH_SECONDS + 15)
        for uid in list(self.pods):
            self._gone(uid)
        self.api.close()
