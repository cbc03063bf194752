"""The kernel side: the only module that imports the nftables Python bindings (libnftables).

Commands go in as libnftables JSON, one batch per call, which the library commits as one
transaction: it either all applies or none of it does. Runs in the network namespace of the
calling thread.
"""

from __future__ import annotations

import json
from typing import Any

from policy.errors import KubefenceError

try:  # Debian's python3-nftables; `make setup` makes it importable from the venv
    import nftables
except ImportError:  # pragma: no cover - reported when a Dataplane is made
    nftables = None


class DataplaneError(KubefenceError):
    """libnftables refused a transaction, or is not installed."""


class Dataplane:
    def __init__(self) -> None:
        if nftables is None:
            raise DataplaneError(
                "the nftables Python bindings are not importable: install Debian's "
                "python3-nftables (make setup links it into the venv)"
            )
        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._nft.set_handle_output(False)

    def apply(self, commands: list[dict[str, Any]]) -> None:
        """Commit the commands as one transaction; raise DataplaneError if refused."""
        if not commands:
            return
        rc, _, err = self._nft.json_cmd({"nftables": commands})
        if rc != 0:
            raise DataplaneError(f"nftables transaction failed: {err.strip()}")

    def list_table(self, family: str, name: str) -> dict[str, Any]:
        """The table as the kernel has it (for tests and diagnostics only)."""
        rc, out, err = self._nft.cmd(f"list table {family} {name}")
        if rc != 0:
            raise DataplaneError(f"cannot list table {family} {name}: {err.strip()}")
        doc: dict[str, Any] = json.loads(out)
        return doc

    def list_text(self, family: str, name: str) -> str:
        self._nft.set_json_output(False)
        try:
            rc, out, err = self._nft.cmd(f"list table {family} {name}")
        finally:
            self._nft.set_json_output(True)
        if rc != 0:
            raise DataplaneError(f"cannot list table {family} {name}: {err.strip()}")
        text: str = out
        return text
