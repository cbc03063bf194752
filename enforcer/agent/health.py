"""The agent's HTTP endpoints, on a small threaded http.server:

- `/healthz`: 200 while the sync loop is alive (it has run within `stale` seconds), else 503;
- `/readyz`: 503 until the first full sync has committed, 200 after (and while healthy);
- `/metrics`: the Prometheus text exposition of `metrics.Metrics`.

It binds 127.0.0.1 unless told otherwise (the lab); the DaemonSet runs on the host network and
binds the node's address, where the kubelet's probes come from. Port 0 picks a free port
(`port` says which).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from enforcer.agent.metrics import Metrics


class Status:
    """What the endpoints report, set by the loop."""

    def __init__(self, stale: float) -> None:
        self.stale = stale
        self.ready = False
        self.heartbeat = time.monotonic()

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    @property
    def healthy(self) -> bool:
        return time.monotonic() - self.heartbeat < self.stale


def _handler(status: Status, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/healthz": lambda: (200, "text/plain", b"ok\n") if status.healthy
        else (503, "text/plain", b"sync loop stalled\n"),
        "/readyz": lambda: (200, "text/plain", b"ok\n") if status.ready and status.healthy
        else (503, "text/plain", b"not ready: no full sync yet\n" if not status.ready
              else b"sync loop stalled\n"),
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics.exposition()),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            code, ctype, body = route() if route else (404, "text/plain", b"not found\n")
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds are not worth a log line

    return Handler


class HealthServer:
    def __init__(self, status: Status, metrics: Metrics, address: str = "127.0.0.1",
                 port: int = 0) -> None:
        self._server = ThreadingHTTPServer((address, port), _handler(status, metrics))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def address(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
