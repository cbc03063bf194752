"""A real control plane for tests: `kubefence-lab-cluster up` (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler on 127.0.0.1), once per session.

`lab_cluster` builds or finds the binary (`scripts/build-lab-cluster.sh`, cached; a cold
build takes minutes), starts `up --dir <tmp>`, waits (bounded) for its JSON line and yields a
`LabCluster`; it always stops it at the end (SIGTERM, wait, then SIGKILL). `tests/conftest.py`
registers the fixture, so every test module shares the one control plane: ask for
`lab_cluster`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

UP_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0
BUILD_TIMEOUT = 1800.0  # a cold build (empty Go caches) takes ~12 minutes on 2 cores


@dataclass(frozen=True)
class LabCluster:
    kubeconfig: str
    server: str
    dir: Path
    kubectl_path: str

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 30) -> str:
        proc = subprocess.run([self.kubectl_path, "--kubeconfig", self.kubeconfig, *args],
                              input=input, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))


def lab_binary() -> str:
    proc = subprocess.run([str(REPO / "scripts" / "build-lab-cluster.sh")], capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/build-lab-cluster.sh failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


@pytest.fixture(scope="session")
def lab_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    binary = lab_binary()
    workdir = tmp_path_factory.mktemp("labcluster")
    out, err = open(workdir / "up.out", "w+"), open(workdir / "up.err", "w+")  # noqa: SIM115
    proc = subprocess.Popen([binary, "up", "--dir", str(workdir)], stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + UP_TIMEOUT
        line = ""
        while not line:
            if proc.poll() is not None:
                raise RuntimeError(f"lab cluster exited {proc.returncode}: "
                                   f"{(workdir / 'up.err').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"lab cluster not up within {UP_TIMEOUT:.0f} s")
            time.sleep(0.2)
            line = (workdir / "up.out").read_text().strip()
        info = json.loads(line.splitlines()[0])
        yield LabCluster(info["kubeconfig"], info["server"], workdir,
                         str(Path(binary).parent / "kubectl"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        out.close()
        err.close()
