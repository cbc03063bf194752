"""Errors of the analyzer layer; all derive from the project's one base class."""

from __future__ import annotations

from policy.errors import KubefenceError


class UnknownEndpointError(KubefenceError):
    """A SRC or DST argument that names no pod, workload, address or external range."""
