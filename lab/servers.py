"""Port servers: every lab pod serves each of its container ports, TCP and UDP.

One thread serves all pods: each listening socket is created inside its pod's namespace and
keeps it. TCP connections are accepted and closed; UDP datagrams are echoed. SCTP ports are
served only where the kernel has SCTP sockets (many sandboxes do not); `sctp_available` says.
"""

from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass, field

from lab.netns import inside
from policy.ports import Protocol

IPPROTO_SCTP = 132


def sctp_available() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


@dataclass
class Servers:
    _selector: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def listen(self, netns: str, protocol: Protocol, port: int, ipv6: bool) -> bool:
        """Serve one port in a pod's namespace; False if the kernel cannot (SCTP)."""
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        with inside(netns):
            if protocol is Protocol.UDP:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            elif protocol is Protocol.TCP:
                sock = socket.socket(family, socket.SOCK_STREAM)
            else:
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM, IPPROTO_SCTP)
                except OSError:
                    return False
        if ipv6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::" if ipv6 else "0.0.0.0", port))
        if protocol is not Protocol.UDP:
            sock.listen(128)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, protocol)
        self._sockets.append(sock)
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="lab-servers", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if key.data is Protocol.UDP:
                        data, peer = sock.recvfrom(2048)
                        sock.sendto(data, peer)
                    else:
                        conn, _ = sock.accept()
                        conn.close()
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in self._sockets:
            self._selector.unregister(sock)
            sock.close()
        self._sockets.clear()
        self._selector.close()
