"""The vocabulary of a generated cluster: constants, the tier catalogue and the plain records.

Everything else in `benchmarks.clustergen` speaks in these terms: `layout` fills `Namespace`
records with `App`s drawn from `TIERS`, `workloads` turns them into API objects, `policies` and
`app_policies` write NetworkPolicies against their labels, and `cluster` counts the result into a
`Summary`. Nothing here draws random numbers; `apportion` is the one shared piece of arithmetic.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

ENVS = ("prod", "staging", "dev")
ENV_WEIGHT = {"prod": 3, "staging": 2, "dev": 1}
TEAM_NAMES = (
    "payments",
    "checkout",
    "search",
    "catalog",
    "identity",
    "billing",
    "shipping",
    "reviews",
    "ads",
    "analytics",
    "notify",
    "media",
    "pricing",
    "inventory",
    "support",
    "growth",
)
HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"
POD_NETWORK = ipaddress.IPv4Network("10.0.0.0/8")
NODE_NETWORK = ipaddress.IPv4Network("192.168.0.0/16")
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
PODS_PER_NODE = 30  # the envelope: 150,000 pods on 5,000 nodes
NAME_LABEL = "kubernetes.io/metadata.name"
PART_OF = "app.kubernetes.io/part-of"
MIN_PODS = 40

Port = tuple[str | None, int, str]  # container port: name, number, protocol


@dataclass(frozen=True)
class Tier:
    kind: str
    weight: int
    replicas: tuple[int, int]
    ports: tuple[Port, ...]
    image: str
    names: tuple[str, ...]


TIERS: dict[str, Tier] = {
    "frontend": Tier(
        "Deployment",
        2,
        (2, 6),
        (("http", 8080, "TCP"), ("metrics", 9102, "TCP")),
        "registry.example.com/web",
        ("web", "storefront", "portal", "admin-ui"),
    ),
    "backend": Tier(
        "Deployment",
        4,
        (2, 8),
        (
            ("http", 8080, "TCP"),
            ("grpc", 9090, "TCP"),
            ("metrics", 9102, "TCP"),
            (None, 6060, "TCP"),
        ),
        "registry.example.com/api",
        ("api", "orders", "users", "cart", "ledger", "gateway", "profile"),
    ),
    "worker": Tier(
        "Deployment",
        2,
        (1, 5),
        (("metrics", 9102, "TCP"), (None, 6060, "TCP"), (None, 7946, "TCP"), (None, 7946, "UDP")),
        "registry.example.com/worker",
        ("jobs", "mailer", "indexer", "exporter"),
    ),
    "cache": Tier(
        "StatefulSet",
        1,
        (1, 3),
        ((None, 6379, "TCP"), (None, 16379, "TCP"), ("metrics", 9121, "TCP")),
        "redis:7.2",
        ("redis",),
    ),
    "db": Tier(
        "StatefulSet",
        1,
        (1, 3),
        ((None, 5432, "TCP"), ("metrics", 9187, "TCP")),
        "postgres:16",
        ("postgres",),
    ),
    "queue": Tier(
        "StatefulSet",
        1,
        (3, 3),
        (
            ("amqp", 5672, "TCP"),
            (None, 25672, "TCP"),
            (None, 4369, "TCP"),
            ("metrics", 15692, "TCP"),
        ),
        "rabbitmq:3.13",
        ("rabbitmq",),
    ),
}
FIRST_TIERS = ("frontend", "backend", "db")  # every namespace has these, in this order


@dataclass
class App:
    name: str
    tier: str
    kind: str
    replicas: int
    ports: tuple[Port, ...]
    image: str
    labels: dict[str, str]
    host_network: bool = False
    canary: bool = False  # a second Deployment `<name>-canary` with one replica


@dataclass
class Namespace:
    name: str
    team: str
    env: str
    labels: dict[str, str]
    network: ipaddress.IPv4Network
    apps: list[App] = field(default_factory=list)
    next_host: int = 10

    def next_ip(self) -> str:
        self.next_host += 1
        return str(self.network.network_address + self.next_host)


@dataclass(frozen=True)
class Node:
    name: str
    ip: str


@dataclass
class Summary:
    namespaces: int = 0
    nodes: int = 0
    pods: int = 0
    policies: int = 0
    documents: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def apportion(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainders; exact sum)."""
    if not weights:
        return []
    wsum = sum(weights) or len(weights)
    ws = weights if sum(weights) else [1] * len(weights)
    exact = [total * w / wsum for w in ws]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(ws)), key=lambda i: (out[i] - exact[i], i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out
