"""Which NetworkPolicies the cluster gets, and how many: exactly the number asked for.

The system namespaces come first with their fixed policies (kube-dns, Prometheus, the statsd
exporter, the ingress controller). The rest of the budget is shared among the user namespaces
in proportion to their pods; each takes the head of an endless, most-important-first stream:
default-deny (ingress and egress), DNS egress to kube-dns, the Prometheus scrape, then per-app
policies from `app_policies` in rotating rounds, then pairwise "allow from <other app>" rules
and numbered endPort variants. Policies only refer to labels and names set by `layout`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from benchmarks.clustergen.app_policies import AppPolicies
from benchmarks.clustergen.model import NAME_LABEL, NODE_NETWORK, App, Namespace, Obj, apportion
from benchmarks.clustergen.objects import (
    ip_peer,
    network_policy,
    ns_peer,
    pods_peer,
    port,
    rule,
    selector,
)


class PolicyWriter:
    def __init__(
        self, rng: random.Random, system: list[Namespace], user: list[Namespace], teams: list[str]
    ) -> None:
        self.rng = rng
        self.system = system
        self.user = user
        self.per_app = AppPolicies(rng, teams, str(system[1].network))

    def policies(self, count: int) -> dict[str, list[Obj]]:
        """Exactly `count` policies: the system ones first, the rest spread over the user
        namespaces in proportion to their pods."""
        out: dict[str, list[Obj]] = {ns.name: [] for ns in self.system + self.user}
        system = self._system_policies()
        budget = count
        for ns_name, pols in system.items():
            take = pols[:budget]
            out[ns_name] = take
            budget -= len(take)
        weights = [sum(a.replicas + a.canary for a in ns.apps) for ns in self.user]
        for ns, quota in zip(self.user, apportion(budget, weights), strict=True):
            out[ns.name] = list(itertools.islice(self._namespace_policies(ns), quota))
        return out

    def _system_policies(self) -> dict[str, list[Obj]]:
        monitoring_ns = selector({NAME_LABEL: "monitoring"})
        prometheus = selector({"app": "prometheus"})
        kube = [
            network_policy(
                "kube-system",
                "kube-dns",
                selector({"k8s-app": "kube-dns"}),
                ["Ingress"],
                ingress=[
                    rule([ns_peer({})], [port(53, "UDP"), port(53, "TCP")], "ingress"),
                    rule([ns_peer(monitoring_ns, prometheus)], [port("metrics")], "ingress"),
                ],
            ),
        ]
        mon = [
            network_policy(
                "monitoring",
                "prometheus",
                prometheus,
                ["Ingress", "Egress"],
                ingress=[rule([pods_peer(selector({"app": "grafana"}))], [port("web")], "ingress")],
                egress=[
                    rule([ns_peer({})], [port("metrics")], "egress"),
                    rule([ip_peer(str(NODE_NETWORK))], [port(9100), port(10250)], "egress"),
                    rule(
                        [
                            ns_peer(
                                selector({NAME_LABEL: "kube-system"}),
                                selector({"k8s-app": "kube-dns"}),
                            )
                        ],
                        [port(53, "UDP"), port(53, "TCP")],
                        "egress",
                    ),
                ],
            ),
            network_policy(
                "monitoring",
                "statsd-exporter",
                selector({"app": "statsd-exporter"}),
                ["Ingress"],
                ingress=[
                    rule(
                        [ns_peer(selector(exprs=[("env", "Exists", [])]))],
                        [port("statsd", "UDP")],
                        "ingress",
                    ),
                    rule([pods_peer(prometheus)], [port("metrics")], "ingress"),
                ],
            ),
        ]
        controller = selector({"app.kubernetes.io/name": "ingress-nginx"})
        ing = [
            network_policy(
                "ingress-nginx",
                "controller",
                controller,
                ["Ingress", "Egress"],
                ingress=[
                    rule([ip_peer("0.0.0.0/0")], [port("http"), port("https")], "ingress"),
                    rule([ns_peer(monitoring_ns, prometheus)], [port("metrics")], "ingress"),
                ],
                egress=[
                    rule(
                        [
                            ns_peer(
                                selector(exprs=[("env", "In", ["prod", "staging"])]),
                                selector({"tier": "frontend"}),
                            )
                        ],
                        [port("http")],
                        "egress",
                    )
                ],
            ),
        ]
        return {"kube-system": kube, "monitoring": mon, "ingress-nginx": ing}

    def _namespace_policies(self, ns: Namespace) -> Iterator[Obj]:
        """An endless stream of policies for a user namespace, most important first."""
        name = ns.name
        yield network_policy(name, "default-deny-all", {}, ["Ingress", "Egress"])
        yield network_policy(
            name,
            "allow-dns-egress",
            {},
            ["Egress"],
            egress=[
                rule(
                    [
                        ns_peer(
                            selector({NAME_LABEL: "kube-system"}), selector({"k8s-app": "kube-dns"})
                        )
                    ],
                    [port(53, "UDP"), port(53, "TCP")],
                    "egress",
                )
            ],
        )
        yield network_policy(
            name,
            "allow-prometheus-scrape",
            selector(exprs=[("app", "Exists", [])]),
            ["Ingress"],
            ingress=[
                rule(
                    [
                        ns_peer(
                            selector({NAME_LABEL: "monitoring"}), selector({"app": "prometheus"})
                        )
                    ],
                    [port("metrics")],
                    "ingress",
                )
            ],
        )
        if not ns.apps:  # an empty namespace: nothing to allow, only more of the same
            for k in itertools.count():
                yield network_policy(name, f"deny-ingress-{k}", {}, ["Ingress"])
        for round_ in itertools.count():
            for i, app in enumerate(ns.apps):
                policy = self._app_policy(ns, app, i, round_)
                if policy is not None:
                    yield policy

    def _app_policy(self, ns: Namespace, app: App, index: int, round_: int) -> Obj | None:
        me = selector({"app": app.name})
        n, tier = ns.name, app.tier
        if round_ < 3:  # rotate so that a partial quota still gets every kind of policy
            kind = (index + round_) % 3
            if kind == 0:
                return self.per_app.ingress(ns, app, me)
            if kind == 1:
                return self.per_app.egress(ns, app, me)
            return self.per_app.extra(ns, app, me)
        # Further rounds: pairwise "allow from <other app>" rules, then numbered variants.
        others = [a for a in ns.apps if a is not app]
        k = round_ - 3
        if others and k < len(others):
            other = others[(index + k) % len(others)]
            name, number, proto = self.rng.choice(app.ports) if app.ports else (None, 80, "TCP")
            return network_policy(
                n,
                f"{app.name}-from-{other.name}",
                me,
                ["Ingress"],
                ingress=[
                    rule(
                        [pods_peer(selector({"app": other.name}))],
                        [port(name or number, proto)],
                        "ingress",
                    )
                ],
            )
        lo = 8000 + self.rng.randrange(0, 900, 10)
        return network_policy(
            n,
            f"{app.name}-extra-{k}",
            me,
            ["Ingress"],
            ingress=[
                rule(
                    [pods_peer(selector(exprs=[("tier", "NotIn", [tier])]))],
                    [port(lo, "TCP", lo + 9)],
                    "ingress",
                )
            ],
        )
