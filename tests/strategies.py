"""Hypothesis strategies for small random clusters: namespaces, pods and NetworkPolicies as the
plain dicts a YAML file parses to.

Vocabularies are tiny so that selectors, ports and address blocks collide often. Everything
generated is valid for the API server (In/NotIn with values, Exists/DoesNotExist without,
endPort only after a numeric port and not below it, excepts strictly inside their cidr, port
names unique within a pod), so the loader must accept every example.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml
from hypothesis import strategies as st

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Obj = dict[str, Any]

NAME_LABEL = "kubernetes.io/metadata.name"
NAMESPACES = ("default", "alpha", "beta")
POD_LABEL_KEYS = ("app", "tier")
SELECTOR_KEYS = ("app", "tier", "env")  # no pod has `env`: absent keys get exercised
LABEL_VALUES = ("a", "a", "b", "")
NAMESPACE_LABEL_KEYS = ("team", "env")
PORT_NUMBERS = (53, 80, 81, 443, 8080)
POLICY_PORT_NUMBERS = (*PORT_NUMBERS, 1, 65535)
PORT_NAMES = ("http", "dns", "web")
POLICY_PORT_NAMES = (*PORT_NAMES, "nope")  # `nope` is never defined: it matches nothing
PROTOCOLS = (None, None, "TCP", "UDP", "SCTP")  # None: field absent, defaulted to TCP
POD_NET = ipaddress.IPv4Address("10.0.0.0")  # pod IPs are 10.0.0.0 - 10.0.0.15
POD_NET6 = ipaddress.IPv6Address("fd00::")  # and fd00::1 - fd00::10 on dual-stack pods
NODE_IPS = ("10.0.1.1", "10.0.1.2")  # hostIPs
ADDRESS_WINDOW = 512  # ipBlocks are carved from 10.0.0.0/23 (and fd00::/119)


@st.composite
def selectors(draw: st.DrawFn, keys: tuple[str, ...] = SELECTOR_KEYS,
              values: tuple[str, ...] = LABEL_VALUES) -> Obj:
    """A valid LabelSelector of at most two requirements (so that it often matches something):
    `{}`, or matchLabels and/or matchExpressions, either of them sometimes present but empty."""
    match_labels: dict[str, str] = {}
    expressions: list[Obj] = []
    for _ in range(draw(st.sampled_from((0, 1, 1, 1, 2)))):
        key = draw(st.sampled_from(keys))
        kind = draw(st.sampled_from(("label", "In", "NotIn", "NotIn", "Exists", "DoesNotExist")))
        if kind == "label":
            match_labels[key] = draw(st.sampled_from(values))
        elif kind in ("In", "NotIn"):
            expressions.append({"key": key, "operator": kind, "values": draw(
                st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))})
        else:
            expressions.append({"key": key, "operator": kind})
    selector: Obj = {}
    if match_labels or draw(st.integers(0, 5)) == 0:
        selector["matchLabels"] = match_labels
    if expressions or draw(st.integers(0, 5)) == 0:
        selector["matchExpressions"] = expressions
    return selector


def namespace_selectors() -> st.SearchStrategy[Obj]:
    by_name = selectors((NAME_LABEL,), (*NAMESPACES, "gamma"))
    return st.one_of(selectors(NAMESPACE_LABEL_KEYS, ("a", "b")), by_name)


def _address_near(draw: st.DrawFn, net: IPNetwork, targets: tuple[str, ...]) -> IPAddress:
    """An address of `net`: mostly one of the `targets` inside it (pod and node IPs), else any
    address of the part of it near the pods."""
    inside = [a for a in map(ipaddress.ip_address, targets) if a in net]
    if inside and draw(st.integers(0, 3)) != 0:
        return draw(st.sampled_from(inside))
    base = POD_NET if net.version == 4 else POD_NET6
    lo = max(int(net.network_address), int(base))
    hi = min(int(net.broadcast_address), int(base) + ADDRESS_WINDOW - 1)
    if lo > hi:
        lo, hi = int(net.network_address), int(net.broadcast_address)
    return ipaddress.ip_address(draw(st.integers(lo, hi)))


@st.composite
def ip_blocks(draw: st.DrawFn, targets: tuple[str, ...] = ()) -> Obj:
    """cidr (host bits often set) and up to two excepts strictly inside it, aimed mostly at the
    `targets` addresses (the cluster's pod and node IPs) so that they do match pods."""
    version = draw(st.sampled_from((4, 4, 4, 6)))
    bits = 32 if version == 4 else 128
    window = ipaddress.ip_network("10.0.0.0/23" if version == 4 else "fd00::/119")
    if draw(st.integers(0, 7)) == 0:
        prefix = 0  # the whole space of the family (0.0.0.0/0 or ::/0)
    else:
        prefix = bits - draw(st.sampled_from((0, 1, 2, 3, 4, 6, 8, 9, 10)))
    address = _address_near(draw, window, targets)
    net = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    block: Obj = {"cidr": f"{address}/{prefix}"}  # the host bits of `address` are kept
    excepts = []
    if prefix < bits:
        for _ in range(draw(st.integers(0, 2))):
            except_prefix = bits - draw(st.integers(0, min(bits - prefix - 1, 4)))
            excepts.append(f"{_address_near(draw, net, targets)}/{except_prefix}")
    if excepts:
        block["except"] = excepts
    return block


def peers(targets: tuple[str, ...] = ()) -> st.SearchStrategy[Obj]:
    return st.one_of(
        st.builds(lambda s: {"podSelector": s}, selectors()),
        st.builds(lambda s: {"namespaceSelector": s}, namespace_selectors()),
        st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n},
                  selectors(), namespace_selectors()),
        st.builds(lambda b: {"ipBlock": b}, ip_blocks(targets)),
    )


