"""The fast YAML builder must give exactly what `yaml.safe_load_all` gives."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from policy.yaml_data import FastLoader

CORNERS = {
    "plain-manifest": (
        "kind: Pod\nmetadata: {name: a, labels: {app: web}}\nspec:\n  ports: [80, 443]\n"
    ),
    "yaml11-booleans-and-nulls": "a: yes\nb: off\nc: ~\nd: null\ne: True\nf: ''\n",
    "numbers": (
        "a: 0755\nb: 010\nc: 0\nd: -5\ne: +7\nf: 1_000\ng: 0x1F\nh: 1.5\ni: .inf\nj: 190:20:30\n"
    ),
    "quoted-numbers-stay-strings": "a: '80'\nb: \"0755\"\n",
    "anchors-and-merge-keys": "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n",
    "explicit-tags": "a: !!str 80\nb: !!int '12'\nc: !!float 1\n",
    "timestamps": "a: 2026-11-24\nb: 2026-11-24T10:00:00Z\n",
    "multi-document": "---\na: 1\n---\n---\n- x\n- 2\n",
    "nested-sequences": "a:\n- - 1\n  - b: [c, {d: e}]\n",
    "merge-key-after-other-keys": "base: &b {x: 1}\nd:\n  y: 3\n  <<: *b\n",
    "quoted-words-stay-strings": "a: 'yes'\nb: \"null\"\nc: '~'\n",
    "block-scalars": "a: |\n  80\nb: >\n  yes\n  no\n",
    "flow-and-empty": "a: {}\nb: []\nc:\nd: [~, '', \"\"]\n",
}


def fast_load_all(text: str) -> list[Any]:
    loader = FastLoader(text)
    try:
        out = []
        while loader.check_node():
            out.append(loader.build(loader.get_node()))
        return out
    finally:
        loader.dispose()


@pytest.mark.parametrize("text", CORNERS.values(), ids=CORNERS.keys())
def test_builder_matches_safe_load(text: str) -> None:
    assert fast_load_all(text) == list(yaml.safe_load_all(text))


def test_aliases_share_one_object_like_safe_load() -> None:
    data = fast_load_all("a: &x [1]\nb: *x\n")[0]
    assert data["a"] is data["b"]


def test_unhashable_key_is_a_yaml_error() -> None:
    with pytest.raises(yaml.YAMLError):
        fast_load_all("? [a]\n: 1\n")


scalars = st.one_of(st.integers(-(10**6), 10**6), st.booleans(), st.none(),
                    st.text(max_size=8), st.floats(allow_nan=False))
data = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20)


@given(data)
def test_round_trip_agrees_with_safe_load(value: Any) -> None:
    text = yaml.safe_dump(value)
    assert fast_load_all(text) == [yaml.safe_load(text)]
