"""The lab's Kubernetes control plane: the Go binary of lab/cluster (`kubefence-lab-cluster up`),
started as a child process and stopped with SIGTERM (SIGKILL if it lingers).

`scripts/build-lab-cluster.sh` prints the binary's path (cached; it builds it on a fresh
machine); `$KUBEFENCE_LAB_CLUSTER` names a binary instead. `up --dir DIR` prints one JSON line
(`kubeconfig`, `server`, `ca`, `pid`, `dir`) once etcd, the API server, the controller-manager
and the scheduler are ready, all on 127.0.0.1; its children die with it (Pdeathsig).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.netns import LabError

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "scripts" / "build-lab-cluster.sh"
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 40.0  # `up` gives each child 30 s before SIGKILL


def binary() -> Path:
    """The control plane's binary: $KUBEFENCE_LAB_CLUSTER, or the cached build."""
    named = os.environ.get("KUBEFENCE_LAB_CLUSTER")
    if named:
        path = Path(named)
    else:
        try:
            proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                                  timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LabError(f"{BUILD_SCRIPT}: {exc}") from exc
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            raise LabError(f"could not build the lab control plane: {last}")
        path = Path(proc.stdout.strip())
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise LabError(f"the lab control plane binary is missing: {path}")
    return path


def kubectl() -> Path:
    """The `kubectl` beside the binary (a symlink to it)."""
    return binary().parent / "kubectl"


@dataclass
class ControlPlane:
    """A running `kubefence-lab-cluster up`; `info` is its JSON line."""

    proc: subprocess.Popen[str]
    info: dict[str, Any]

    @property
    def kubeconfig(self) -> str:
        return str(self.info["kubeconfig"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        """The API server's port on 127.0.0.1."""
        return int(str(self.info["server"]).rsplit(":", 1)[1])

    def stop(self) -> None:
        stop_pid(self.proc.pid, STOP_TIMEOUT, self.proc)


def start(directory: Path, timeout: float = READY_TIMEOUT,
          port: int | None = None) -> ControlPlane:
    """Start the control plane in `directory` (on API server port `port`, else a free one) and
    wait for its JSON line. On any failure or timeout it is stopped again, and the error names
    the end of its stderr. Started again in the same directory, it keeps its certificates,
    tokens and etcd data: the same cluster comes back."""
    exe = binary()
    directory.mkdir(parents=True, exist_ok=True)
    errlog = open(directory / "up.err", "w")  # noqa: SIM115 (closed below, the child keeps it)
    argv = [str(exe), "up", "--dir", str(directory)]
    if port is not None:
        argv += ["--apiserver-port", str(port)]
    try:
        proc = subprocess.Popen(argv,
                                stdout=subprocess.PIPE, stderr=errlog, stdin=subprocess.DEVNULL,
                                text=True, start_new_session=True)
    except OSError as exc:
        raise LabError(f"{exe}: {exc}") from exc
    finally:
        errlog.close()
    try:
        line = _read_line(proc, timeout)
        if not line:
            raise LabError(f"the lab control plane did not start: {_tail(directory / 'up.err')}")
        return ControlPlane(proc, json.loads(line))
    except BaseException:
        stop_pid(proc.pid, STOP_TIMEOUT, proc)
        raise


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"the lab control plane was not ready within {timeout:.0f} s")
            if sel.select(timeout=min(left, 1.0)):
                return proc.stdout.readline().strip()
            if proc.poll() is not None:
                return ""


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else "no output"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid: int, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL (the whole process group if it leads one)."""
    def signal_all(sig: int) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    if proc is not None and proc.poll() is not None:
        return
    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not alive(pid):
            return
        time.sleep(0.1)
    signal_all(signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=10)
