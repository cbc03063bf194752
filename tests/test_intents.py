"""Intent assertions against the shop example: each kind holds, and fails with a concrete
counterexample and the policies behind it when the policies say otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.intents import check, load_intents
from policy.engine import Analysis
from policy.errors import InputError
from policy.loader import load
from tests.conftest import REPO

SHOP = REPO / "manifests" / "examples" / "shop"


@pytest.fixture(scope="module")
def shop() -> Analysis:
    return Analysis(load([str(SHOP)]))


def _run(analysis: Analysis, tmp_path: Path, text: str) -> list[tuple[bool, str, list[str]]]:
    f = tmp_path / "intents.yaml"
    f.write_text(text)
    out = []
    for intent, loc in load_intents(str(f)):
        r = check(analysis, intent, loc)
        out.append((r.passed, r.message, [x.render() for x in r.responsible]))
    return out


def test_bundled_shop_intents_hold(shop: Analysis) -> None:
    results = [check(shop, i, loc) for i, loc in
               load_intents(str(REPO / "manifests/examples/shop-intents/intents.yaml"))]
    assert [r.passed for r in results] == [True, True, True, True]


CASES = [
    ("allowed-fails-on-an-unopened-port",
     "assertions:\n- from: {labels: {app: web}}\n  to: {labels: {app: api}}\n"
     "  ports: [9090/TCP]\n  expect: allowed\n",
     "shop/web cannot reach shop/api on 9090/TCP",
     ["manifests/examples/shop/policies.yaml:40: NetworkPolicy shop/web",
      "manifests/examples/shop/policies.yaml:2: NetworkPolicy shop/default-deny",
      "manifests/examples/shop/policies.yaml:21: NetworkPolicy shop/allow-dns",
      "manifests/examples/shop/policies.yaml:61: NetworkPolicy shop/api"]),
    ("denied-fails-with-the-rule-that-allows",
     "assertions:\n- from: {namespace: monitoring}\n  to: {labels: {app: api}}\n"
     "  expect: denied\n",
     "monitoring/prometheus can reach shop/api on 9090/TCP",
     ["manifests/examples/shop/policies.yaml:75: shop/api ingress[1]"]),
    ("only-fails-on-a-port-beyond-the-list",
     "assertions:\n- from: {labels: {app: api}}\n  to: {namespace: kube-system}\n"
     "  ports: [53/UDP]\n  expect: only\n",
     "shop/api can reach kube-system/coredns on 53/TCP",
     ["manifests/examples/shop/policies.yaml:30: shop/allow-dns egress[0]"]),
    ("cidr-peer-picks-external-ranges",
     "assertions:\n- from: {cidr: 198.51.100.0/24}\n  to: {labels: {app: web}}\n"
     "  expect: denied\n",
     "0.0.0.0/0 except 203.0.113.0/24 can reach shop/web on 80/TCP",
     ["manifests/examples/shop/policies.yaml:49: shop/web ingress[0]"]),
    ("isolated-fails-for-an-open-pod",
     "assertions:\n- isolated: {namespace: monitoring}\n  directions: [Ingress]\n",
     "monitoring/prometheus is not isolated for ingress: no policy with policyTypes Ingress "
     "selects it", []),
    ("peer-matching-nothing-fails",
     "assertions:\n- from: {labels: {app: nope}}\n  to: {}\n  expect: denied\n",
     "`from` matches no pod or address", []),
]


@pytest.mark.parametrize(("text", "message", "responsible"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_failing_assertion_names_a_counterexample_and_its_policies(
        shop: Analysis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
        message: str, responsible: list[str]) -> None:
    monkeypatch.chdir(REPO)
    analysis = Analysis(load(["manifests/examples/shop"]))
    [(passed, got, culprits)] = _run(analysis, tmp_path, text)
    assert not passed
    assert got == message
    assert sorted(culprits) == sorted(responsible)


@pytest.mark.parametrize(("text", "fragment"), [
    ("assertions:\n- from: {labels: {app: web}}\n  expect: sometimes\n",
     "intents.yaml:3: intents: assertions[0].expect: must be one of allowed, denied, only"),
    ("assertions:\n- from: {labelz: {app: web}}\n  expect: denied\n",
     "intents.yaml:2: intents: assertions[0].from.labelz: Extra inputs are not permitted"),
    ("assertions:\n- ports: [http]\n  expect: denied\n",
     "intents.yaml:2: intents: assertions[0].ports: 'http': expected PORT or PORT/PROTOCOL"),
])
def test_bad_intent_file_names_file_line_and_field(tmp_path: Path, text: str,
                                                   fragment: str) -> None:
    f = tmp_path / "intents.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as info:
        load_intents(str(f))
    rendered = [p.render() for p in info.value.problems]
    assert any(r.replace(str(tmp_path) + "/", "").startswith(fragment) for r in rendered), rendered
