"""The agent's Prometheus metrics, in a registry of its own (so several agents can live in one
process, as in the tests), served on /metrics by `health`.

Enforcement latency (`kubefence_agent_enforcement_latency_seconds`) runs from an object's
change to the nftables commit that realizes it. The change time is the newest of the object's
`metadata.managedFields[*].time` and `metadata.creationTimestamp` (for a deletion:
`metadata.deletionTimestamp`), which the API server writes at the change; these have a
resolution of one second, so the figure is an upper bound, at most one second high. When the
object carries no such time, or one later than the event's arrival or more than
`STALE_SECONDS` before it (clocks apart, or an old object seen again), the arrival of the
watch event stands in. `kubefence_agent_event_to_commit_seconds` is the agent's own share,
exact: from the watch event's arrival to the commit. Objects seen by a (re)list count in
neither: when they changed is not known.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

STALE_SECONDS = 600.0
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sync_seconds = Histogram(
            "kubefence_agent_sync_duration_seconds",
            "Time to analyse, compile and commit one sync, by kind (full or delta)",
            ["kind"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
        self.syncs = Counter("kubefence_agent_syncs_total",
                             "Syncs committed, by kind (full, delta, none)", ["kind"],
                             registry=r)
        self.sync_failures = Counter(
            "kubefence_agent_sync_failures_total",
            "Syncs that did not commit, by reason (input, compile, dataplane); the last good "
            "ruleset stays in force", ["reason"], registry=r)
        self.pod_netns_failures = Counter(
            "kubefence_agent_pod_netns_failures_total",
            "Pods' own namespaces (--pod-netns-prefix) whose table the kernel refused",
            registry=r)
        self.elements = Gauge("kubefence_agent_programmed_elements",
                              "Set elements of the ruleset in force", registry=r)
        self.pods = Gauge("kubefence_agent_programmed_pods",
                          "Pods of this node with rules in the ruleset in force", registry=r)
        self.latency = Histogram(
            "kubefence_agent_enforcement_latency_seconds",
            "From an object's change (its newest managedFields time or creationTimestamp, "
            "1 s resolution; else the watch event's arrival) to the commit realizing it",
            registry=r, buckets=_LATENCY_BUCKETS)
        self.agent_latency = Histogram(
            "kubefence_agent_event_to_commit_seconds",
            "From a watch event's arrival to the commit realizing it", registry=r,
            buckets=_LATENCY_BUCKETS)
        self.events = Counter("kubefence_agent_watch_events_total",
                              "Watch events received, by resource and type",
                              ["resource", "type"], registry=r)
        self.relists = Counter("kubefence_agent_relists_total",
                               "Lists of a resource, by reason (start, gone, error)",
                               ["resource", "reason"], registry=r)
        self.watch_errors = Counter("kubefence_agent_watch_errors_total",
                                    "Lists or watches that failed and were retried",
                                    ["resource"], registry=r)
        for kind in ("full", "delta"):  # every series exists from the start, at 0
            self.sync_seconds.labels(kind)
        for kind in ("full", "delta", "none"):
            self.syncs.labels(kind)
        for reason in ("input", "compile", "dataplane"):
            self.sync_failures.labels(reason)
        self.ready = Gauge("kubefence_agent_ready",
                           "1 once the first full sync has committed", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
