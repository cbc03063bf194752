"""The command line as a user meets it: exit codes, stdin, one-line errors, never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubefence.cli import main
from tests.conftest import REPO

SHOP = str(REPO / "manifests" / "examples" / "shop")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_process(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubefence", *argv], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)


@pytest.mark.parametrize(("src", "dst", "port", "code"), [
    ("shop/web", "shop/api", "8080/TCP", 0),
    ("shop/web", "shop/api", "8081/TCP", 1),
    ("shop/web", "db/postgres", "5432", 1),
    ("shop/api", "db/postgres", "5432/tcp", 0),
    ("shop/api", "kube-system/coredns", "53/UDP", 0),
    ("shop/worker", "203.0.113.10", "443/TCP", 0),
    ("shop/worker", "203.0.113.200", "443/TCP", 1),
    ("8.8.8.8", "shop/web", "80/TCP", 0),
])
def test_can_exit_code_is_the_verdict(src: str, dst: str, port: str, code: int) -> None:
    assert run("can", src, dst, SHOP, "--port", port, "-q")[0] == code


def test_can_without_port_lists_allowed_ports() -> None:
    code, out, _ = run("can", "shop/api", "kube-system/coredns", SHOP)
    assert code == 0 and out.startswith("ALLOWED: shop/api -> kube-system/coredns on TCP 53 UDP 53")


def test_unknown_endpoint_is_a_usage_error() -> None:
    code, out, err = run("can", "shop/nope", "shop/api", SHOP)
    assert code == 2 and out == ""
    assert err.startswith("error: 'shop/nope' names no pod, workload or address")


@pytest.mark.parametrize("probe", ["80/ICMP", "http", "0/TCP", "70000"])
def test_bad_probe_argument_exits_2(probe: str) -> None:
    proc = run_process("matrix", SHOP, "--probe", probe)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--probe" in proc.stderr


def test_bad_input_gives_one_line_per_problem_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                   "metadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n"
                   "  ingress:\n  - ports:\n    - {port: 90, endPort: 80}\n")
    proc = run_process("matrix", str(bad))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: {bad}:8: NetworkPolicy x/p: spec.ingress[0].ports[0].endPort:"
                           " 80: must be greater than or equal to `port`\n")


def test_yaml_garbage_on_stdin_is_a_clean_error() -> None:
    proc = run_process("matrix", "-", stdin="kind: [\n")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: <stdin>:") and "Traceback" not in proc.stderr


def test_stdin_is_read_with_dash() -> None:
    text = (REPO / "manifests/examples/shop/workloads.yaml").read_text()
    proc = run_process("matrix", "-", "-o", "json", "--probe", "80", stdin=text)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "shop/web" in doc["pods"] and doc["probes"][0]["matrix"]["shop/api"]["shop/web"]


def test_warnings_go_to_stderr_and_keep_stdout_parseable(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n"
                 "  - from: [{ipBlock: {cidr: 10.0.0.1/8}}]\n---\napiVersion: v1\nkind: ConfigMap\n"
                 "metadata: {name: s}\n")
    code, out, err = run("matrix", str(f), "-o", "json")
    assert code == 0
    json.loads(out)
    assert "warning:" in err and "host bits" in err
    assert "note: ignored 1 objects of other kinds (ConfigMap 1)" in err
    assert run("matrix", str(f), "-o", "json", "-q")[2] == ""


def test_keep_going_analyses_the_rest(tmp_path: Path) -> None:
    f = tmp_path / "mixed.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n---\n"
                 "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                 "metadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {a: -}}}\n")
    assert run("matrix", str(f))[0] == 2
    code, out, err = run("matrix", str(f), "--keep-going", "-o", "csv")
    assert code == 0 and "x/a,x/a,all" in out and "warning:" in err


def test_kubectl_plugin_entry_point_names_itself() -> None:
    exe = Path(sys.executable).parent / "kubectl-fence"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: kubectl fence")


def test_no_command_is_a_usage_error() -> None:
    proc = run_process()
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_family_flag_selects_the_address_family(tmp_path: Path) -> None:
    f = tmp_path / "ds.yaml"
    f.write_text("""\
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: x}
status: {podIP: 10.0.0.7, podIPs: [{ip: 10.0.0.7}, {ip: "fd00::7"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: s, namespace: x, labels: {app: s}}
status: {podIP: 10.0.0.9, podIPs: [{ip: 10.0.0.9}, {ip: "fd00::9"}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {app: s}}
  ingress: [{from: [{ipBlock: {cidr: "fd00::/64"}}]}]
""")
    assert run("can", "x/c", "x/s", str(f), "--port", "80")[0] == 1
    assert run("can", "x/c", "x/s", str(f), "--port", "80", "--family", "6")[0] == 0


@pytest.mark.parametrize(("color", "ansi"), [("always", True), ("never", False),
                                             ("auto", False)])
def test_table_color(color: str, ansi: bool) -> None:
    _, out, _ = run("matrix", SHOP, "--color", color, "-q")
    assert ("\x1b[" in out) is ansi
