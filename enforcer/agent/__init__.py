"""The node agent: `kubefence agent --node NAME` keeps one node's nftables table in step with
the cluster, as the API server says it is.

`watch` lists and watches pods, namespaces and NetworkPolicies (resourceVersions, bookmarks,
relist on 410 Gone, reconnects with backoff) into `store`; `loop` coalesces changes, compiles
the node's ruleset (`enforcer.compiler`) and applies it with `enforcer.sync.Syncer` (a full
replace at start and periodically, deltas otherwise); `health` serves /healthz, /readyz and
/metrics (`metrics`); `logs` writes JSON lines on stderr; `netns` programs another network
namespace (the lab). `agent` wires them together. Fail closed: the kernel's table is only ever
replaced in one transaction and never removed when the agent stops.

This is the only part of kubefence that talks to an API server. It never imports `lab` or
`analyzer`.
"""

from enforcer.agent.agent import Agent, AgentError, AgentOptions, run
from enforcer.agent.loop import Timing

__all__ = ["Agent", "AgentError", "AgentOptions", "Timing", "run"]
