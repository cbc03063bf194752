"""The whole cluster from (pods, policies, seed): `ClusterGenerator` and `generate`.

This is where the parts meet. `layout.plan` shapes the cluster, then `documents` emits, in
this order, the Namespaces, the Nodes, and per namespace its workloads, pods and Services
(`workloads`) followed by its NetworkPolicies (`policies`). All parts draw from one seeded
`random.Random`, and the order of the calls here is part of the output: the policies are drawn
before any workload object, so reordering them would change the bytes for a given seed.
The pod and policy counts are exact and checked; a `Summary` counts what was emitted.
"""

from __future__ import annotations

import random

from benchmarks.clustergen.layout import plan
from benchmarks.clustergen.model import MIN_PODS, Obj, Summary
from benchmarks.clustergen.policies import PolicyWriter
from benchmarks.clustergen.workloads import Workloads


class ClusterGenerator:
    def __init__(self, pods: int, policies: int, seed: int) -> None:
        if pods < MIN_PODS:
            raise ValueError(f"--pods must be at least {MIN_PODS}")
        if policies < 0:
            raise ValueError("--policies must not be negative")
        self.n_pods = pods
        self.n_policies = policies
        self.rng = random.Random(seed)
        self.summary = Summary()
        layout = plan(pods, self.rng)
        self.nodes = layout.nodes
        self.system = layout.system
        self.user = layout.user
        self.teams = layout.teams
        self.workloads = Workloads(self.rng, self.nodes)
        self.policy_writer = PolicyWriter(self.rng, self.system, self.user, self.teams)

    def policies(self) -> dict[str, list[Obj]]:
        """Exactly n_policies policies by namespace name (see `PolicyWriter.policies`)."""
        return self.policy_writer.policies(self.n_policies)

    def documents(self) -> list[Obj]:
        docs: list[Obj] = []
        for ns in self.system + self.user:
            docs.append(self.workloads.namespace_object(ns))
        for node in self.nodes:
            docs.append(self.workloads.node_object(node))
        policies = self.policies()
        for ns in self.system + self.user:
            docs.extend(self.workloads.objects(ns))
            docs.extend(policies[ns.name])
        s = self.summary
        s.namespaces = len(self.system) + len(self.user)
        s.nodes = len(self.nodes)
        s.documents = len(docs)
        for d in docs:
            s.kinds[d["kind"]] = s.kinds.get(d["kind"], 0) + 1
        s.pods = s.kinds.get("Pod", 0)
        s.policies = s.kinds.get("NetworkPolicy", 0)
        assert s.pods == self.n_pods, (s.pods, self.n_pods)
        assert s.policies == self.n_policies, (s.policies, self.n_policies)
        return docs


def generate(pods: int, policies: int, seed: int) -> tuple[list[Obj], Summary]:
    gen = ClusterGenerator(pods, policies, seed)
    docs = gen.documents()
    return docs, gen.summary
