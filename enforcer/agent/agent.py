"""The agent as one object: configuration, dataplane, store, watches, loop and endpoints.

`run(options)` is what `kubefence agent` calls: it starts everything, runs the sync loop in the
calling thread until SIGTERM or SIGINT (or `stopping` is set, for tests), stops the watches and
the endpoints, and returns 0. It never removes the nftables table: while the agent is down or
restarting, the rules last committed stay in force, and the next start replaces them in one
transaction once it has listed every kind (fail closed).
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from types import FrameType

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from enforcer.agent.health import HealthServer, Status
from enforcer.agent.logs import Log
from enforcer.agent.loop import SyncLoop, Timing
from enforcer.agent.metrics import Metrics
from enforcer.agent.netns import dataplane_for
from enforcer.agent.podns import PodNamespaces
from enforcer.agent.store import Store
from enforcer.agent.watch import RESOURCES, Watcher
from enforcer.sync import Syncer
from policy.errors import KubefenceError


class AgentError(KubefenceError):
    """The agent cannot start: no cluster configuration, a port in use, no namespace."""


@dataclass(frozen=True)
class AgentOptions:
    node: str
    kubeconfig: str | None = None  # None: the in-cluster configuration (the DaemonSet)
    netns: str | None = None  # lab only: program this network namespace
    pod_netns_prefix: str | None = None  # lab only: pods' own namespaces are PREFIX<uid>
    health_address: str = "127.0.0.1"
    health_port: int = 9904
    timing: Timing = field(default_factory=Timing)
    watch_timeout: int = 60  # seconds a watch request lasts before it is resumed


def api_client(kubeconfig: str | None) -> client.ApiClient:
    try:
        if kubeconfig:
            cfg = client.Configuration()
            config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        else:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
    except (ConfigException, OSError) as exc:
        where = kubeconfig or "the in-cluster service account"
        raise AgentError(f"cannot configure the API client from {where}: {exc}") from None
    return client.ApiClient(cfg)


class Agent:
    def __init__(self, options: AgentOptions, log: Log | None = None,
                 stopping: threading.Event | None = None) -> None:
        self.options = options
        self.log = log or Log()
        self.stopping = stopping or threading.Event()
        self.metrics = Metrics()
        self.status = Status(stale=max(30.0, 3 * options.timing.resync))
        self.store = Store()
        self.syncer = Syncer(dataplane_for(options.netns))
        self._api = api_client(options.kubeconfig)
        self.watchers = [Watcher(r, self._api, self.store, self.log, self.metrics,
                                 self.stopping, options.watch_timeout) for r in RESOURCES]
        self.loop = SyncLoop(options.node, self.store, self.syncer, self.status, self.metrics,
                             self.log, self.stopping, options.timing,
                             PodNamespaces(options.pod_netns_prefix)
                             if options.pod_netns_prefix else None)
        try:
            self.health = HealthServer(self.status, self.metrics, options.health_address,
                                       options.health_port)
        except OSError as exc:
            raise AgentError(f"cannot serve health endpoints on {options.health_address}:"
                             f"{options.health_port}: {exc.strerror}") from None

    def run(self) -> int:
        o = self.options
        self.health.start()
        self.log.info("start", node=o.node, netns=o.netns, pod_netns_prefix=o.pod_netns_prefix,
                      server=self._api.configuration.host,
                      health=f"http://{self.health.address}:{self.health.port}",
                      resync_seconds=o.timing.resync)
        for w in self.watchers:
            w.start()
        try:
            self.loop.run()
        finally:
            self.stopping.set()
            for w in self.watchers:
                w.stop()
            for w in self.watchers:
                w.thread.join(timeout=5)
            self.health.stop()
            self._api.close()
            self.log.info("stop", node=o.node,
                          kept="the nftables table stays in force until the next start")
        return 0


def run(options: AgentOptions, log: Log | None = None) -> int:
    """`kubefence agent`: run until SIGTERM or SIGINT; 0 on a clean stop."""
    agent = Agent(options, log)

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.log.info("signal", signal=signal.Signals(signum).name)
        agent.stopping.set()
        with agent.store.changed:
            agent.store.changed.notify_all()

    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        return agent.run()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
