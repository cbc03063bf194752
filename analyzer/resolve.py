"""Turning what a user types (`ns/name`, `name`, an IP address, an external range's name) into
an endpoint of the analysis."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from analyzer.errors import UnknownEndpointError
from policy.engine import Analysis


@dataclass(frozen=True)
class Resolved:
    index: int
    label: str  # what to call it in output: the key, or the address the user typed


def resolve(analysis: Analysis, text: str) -> Resolved:
    ep = analysis.endpoints
    j = analysis.index(text)
    if j is not None:
        return Resolved(j, text)
    if "/" not in text:
        j = analysis.index(f"default/{text}")
        if j is not None:
            return Resolved(j, f"default/{text}")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    if addr is not None:
        for i, pod in enumerate(ep.pods):
            if pod.address == addr or addr in pod.ips:
                return Resolved(i, pod.key)
        for k, ext in enumerate(ep.externals):
            if ext.addresses.contains(addr):
                return Resolved(ep.n_pods + k, text if ext.catch_all else f"{text} ({ext.key})")
    names = [p.key for p in ep.pods[:5]]
    hint = f" (pods look like {', '.join(names)})" if names else " (the input has no pods)"
    raise UnknownEndpointError(f"{text!r} names no pod, workload or address{hint}")
