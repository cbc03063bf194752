"""Programming another network namespace from the agent (the lab: one namespace per node).

API connections stay in the namespace the agent runs in (the API server of the lab listens on
127.0.0.1 of the root namespace); only nftables work happens in the node's namespace.
libnftables (1.0.6, Debian 12) opens its netlink socket when its context is created, and that
socket keeps the namespace it was made in: a context made in namespace A still programs A when
called from a thread in B (checked with two namespaces). So the dataplane is created with the
calling thread switched into the node's namespace, and, so as not to depend on that detail of
the library, every transaction is also committed from inside it. `setns` is per thread: other
threads (the watches) keep their namespace.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enforcer.dataplane import Dataplane
from policy.errors import KubefenceError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")  # where `ip netns add` puts named namespaces
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(KubefenceError):
    """The node's network namespace cannot be entered."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise NetnsError(f"setns: {os.strerror(ctypes.get_errno())}")


@contextmanager
def entered(name: str) -> Iterator[None]:
    """The body runs with the calling thread in network namespace `name` (/run/netns/NAME)."""
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
    except OSError as exc:
        raise NetnsError(f"network namespace {name!r}: {exc.strerror}") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


class NetnsDataplane(Dataplane):
    """A dataplane whose every transaction is made in network namespace `name`."""

    def __init__(self, name: str) -> None:
        self.netns = name
        with entered(name):
            super().__init__()

    def apply(self, commands: list[dict[str, Any]]) -> None:
        with entered(self.netns):
            super().apply(commands)

    def list_table(self, family: str, name: str) -> dict[str, Any]:
        with entered(self.netns):
            return super().list_table(family, name)


def dataplane_for(netns: str | None) -> Dataplane:
    """The namespace of the calling thread (the DaemonSet), or the named one (the lab)."""
    return NetnsDataplane(netns) if netns else Dataplane()
