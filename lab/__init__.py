"""The lab: real network namespaces as nodes and pods, real packets, enforced by `enforcer/`.
Everything it creates is named with a per-run prefix and torn down at the end, also on failure;
it never touches the machine's root namespace interfaces, and probes only addresses it made."""
