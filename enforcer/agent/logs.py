"""Structured logs: one JSON object per line on stderr.

Every line has `ts` (RFC 3339, UTC, milliseconds), `level` (info, warning, error) and `event`
(a short fixed name such as `sync`, `watch_error`, `relist`), then the fields of that event.
Lines are written whole under a lock, so threads never interleave. No object is logged in
full, and nothing secret is ever read.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO


class Log:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def _write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {"ts": now, "level": level, "event": event, **fields}
        line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        stream = self._stream or sys.stderr
        with self._lock:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):  # a closed stderr must not stop the agent
                pass

    def info(self, event: str, **fields: Any) -> None:
        self._write("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._write("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._write("error", event, fields)
