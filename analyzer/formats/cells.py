"""How a matrix cell reads in text formats, shared by table, markdown and csv."""

from __future__ import annotations

from policy.ports import PortSet

NOT_APPLICABLE = "n/a"
DENIED = "-"


def cell_text(ports: PortSet | None) -> str:
    if ports is None:
        return NOT_APPLICABLE
    if ports.is_empty():
        return DENIED
    return str(ports)


def port_ranges(ports: PortSet) -> list[dict[str, object]]:
    """JSON form of a PortSet: `[{"protocol": "TCP", "from": 80, "to": 80}, ...]`."""
    return [{"protocol": p.value, "from": lo, "to": hi} for p, lo, hi in ports.items()]