@st.composite
def policy_ports(draw: st.DrawFn, named: bool = False) -> Obj:
    """A NetworkPolicyPort; `named` makes every port a named one."""
    port: Obj = {}
    protocol = draw(st.sampled_from(PROTOCOLS))
    if protocol is not None:
        port["protocol"] = protocol
    shape = "named" if named else draw(st.sampled_from(
        ("absent", "number", "number", "range", "range", "named", "named")))
    if shape == "named":
        port["port"] = draw(st.sampled_from(POLICY_PORT_NAMES))
    elif shape in ("number", "range"):
        number = draw(st.sampled_from(POLICY_PORT_NUMBERS))
        port["port"] = number
        if shape == "range":
            ends = sorted({e for e in (number, number + 1, 81, 443, 8080, 65535)
                           if number <= e <= 65535})
            port["endPort"] = draw(st.sampled_from(ends))
    return port


def _maybe_list(items: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[Any]:
    """A list, or None meaning `leave the field out` (absent and empty mean the same); mostly
    a non-empty list, so that rules restrict something."""
    shape = st.sampled_from(("absent", "empty", *["items"] * 6))
    return shape.flatmap(lambda s: st.none() if s == "absent" else st.lists(
        items, min_size=0 if s == "empty" else 1, max_size=0 if s == "empty" else max_size))


@st.composite
def rules(draw: st.DrawFn, peers_field: str, targets: tuple[str, ...] = (),
          named: bool = False) -> Obj:
    rule: Obj = {}
    peer_list = draw(_maybe_list(peers(targets), 2))
    if peer_list is not None:
        rule[peers_field] = peer_list
    port_list = draw(_maybe_list(policy_ports(named), 2))
    if port_list is not None:
        rule["ports"] = port_list
    return rule


def _metadata(name: str, namespace: str, omit_default: bool) -> Obj:
    """metadata; an object of `default` sometimes leaves its namespace out."""
    if namespace == "default" and omit_default:
        return {"name": name}
    return {"name": name, "namespace": namespace}


@st.composite
def network_policies(draw: st.DrawFn, name: str, namespaces: list[str],
                     empty_policy_types: bool = True, targets: tuple[str, ...] = (),
                     named: bool = False) -> Obj:
    namespace = draw(st.sampled_from(namespaces))
    spec: Obj = {"podSelector": draw(selectors())}
    type_choices: list[list[str] | None] = [None, None, ["Ingress"], ["Egress"],
                                            ["Ingress", "Egress"], ["Egress", "Ingress"]]
    if empty_policy_types:
        type_choices.append([])
    types = draw(st.sampled_from(type_choices))
    if types is not None:
        spec["policyTypes"] = types
    ingress = draw(_maybe_list(rules("from", targets, named), 2))
    if ingress is not None:
        spec["ingress"] = ingress
    egress = draw(_maybe_list(rules("to", targets, named), 2))
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, namespace, draw(st.booleans())),
        "spec": spec,
    }


@st.composite
def containers(draw: st.DrawFn, name: str, port_names: list[str], named: bool = False) -> Obj:
    """A container; its named ports take names off `port_names` (shared by the whole pod).
    `named` names every port while names last."""
    ports = []
    for _ in range(draw(st.integers(0, 3))):
        port: Obj = {"containerPort": draw(st.sampled_from(PORT_NUMBERS))}
        protocol = draw(st.sampled_from(PROTOCOLS))
        if protocol is not None:
            port["protocol"] = protocol
        if port_names and (named or draw(st.integers(0, 2)) != 0):
            port["name"] = port_names.pop()
        ports.append(port)
    container: Obj = {"name": name, "image": "example"}
    if ports:
        container["ports"] = ports
    return container


