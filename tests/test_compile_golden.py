"""`kubefence compile`: golden rulesets of every conformance case and of the shop example, and
the command's errors.

Every case is placed on two nodes (`--assign-nodes 2`, the cases have no nodeName) and node-0's
ruleset is compared with `tests/golden/compile/<case>.nft`. After an intended change of output,
regenerate with `make golden` (pytest --update-golden) and review the diff like code.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kubefence.cli import main
from policy.loader import load
from tests.conftest import REPO, conformance_cases

GOLDEN = Path(__file__).parent / "golden" / "compile"
SHOP = str(REPO / "manifests" / "examples" / "shop")
CASES = conformance_cases()
JSON_CASE = "egress-cidr-except"  # ipBlock ranges and an except: the richest JSON


def _inputs(case: Path) -> list[str]:
    return [str(case / "cluster.yaml"), str(case / "policies.yaml")]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _check_golden(name: str, output: str, update_golden: bool) -> None:
    path = GOLDEN / name
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(output)
    assert path.exists(), f"no golden file {path}; run `make golden`"
    assert output == path.read_text()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conformance_ruleset_matches_golden(case: Path, update_golden: bool) -> None:
    code, out, err = run("compile", *_inputs(case), "--assign-nodes", "2", "--node", "node-0",
                         "-o", "text", "-q")
    assert (code, err) == (0, "")
    _check_golden(f"{case.name}.nft", out, update_golden)


def test_conformance_json_matches_golden(update_golden: bool) -> None:
    case = next(c for c in CASES if c.name == JSON_CASE)
    code, out, _ = run("compile", *_inputs(case), "--assign-nodes", "2", "--node", "node-0",
                       "-o", "json", "-q")
    assert code == 0
    _check_golden(f"{JSON_CASE}.json", out, update_golden)


def test_shop_ruleset_matches_golden(update_golden: bool) -> None:
    """The shop's objects are workloads without addresses: the node gets the bare skeleton."""
    code, out, _ = run("compile", SHOP, "--assign-nodes", "2", "--node", "node-0", "-q")
    assert code == 0
    _check_golden("shop.nft", out, update_golden)


def test_pods_without_address_are_named_in_a_note() -> None:
    code, out, err = run("compile", SHOP, "--assign-nodes", "2", "--node", "node-0")
    assert code == 0 and "node-0: 0 pods, 0 isolated" in out
    notes = [line for line in err.splitlines() if line.startswith("note: left out")]
    assert notes == ["note: left out 3 pods of node node-0 that have no address of their own "
                     "(hostNetwork, or no status.podIPs): db/postgres, monitoring/prometheus, "
                     "shop/web"]


def test_round_robin_follows_the_sorted_pod_order() -> None:
    case = CASES[0]
    keys = [p.key for p in load(_inputs(case)).pods]  # every conformance pod has an address
    assert keys == sorted(keys)
    for i in range(3):
        _, out, _ = run("compile", *_inputs(case), "--assign-nodes", "3", "--node", f"node-{i}",
                        "-q")
        pods = [line.split()[2] for line in out.splitlines() if line.startswith("\t# pod ")]
        assert pods == keys[i::3]


def test_unknown_node_is_one_line_error_listing_nodes() -> None:
    code, out, err = run("compile", *_inputs(CASES[0]), "--assign-nodes", "3",
                         "--node", "node-7", "-q")
    assert code == 2 and out == ""
    assert err == ("error: no pod in the input is on node 'node-7' (spec.nodeName); "
                   "nodes in the input: node-0, node-1, node-2\n")


def test_input_without_node_names_points_at_assign_nodes() -> None:
    code, out, err = run("compile", *_inputs(CASES[0]), "--node", "node-0", "-q")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "--assign-nodes" in err


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_assign_nodes_must_be_positive(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run("compile", SHOP, "--node", "node-0", "--assign-nodes", value)
    assert code == 2
    assert "--assign-nodes" in capsys.readouterr().err


def test_json_output_is_a_full_replace() -> None:
    code, out, _ = run("compile", *_inputs(CASES[0]), "--assign-nodes", "2", "--node", "node-0",
                       "-o", "json", "-q")
    assert code == 0
    commands = json.loads(out)["nftables"]
    table = {"family": "inet", "name": "kubefence"}
    assert commands[:3] == [{"add": {"table": table}}, {"delete": {"table": table}},
                            {"add": {"table": table}}]
