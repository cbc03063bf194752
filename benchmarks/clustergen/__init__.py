"""A deterministic generator of realistic Kubernetes clusters, for the benchmarks.

The output looks like `kubectl get -A -o yaml` of a multi-team cluster:

- namespaces `<team>-<env>` (labels `team`, `env`) plus the system namespaces kube-system,
  monitoring and ingress-nginx;
- Deployments (with their ReplicaSets), StatefulSets and DaemonSets, their replicas expanded
  into Pod objects with ownerReferences (so the loader counts every pod once), sharing the
  labels `app`, `tier`, `version` and `track` and carrying the per-pod labels the controllers
  add (`pod-template-hash`, `statefulset.kubernetes.io/pod-name`, ...); Services per app;
- pod IPs from a /16 per namespace (hostNetwork DaemonSet pods use their node's IP, from
  192.168.0.0/16), named container ports (http, grpc, metrics, amqp, dns, statsd) and numeric
  ones (5432, 6379, 6060, ...);
- per namespace a default-deny policy (ingress and egress), an egress DNS policy to kube-dns in
  kube-system on 53/UDP and 53/TCP and a Prometheus scrape policy, then allow policies between
  tiers: podSelector and namespaceSelector peers, matchExpressions, named ports, endPort ranges,
  UDP, and ipBlock peers with `except`.

Sizes scale with the pod count: about 0.8 * sqrt(pods) user namespaces (25 for 1,000 pods, 80
for 10,000), so pods per namespace and policies per namespace both grow with the cluster. The
pod and policy counts are exact. The same arguments always give the same bytes.

The modules, from the bottom up:

- `model`: constants, the tier catalogue and the records (App, Namespace, Node, Summary);
- `objects`: builders for selectors, peers, ports, rules and NetworkPolicy objects;
- `layout`: nodes, namespaces and the apps in them, before any API object exists;
- `workloads`: Namespace, Node, workload, ReplicaSet, Pod and Service objects;
- `policies` and `app_policies`: the NetworkPolicies, system and per namespace, and per app;
- `cluster`: `ClusterGenerator` and `generate`, which call the others in a fixed order;
- `output`: `render` to YAML or JSON and `write` to a file.

The command line is `python -m benchmarks.generate`.
"""

from benchmarks.clustergen.cluster import ClusterGenerator, generate
from benchmarks.clustergen.model import Summary, apportion
from benchmarks.clustergen.output import render, write

__all__ = ["ClusterGenerator", "Summary", "apportion", "generate", "render", "write"]
