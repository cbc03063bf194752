"""Network namespaces: create, delete, list, and run code inside one (per thread, via setns).

`ip netns add` makes a named namespace under /run/netns; `inside(name)` switches the calling
thread into it and back (the enforcer's own `entered`: the agent needs it too, and the lab
stands on the enforcer). Sockets keep the namespace they were created in, so one process can
serve and probe across many namespaces.
"""

from __future__ import annotations

import subprocess

from enforcer.agent.netns import NETNS_DIR
from enforcer.agent.netns import entered as inside
from policy.errors import KubefenceError

__all__ = ["NETNS_DIR", "LabError", "add", "delete", "existing", "inside", "run"]


class LabError(KubefenceError):
    """The lab could not be built or run."""


def run(*argv: str, netns: str | None = None, check: bool = True) -> str:
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def add(name: str) -> None:
    run("ip", "netns", "add", name)
    run("ip", "link", "set", "lo", "up", netns=name)


def delete(name: str) -> None:
    run("ip", "netns", "delete", name, check=False)


def existing(prefix: str) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
