"""The semantic diff (`analyzer.diff`), its git source and its three formats."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from analyzer.diff import ChangeKind, DiffResult, FailOn, applying_policies, semantic_diff
from analyzer.formats.diff_format import diff_json, diff_markdown, diff_text
from analyzer.gitsource import GitSourceError, git_sources
from policy.cluster import ClusterState
from policy.engine import Analysis
from policy.errors import KubefenceError
from policy.loader import load, load_texts
from tests.builders import Obj, namespace, netpol, pod, to_yaml
from tests.conftest import REPO

GOLDEN = Path(__file__).parent / "golden" / "diff"
SHOP = "manifests/examples/shop"


def cluster(objects: list[Obj], name: str = "test.yaml") -> ClusterState:
    return load_texts([(name, to_yaml(objects), False)])


def allow_a(ports: list[Obj]) -> Obj:
    """ns/b accepts ns/a on `ports`."""
    return netpol("ns", "allow-a", {
        "podSelector": {"matchLabels": {"app": "b"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": ports}],
    })


def base(a_labels: dict[str, str] | None = None, b_port: int = 80,
         ports: list[Obj] | None = None, policy: bool = True) -> list[Obj]:
    return [
        namespace("ns"),
        pod("ns", "a", a_labels or {"app": "a"}),
        pod("ns", "b", {"app": "b"}, ports=[("http", b_port, "TCP")]),
        *([allow_a(ports or [{"port": 80}])] if policy else []),
    ]


Row = tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]]


def rows(result: DiffResult) -> list[Row]:
    """(src, dst, added, removed, policy changes, endpoint changes) per changed pair."""
    return [
        (p.source, p.destination, str(p.added), str(p.removed),
         tuple(f"{c.key} {c.change.value}" for c in p.policies), p.endpoints)
        for p in result.pairs
    ]


ALL_BUT_80 = "TCP 1-79,81-65535 UDP * SCTP *"

CASES: list[tuple[str, list[Obj], list[Obj], list[Row]]] = [
    ("widened", base(), base(ports=[{"port": 80, "endPort": 90}]),
     [("ns/a", "ns/b", "TCP 81-90", "none", ("ns/allow-a modified",), ())]),
    ("narrowed", base(ports=[{"port": 80, "endPort": 90}]), base(ports=[{"port": 85}]),
     [("ns/a", "ns/b", "none", "TCP 80-84,86-90", ("ns/allow-a modified",), ())]),
    ("named port, by name", base(), base(ports=[{"port": "http"}]), []),
    ("pod relabelled", base(), base(a_labels={"app": "c"}),
     [("ns/a", "ns/b", "none", "TCP 80", (), ("ns/a",))]),
    ("policy removed", base(), base(policy=False),
     [("ns/a", "ns/b", ALL_BUT_80, "none", ("ns/allow-a removed",), ()),
      ("ns/b", "ns/b", "all", "none", ("ns/allow-a removed",), ()),
      ("others", "ns/b", "all", "none", ("ns/allow-a removed",), ())]),
    ("policy added", base(policy=False), base(),
     [("ns/a", "ns/b", "none", ALL_BUT_80, ("ns/allow-a added",), ()),
      ("ns/b", "ns/b", "none", "all", ("ns/allow-a added",), ()),
      ("others", "ns/b", "none", "all", ("ns/allow-a added",), ())]),
    ("named port moved", base(ports=[{"port": "http"}]),
     base(b_port=8080, ports=[{"port": "http"}]),
     [("ns/a", "ns/b", "TCP 8080", "TCP 80", (), ("ns/b",))]),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_diff_cases(old: list[Obj], new: list[Obj], expected: list[Row]) -> None:
    assert rows(semantic_diff(cluster(old), cluster(new))) == expected


def assert_causes_agree_with_explain(old: ClusterState, new: ClusterState) -> None:
    """The policies named per pair are those `policy.explain` names, in either version."""
    result = semantic_diff(old, new)
    changed = {c.key for c in result.policy_changes}
    analyses = Analysis(old), Analysis(new)
    for p in result.pairs:
        named = set().union(*(applying_policies(a, p.source, p.destination) for a in analyses))
        assert {c.key for c in p.policies} == named & changed, p


@pytest.mark.parametrize(("old", "new"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_causes_agree_with_explain(old: list[Obj], new: list[Obj]) -> None:
    assert_causes_agree_with_explain(cluster(old), cluster(new))


def test_named_port_by_name_is_a_policy_change_without_effect() -> None:
    result = semantic_diff(cluster(base()), cluster(base(ports=[{"port": "http"}])))
    assert result.is_empty()
    assert [(c.key, c.change) for c in result.policy_changes] == [
        ("ns/allow-a", ChangeKind.MODIFIED)
    ]


def test_reformat_is_no_change() -> None:
    """Other file, document order, JSON instead of YAML, comments: nothing changed."""
    old = cluster(base())
    objects = base()
    text = "\n---\n".join(["# a comment", *(json.dumps(o) for o in reversed(objects))])
    new = load_texts([("elsewhere/all.yaml", "\n" * 5 + text, False)])
    result = semantic_diff(old, new)
    assert result == DiffResult((), (), (), (), ())
    assert diff_text(result) == "0 connections added, 0 removed\n\nNo connection changes.\n"


def test_endpoints_in_one_version_are_listed_not_compared() -> None:
    old = base()
    new = [*base(), pod("ns", "c", {"app": "a"})]
    result = semantic_diff(cluster(old), cluster(new))
    assert result.pairs == ()
    assert result.endpoints_added == ("ns/c",)
    assert semantic_diff(cluster(new), cluster(old)).endpoints_removed == ("ns/c",)


def test_unrelated_policy_change_is_not_named() -> None:
    other = netpol("other", "deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    old = [*base(), namespace("other")]
    new = [*base(ports=[{"port": 81}]), namespace("other"), other]
    (pair,) = semantic_diff(cluster(old), cluster(new)).pairs
    assert [c.key for c in pair.policies] == ["ns/allow-a"]


def test_fail_on() -> None:
    widened = semantic_diff(cluster(base()), cluster(base(ports=[{"port": 80, "endPort": 81}])))
    assert widened.fails(FailOn.ADDED) and widened.fails(FailOn.ANY)
    assert not widened.fails(FailOn.REMOVED)
    same = semantic_diff(cluster(base()), cluster(base()))
    assert not any(same.fails(on) for on in FailOn)


# -- git -------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """k8s/ committed twice: the policy widened in the second commit."""
    root = tmp_path / "repo"
    (root / "k8s" / "sub").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "k8s" / "README.md").write_text("not a manifest\n")
    (root / "k8s" / "values.yaml").write_text("replicas: 3\n")
    (root / "k8s" / "pods.yaml").write_text(to_yaml(base(policy=False)))
    (root / "k8s" / "sub" / "policy.yaml").write_text(to_yaml([allow_a([{"port": 80}])]))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    (root / "k8s" / "sub" / "policy.yaml").write_text(
        to_yaml([allow_a([{"port": 80, "endPort": 90}])]))
    git(root, "commit", "-q", "-am", "two")
    return root


def test_git_source_reads_a_folder_at_a_revision(repo: Path) -> None:
    sources = git_sources(str(repo / "k8s"), "HEAD~1")
    assert [(n, w) for n, _, w in sources] == [
        ("HEAD~1:k8s/pods.yaml", True), ("HEAD~1:k8s/sub/policy.yaml", True),
        ("HEAD~1:k8s/values.yaml", True)]
    old = load_texts(sources)
    assert [p.location.file for p in old.policies] == ["HEAD~1:k8s/sub/policy.yaml"]
    result = semantic_diff(old, load([str(repo / "k8s")]))
    assert rows(result) == [("ns/a", "ns/b", "TCP 81-90", "none", ("ns/allow-a modified",), ())]


def test_git_source_reads_a_file_and_the_whole_tree(repo: Path, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    (name, text, walked), = git_sources(str(repo / "k8s" / "sub" / "policy.yaml"), "HEAD~1")
    assert (name, walked) == ("HEAD~1:k8s/sub/policy.yaml", False)
    assert "endPort" not in text
    monkeypatch.chdir(repo / "k8s")
    assert len(git_sources(".", "HEAD")) == 3
    assert len(git_sources(str(repo), "HEAD")) == 3


def test_git_source_path_deleted_from_the_working_tree(repo: Path) -> None:
    (repo / "k8s" / "sub" / "policy.yaml").unlink()
    (repo / "k8s" / "sub").rmdir()
    assert len(git_sources(str(repo / "k8s" / "sub"), "HEAD")) == 1


@pytest.mark.parametrize(("where", "rev", "message"), [
    ("outside", "HEAD", "not a git repository"),
    ("k8s", "no-such-rev", "no-such-rev: unknown revision"),
    ("k8s/missing", "HEAD", "no such file or folder at HEAD"),
])
def test_git_source_errors(repo: Path, tmp_path: Path, where: str, rev: str, message: str) -> None:
    path = tmp_path / where if where == "outside" else repo / where
    path.mkdir(exist_ok=True)
    with pytest.raises(GitSourceError, match=message) as info:
        git_sources(str(path), rev)
    assert isinstance(info.value, KubefenceError)
    assert "\n" not in str(info.value)


# -- golden ----------------------------------------------------------------------------------

WIDEN_POSTGRES = (
    "    - {protocol: TCP, port: 5432}\n",
    "    - {protocol: TCP, port: 5432}\n"
    "  - from:\n"
    "    - namespaceSelector:\n"
    "        matchLabels: {kubernetes.io/metadata.name: monitoring}\n"
    "    ports:\n"
    "    - {protocol: TCP, port: 9187}\n",
)
DROP_WORKER_INGRESS = (
    "  ingress:\n"
    "  - from:\n"
    "    - namespaceSelector: {}\n"
    "      podSelector:\n"
    "        matchLabels: {app: prometheus}\n"
    "    ports:\n"
    "    - port: metrics\n",
    "  ingress: []\n",
)


def shop_versions() -> tuple[ClusterState, ClusterState]:
    """The shop, and the shop with postgres open to monitoring on 9187 and the worker no
    longer scraped (its ingress emptied)."""
    old = load([SHOP])
    sources = []
    for path in sorted(Path(SHOP).iterdir()):
        text = path.read_text()
        if path.name == "policies.yaml":
            for before, after in (WIDEN_POSTGRES, DROP_WORKER_INGRESS):
                assert text.count(before) == 1
                text = text.replace(before, after)
        sources.append((str(path), text, True))
    return old, load_texts(sources)


@pytest.mark.parametrize(("name", "render"), [
    ("diff.txt", diff_text), ("diff.json", diff_json), ("diff.md", diff_markdown)])
def test_diff_golden(name: str, render: Any, update_golden: bool,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = render(semantic_diff(*shop_versions()))
    path = GOLDEN / name
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(out)
    assert path.exists(), f"no golden file {path}; run `make golden`"
    assert out == path.read_text()


def test_shop_diff_contents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = semantic_diff(*shop_versions())
    assert rows(result) == [
        ("monitoring/prometheus", "db/postgres", "TCP 9187", "none",
         ("db/postgres modified",), ()),
        ("monitoring/prometheus", "shop/worker", "none", "TCP 9090",
         ("shop/worker modified",), ()),
    ]
    assert_causes_agree_with_explain(*shop_versions())
    assert json.loads(diff_json(result))["summary"] == {"added": 1, "removed": 1}
    assert diff_markdown(result).startswith("**kubefence diff:** 1 connection added, 1 removed\n")
