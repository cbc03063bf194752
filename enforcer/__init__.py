"""The enforcer: compiles the policy engine's answers into per-pod nftables sets for one node
(`compiler` -> `ruleset` -> `render`), and applies them atomically (`dataplane`, the only module
that imports the nftables bindings; `sync` keeps the committed state and computes deltas).
It stands on `policy/` and never imports `analyzer/`."""
