"""The shape of the cluster before any API object exists: nodes, namespaces and their apps.

`plan` decides how many nodes and user namespaces a cluster of a given pod count has, gives each
namespace its own pod subnet, places the fixed system apps (CoreDNS, kube-proxy, Prometheus,
ingress-nginx, ...) and then fills the user namespaces `<team>-<env>` with apps drawn from
`model.TIERS` until their share of the pod budget is spent. The result, a `Layout`, is what
`workloads` expands into objects and what `policies` writes rules for.
"""

from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass

from benchmarks.clustergen.model import (
    ENV_WEIGHT,
    ENVS,
    FIRST_TIERS,
    NODE_NETWORK,
    PART_OF,
    POD_NETWORK,
    PODS_PER_NODE,
    TEAM_NAMES,
    TIERS,
    App,
    Namespace,
    Node,
    apportion,
)


@dataclass
class Layout:
    nodes: list[Node]
    system: list[Namespace]  # kube-system, monitoring, ingress-nginx, in this order
    user: list[Namespace]
    teams: list[str]  # the user namespaces' teams, sorted


def plan(pods: int, rng: random.Random) -> Layout:
    """The nodes and namespaces of a cluster of exactly `pods` pods."""
    n_nodes = max(3, math.ceil(pods / PODS_PER_NODE))
    nodes = [
        Node(f"node-{i:04d}", str(NODE_NETWORK.network_address + 10 + i)) for i in range(n_nodes)
    ]
    n_user = max(2, round(0.8 * math.sqrt(pods)))
    system = system_namespaces(pods, len(nodes))
    user = user_namespaces(pods, n_user, system, rng)
    teams = sorted({ns.team for ns in user})
    return Layout(nodes, system, user, teams)


def subnet(index: int, total: int) -> ipaddress.IPv4Network:
    prefix = 16 if total <= 255 else 8 + math.ceil(math.log2(total + 1))
    start = int(POD_NETWORK.network_address) + (index + 1) * 2 ** (32 - prefix)
    return ipaddress.IPv4Network((start, prefix))


def system_namespaces(n: int, n_nodes: int) -> list[Namespace]:
    total = max(2, round(0.8 * math.sqrt(n))) + 3
    specs = [
        ("kube-system", {}),
        ("monitoring", {"team": "platform", "env": "prod"}),
        ("ingress-nginx", {"team": "platform", "env": "prod"}),
    ]
    out = [
        Namespace(name, "platform", "prod", labels, subnet(i, total))
        for i, (name, labels) in enumerate(specs)
    ]
    kube, mon, ing = out
    daemons = n >= 4 * n_nodes + 20  # tiny clusters skip the per-node daemons
    kube.apps.append(
        App(
            "coredns",
            "dns",
            "Deployment",
            2 + n // 2500,
            (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")),
            "registry.k8s.io/coredns/coredns:v1.11.1",
            {"k8s-app": "kube-dns"},
        )
    )
    if daemons:
        kube.apps.append(
            App(
                "kube-proxy",
                "node",
                "DaemonSet",
                n_nodes,
                (),
                "registry.k8s.io/kube-proxy:v1.29.2",
                {"k8s-app": "kube-proxy"},
                host_network=True,
            )
        )
        mon.apps.append(
            App(
                "node-exporter",
                "node",
                "DaemonSet",
                n_nodes,
                (("metrics", 9100, "TCP"),),
                "quay.io/prometheus/node-exporter",
                {"app": "node-exporter"},
                host_network=True,
            )
        )
    mon.apps.append(
        App(
            "prometheus",
            "monitoring",
            "StatefulSet",
            2,
            (("web", 9090, "TCP"),),
            "quay.io/prometheus/prometheus:v2.51.0",
            {"app": "prometheus"},
        )
    )
    mon.apps.append(
        App(
            "grafana",
            "monitoring",
            "Deployment",
            1,
            (("http", 3000, "TCP"),),
            "grafana/grafana:10.4.0",
            {"app": "grafana"},
        )
    )
    mon.apps.append(
        App(
            "statsd-exporter",
            "monitoring",
            "Deployment",
            1,
            (("statsd", 9125, "UDP"), ("metrics", 9102, "TCP")),
            "prom/statsd-exporter:v0.26.0",
            {"app": "statsd-exporter"},
        )
    )
    ing.apps.append(
        App(
            "ingress-nginx-controller",
            "edge",
            "Deployment",
            2 + n // 2000,
            (("http", 80, "TCP"), ("https", 443, "TCP"), ("metrics", 10254, "TCP")),
            "registry.k8s.io/ingress-nginx/controller:v1.10.0",
            {"app.kubernetes.io/name": "ingress-nginx"},
        )
    )
    return out


def user_namespaces(
    n_pods: int, count: int, system: list[Namespace], rng: random.Random
) -> list[Namespace]:
    offset = len(system)
    total = count + offset
    out = []
    for i in range(count):
        t, env = divmod(i, len(ENVS))
        team = TEAM_NAMES[t % len(TEAM_NAMES)]
        if t >= len(TEAM_NAMES):
            team += str(t // len(TEAM_NAMES) + 1)
        labels = {"team": team, "env": ENVS[env]}
        out.append(
            Namespace(f"{team}-{ENVS[env]}", team, ENVS[env], labels, subnet(offset + i, total))
        )
    budget = n_pods - sum(a.replicas + a.canary for ns in system for a in ns.apps)
    weights = [ENV_WEIGHT[ns.env] for ns in out]
    for ns, pods in zip(out, apportion(budget, weights), strict=True):
        fill(ns, pods, rng)
    return out


def fill(ns: Namespace, pods: int, rng: random.Random) -> None:
    """Add apps to `ns` until they have exactly `pods` pods (canaries included)."""
    used: dict[str, int] = {}
    tiers = list(TIERS)
    weights = [TIERS[t].weight for t in tiers]
    while pods > 0:
        k = len(ns.apps)
        tier_name = FIRST_TIERS[k] if k < len(FIRST_TIERS) else rng.choices(tiers, weights)[0]
        tier = TIERS[tier_name]
        replicas = min(pods, rng.randint(*tier.replicas))
        base = rng.choice(tier.names)
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}-{used[base]}"
        canary = (
            tier.kind == "Deployment"
            and tier_name in ("frontend", "backend")
            and replicas >= 2
            and rng.random() < 0.25
        )
        if canary:
            replicas -= 1
        labels = {"app": name, "tier": tier_name, PART_OF: ns.team}
        ns.apps.append(
            App(
                name,
                tier_name,
                tier.kind,
                replicas,
                tier.ports,
                tier.image,
                labels,
                canary=canary,
            )
        )
        pods -= replicas + canary
