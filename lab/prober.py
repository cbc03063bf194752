"""The prober: real connections from every lab pod to every lab pod, in parallel, with timeouts.

Each client socket is created in the source pod's namespace and connects to the destination
pod's address. A connection counts as allowed when the destination's stack answers at all: a
TCP handshake or a refusal (RST), a UDP echo or an ICMP port-unreachable; it counts as denied
when nothing comes back before the timeout (nftables drops silently), or when the kernel
refuses to send it (EPERM: dropped on the way out of the source's own namespace, as traffic
to itself is). Every probe is bounded:
one deadline for a whole batch, a fixed number of UDP resends.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lab.netns import inside
from policy.addresses import IPAddress
from policy.ports import Protocol

TIMEOUT = 1.5  # seconds for a batch; a dropped SYN or datagram shows as no answer by then
UDP_RESENDS = 3
BATCH = 400


@dataclass(frozen=True)
class Target:
    source_netns: str
    address: IPAddress
    protocol: Protocol
    port: int


def probe_all(targets: Sequence[Target], timeout: float = TIMEOUT) -> list[bool]:
    """Whether each target answered; SCTP targets raise (the caller reports them unprobed)."""
    results: list[bool] = []
    for start in range(0, len(targets), BATCH):
        results += _batch(targets[start:start + BATCH], timeout)
    return results


def _socket(target: Target) -> socket.socket:
    family = socket.AF_INET6 if target.address.version == 6 else socket.AF_INET
    kind = socket.SOCK_DGRAM if target.protocol is Protocol.UDP else socket.SOCK_STREAM
    with inside(target.source_netns):
        if target.protocol is Protocol.SCTP:
            raise OSError(errno.EPROTONOSUPPORT, "SCTP is not probed")
        sock = socket.socket(family, kind)
    sock.setblocking(False)
    return sock


def _batch(targets: Sequence[Target], timeout: float) -> list[bool]:
    sel = selectors.DefaultSelector()
    done: dict[int, bool] = {}
    socks: dict[int, socket.socket] = {}
    try:
        for i, t in enumerate(targets):
            sock = _socket(t)
            socks[i] = sock
            err = sock.connect_ex((str(t.address), t.port))
            if err == errno.EPERM:
                done[i] = False  # dropped by nftables on the way out of this namespace
            elif t.protocol is Protocol.UDP:
                try:
                    sock.send(b"kubefence")
                except PermissionError:
                    done[i] = False
                    continue
                sel.register(sock, selectors.EVENT_READ, i)
            elif err in (0, errno.ECONNREFUSED):
                done[i] = True
            else:
                sel.register(sock, selectors.EVENT_WRITE, i)
        deadline = time.monotonic() + timeout
        resend_every = timeout / (UDP_RESENDS + 1)
        next_resend = time.monotonic() + resend_every
        while len(done) < len(targets):
            now = time.monotonic()
            if now >= deadline:
                break
            for key, _ in sel.select(timeout=min(deadline, next_resend) - now):
                i = key.data
                sock = socks[i]
                sel.unregister(sock)
                if targets[i].protocol is Protocol.UDP:
                    try:
                        sock.recv(64)
                        done[i] = True
                    except ConnectionRefusedError:
                        done[i] = True  # ICMP port unreachable: the pod's stack answered
                    except OSError:
                        done[i] = False
                else:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    done[i] = code in (0, errno.ECONNREFUSED)
            if time.monotonic() >= next_resend:
                next_resend += resend_every
                for i, t in enumerate(targets):
                    if t.protocol is Protocol.UDP and i not in done:
                        with contextlib.suppress(OSError):
                            socks[i].send(b"kubefence")
        return [done.get(i, False) for i in range(len(targets))]
    finally:
        sel.close()
        for sock in socks.values():
            sock.close()