@st.composite
def pods(draw: st.DrawFn, name: str, namespace: str, ip_index: int, named: bool = False) -> Obj:
    port_names = list(draw(st.permutations(PORT_NAMES)))
    spec: Obj = {"containers": [draw(containers(f"c{i}", port_names, named))
                                for i in range(draw(st.integers(1, 2)))]}
    if draw(st.integers(0, 5)) == 0:
        sidecar = draw(containers("init", port_names, named))
        if draw(st.booleans()):
            sidecar["restartPolicy"] = "Always"
        spec["initContainers"] = [sidecar]
    status: Obj = {}
    host_ip = draw(st.one_of(st.none(), st.sampled_from(NODE_IPS)))
    if draw(st.integers(0, 5)) == 0:
        spec["hostNetwork"] = True
        host_ip = draw(st.sampled_from(NODE_IPS))
        status["hostIP"] = host_ip
        if draw(st.booleans()):
            status["podIP"] = host_ip  # what the kubelet reports for a hostNetwork pod
    else:
        if host_ip is not None:
            status["hostIP"] = host_ip  # every scheduled pod has one; ipBlocks must ignore it
        if draw(st.integers(0, 5)) != 0:
            v4, v6 = str(POD_NET + ip_index), str(POD_NET6 + ip_index + 1)
            stack = draw(st.sampled_from(("v4", "v4", "v4", "v4,v6", "v6,v4")))
            ips = {"v4": [v4], "v4,v6": [v4, v6], "v6,v4": [v6, v4]}[stack]
            status["podIP"] = ips[0]
            if len(ips) > 1:  # dual-stack: ipBlocks match the primary address only
                status["podIPs"] = [{"ip": ip} for ip in ips]
    metadata = _metadata(name, namespace, draw(st.booleans()))
    labels = draw(st.dictionaries(st.sampled_from(POD_LABEL_KEYS), st.sampled_from(LABEL_VALUES),
                                  max_size=2))
    if labels or draw(st.booleans()):
        metadata["labels"] = labels
    pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    if status:
        pod["status"] = status
    return pod


@st.composite
def namespace_objects(draw: st.DrawFn, name: str) -> Obj:
    labels = draw(st.dictionaries(st.sampled_from(NAMESPACE_LABEL_KEYS),
                                  st.sampled_from(("a", "b")), max_size=2))
    if draw(st.integers(0, 9)) == 0:
        labels[NAME_LABEL] = "bogus"  # the API server overwrites it with the name
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


@st.composite
def clusters(draw: st.DrawFn, max_pods: int = 6, max_policies: int = 4,
             empty_policy_types: bool = True, named_ports: bool = False) -> list[Obj]:
    """Namespaces (some only implied by their pods), pods, then policies, as API objects.

    `empty_policy_types` also generates `policyTypes: []` (the API server defaults it like an
    absent field); `named_ports` makes every policy port and every container port named."""
    n_namespaces = draw(st.sampled_from((1, 2, 2, 3, 3)))
    namespaces = draw(st.lists(st.sampled_from(NAMESPACES), min_size=n_namespaces,
                               max_size=n_namespaces, unique=True))
    objects: list[Obj] = []
    for ns in namespaces:
        if draw(st.integers(0, 3)) != 0:
            objects.append(draw(namespace_objects(ns)))
    n_pods = draw(st.integers(1, max_pods))
    ip_indexes = draw(st.lists(st.integers(0, 15), min_size=n_pods, max_size=n_pods, unique=True))
    pod_objects = [draw(pods(f"p{i}", draw(st.sampled_from(namespaces)), ip_index, named_ports))
                   for i, ip_index in enumerate(ip_indexes)]
    objects += pod_objects
    # ipBlocks aim at the addresses there are: pod IPs (both families) and node IPs.
    targets = {*NODE_IPS}
    for pod in pod_objects:
        status = pod.get("status") or {}
        targets.update(ip["ip"] for ip in status.get("podIPs") or [])
        targets.update(status[k] for k in ("podIP", "hostIP") if k in status)
    n_policies = 0
    if max_policies and draw(st.integers(0, 9)) != 0:  # mostly at least one policy
        n_policies = draw(st.integers(1, max_policies))
    for i in range(n_policies):
        objects.append(draw(network_policies(f"np{i}", namespaces, empty_policy_types,
                                             tuple(sorted(targets)), named_ports)))
    return objects


def to_yaml(objects: list[Obj]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def mentioned_ports(objects: list[Obj]) -> set[int]:
    """Every port number a policy or a container port mentions (endPorts included)."""
    out: set[int] = set()
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "Pod":
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                out.update(p["containerPort"] for p in c.get("ports") or [])
        elif obj["kind"] == "NetworkPolicy":
            for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
                for port in rule.get("ports") or []:
                    for field in ("port", "endPort"):
                        if isinstance(port.get(field), int):
                            out.add(port[field])
    return out
