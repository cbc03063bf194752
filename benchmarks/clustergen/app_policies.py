"""The allow policies of one app, by tier: its ingress, its egress and one "extra" policy.

`policies.PolicyWriter` asks for them in rotating rounds, one per app per round, so that even a
small quota gives a namespace some of every kind. Between them they use the whole NetworkPolicy
vocabulary: podSelector and namespaceSelector peers, matchExpressions (In, NotIn, Exists),
named and numeric ports, endPort ranges, UDP, and ipBlock peers with and without `except`
(the internet minus private ranges, a per-team partner /24, documentation ranges, the
monitoring namespace's pod subnet).
"""

from __future__ import annotations

import random

from benchmarks.clustergen.model import NAME_LABEL, PRIVATE_NETWORKS, App, Namespace, Obj
from benchmarks.clustergen.objects import (
    ip_peer,
    network_policy,
    ns_peer,
    pods_peer,
    port,
    rule,
    selector,
)


class AppPolicies:
    def __init__(self, rng: random.Random, teams: list[str], monitoring_net: str) -> None:
        self.rng = rng
        self.teams = teams  # every user namespace's team, sorted
        self.monitoring_net = monitoring_net  # the pod subnet of the monitoring namespace

    def other_teams(self, ns: Namespace, k: int) -> list[str]:
        others = [t for t in self.teams if t != ns.team]
        return sorted(self.rng.sample(others, min(k, len(others)))) or [ns.team]

    def ingress(self, ns: Namespace, app: App, me: Obj) -> Obj:
        n, name, tier = ns.name, f"{app.name}-ingress", app.tier
        clients = selector(
            exprs=[("tier", "In", ["backend", "worker"]), ("track", "NotIn", ["canary"])]
        )
        if tier == "frontend":
            return network_policy(
                n,
                name,
                me,
                ["Ingress"],
                ingress=[
                    rule(
                        [
                            ns_peer(
                                selector({NAME_LABEL: "ingress-nginx"}),
                                selector({"app.kubernetes.io/name": "ingress-nginx"}),
                            )
                        ],
                        [port("http")],
                        "ingress",
                    )
                ],
            )
        if tier == "backend":
            return network_policy(
                n,
                name,
                me,
                ["Ingress"],
                ingress=[
                    rule(
                        [
                            pods_peer(
                                selector(exprs=[("tier", "In", ["frontend", "backend", "worker"])])
                            )
                        ],
                        [port("http"), port("grpc")],
                        "ingress",
                    ),
                    rule(
                        [
                            ns_peer(
                                selector(
                                    {"env": ns.env}, [("team", "In", self.other_teams(ns, 2))]
                                ),
                                selector({"tier": "backend"}),
                            )
                        ],
                        [port("grpc")],
                        "ingress",
                    ),
                ],
            )
        if tier == "worker":
            return network_policy(
                n,
                name,
                me,
                ["Ingress"],
                ingress=[rule([pods_peer(me)], [port(7946, "TCP"), port(7946, "UDP")], "ingress")],
            )
        if tier == "cache":
            return network_policy(
                n,
                name,
                me,
                ["Ingress"],
                ingress=[
                    rule([pods_peer(clients)], [port(6379)], "ingress"),
                    rule([pods_peer(me)], [port(16379)], "ingress"),
                ],
            )
        if tier == "db":
            return network_policy(
                n,
                name,
                me,
                ["Ingress"],
                ingress=[rule([pods_peer(clients), pods_peer(me)], [port(5432)], "ingress")],
            )
        return network_policy(
            n,
            name,
            me,
            ["Ingress"],
            ingress=[  # queue
                rule([pods_peer(clients)], [port("amqp")], "ingress"),
                rule(
                    [pods_peer(me)], [port(4369), port(25672), port(35672, "TCP", 35682)], "ingress"
                ),
            ],
        )

    def egress(self, ns: Namespace, app: App, me: Obj) -> Obj:
        n, name, tier = ns.name, f"{app.name}-egress", app.tier
        internet = ip_peer("0.0.0.0/0", PRIVATE_NETWORKS)
        team_index = self.teams.index(ns.team)
        partner = f"172.20.{team_index % 256}.0/24"
        if tier == "frontend":
            return network_policy(
                n,
                name,
                me,
                ["Egress"],
                egress=[
                    rule(
                        [pods_peer(selector({"tier": "backend"}))],
                        [port("http"), port("grpc")],
                        "egress",
                    )
                ],
            )
        if tier == "backend":
            return network_policy(
                n,
                name,
                me,
                ["Egress"],
                egress=[
                    rule(
                        [pods_peer(selector(exprs=[("tier", "In", ["db", "cache", "queue"])]))],
                        [port(5432), port(6379), port("amqp")],
                        "egress",
                    ),
                    rule(
                        [
                            ns_peer(
                                selector(
                                    {"env": ns.env}, [("team", "In", self.other_teams(ns, 2))]
                                ),
                                selector({"tier": "backend"}),
                            )
                        ],
                        [port("grpc")],
                        "egress",
                    ),
                    rule([internet], [port(443, "TCP"), port(443, "UDP")], "egress"),
                ],
            )
        if tier == "worker":
            return network_policy(
                n,
                name,
                me,
                ["Egress"],
                egress=[
                    rule(
                        [pods_peer(selector(exprs=[("tier", "In", ["queue", "db"])]))],
                        [port("amqp"), port(5432)],
                        "egress",
                    ),
                    rule(
                        [ip_peer(partner, (partner.replace(".0/24", ".0/28"),))],
                        [port(3306), port(5432)],
                        "egress",
                    ),
                    rule(
                        [pods_peer(selector({"tier": "backend"}))],
                        [port(8000, "TCP", 8099)],
                        "egress",
                    ),
                    rule([pods_peer(me)], [port(7946, "TCP"), port(7946, "UDP")], "egress"),
                ],
            )
        if tier == "db":
            return network_policy(
                n,
                name,
                me,
                ["Egress"],
                egress=[
                    rule([pods_peer(me)], [port(5432)], "egress"),
                    rule([ip_peer("198.51.100.0/24")], [port(443)], "egress"),
                ],
            )
        if tier == "cache":
            return network_policy(
                n,
                name,
                me,
                ["Egress"],
                egress=[rule([pods_peer(me)], [port(16379), port(6379)], "egress")],
            )
        return network_policy(
            n,
            name,
            me,
            ["Egress"],
            egress=[  # queue
                rule(
                    [pods_peer(me)], [port(4369), port(25672), port(35672, "TCP", 35682)], "egress"
                )
            ],
        )

    def extra(self, ns: Namespace, app: App, me: Obj) -> Obj:
        n, tier = ns.name, app.tier
        if app.canary:
            return network_policy(
                n,
                f"{app.name}-canary",
                selector({"app": app.name, "track": "canary"}),
                ["Ingress"],
                ingress=[
                    rule([pods_peer({})], [port("http")], "ingress"),
                    rule([ns_peer(selector({"env": "dev"}))], None, "ingress"),
                ],
            )
        if tier in ("frontend", "worker"):
            return network_policy(
                n,
                f"{app.name}-statsd",
                me,
                ["Egress"],
                egress=[
                    rule(
                        [
                            ns_peer(
                                selector({NAME_LABEL: "monitoring"}),
                                selector({"app": "statsd-exporter"}),
                            )
                        ],
                        [port("statsd", "UDP")],
                        "egress",
                    )
                ],
            )
        if tier == "backend":
            mon_net = self.monitoring_net
            return network_policy(
                n,
                f"{app.name}-partners",
                me,
                ["Ingress"],
                ingress=[
                    rule(
                        [ip_peer("203.0.113.0/24", ("203.0.113.128/25",))],
                        [port("http")],
                        "ingress",
                    ),
                    rule([ip_peer(mon_net)], [port(6060)], "ingress"),
                ],
            )
        return network_policy(
            n,
            f"{app.name}-ops",
            me,
            ["Ingress"],
            ingress=[
                rule(
                    [
                        ns_peer(
                            selector(exprs=[("team", "In", ["platform"]), ("env", "Exists", [])])
                        )
                    ],
                    None,
                    "ingress",
                )
            ],
        )
