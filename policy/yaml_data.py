"""A libyaml-backed YAML reader that builds plain data from nodes with little Python overhead.

PyYAML's C parser still calls back into Python to resolve every scalar's tag and to construct
every object. For manifests (mappings, sequences, strings and small integers) this module
memoises tag resolution per loader and builds dicts, lists, strings and decimal integers
directly; anything else (booleans, floats, nulls, merge keys, explicit tags, octal-looking
integers) goes through PyYAML's own constructor, so the data is what `yaml.safe_load` gives.
"""

from __future__ import annotations

from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
MERGE = "tag:yaml.org,2002:merge"


class FastLoader(_Base):  # type: ignore[misc]
    """CSafeLoader with per-instance memoised tag resolution."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._resolved: dict[str, str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        """The implicit tag of an untagged node, as SafeLoader's resolver gives it (it has no
        path resolvers): a quoted scalar is a string; a plain one depends on its text only."""
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return STR
            hit = self._resolved.get(value)
            if hit is None:
                hit = self._resolved[value] = super().resolve(kind, value, implicit)
            return hit
        if kind is yaml.MappingNode:
            return MAP
        if kind is yaml.SequenceNode:
            return SEQ
        tag: str = super().resolve(kind, value, implicit)
        return tag

    def build(self, node: yaml.Node) -> Any:
        """The data of one document's node tree, as `construct_document` would give it."""
        memo: dict[int, Any] = {}
        try:
            return self._build(node, memo)
        finally:
            self.constructed_objects: dict[Any, Any] = {}
            self.recursive_objects: dict[Any, Any] = {}

    def _build(self, node: yaml.Node, memo: dict[int, Any]) -> Any:
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            value = node.value
            if tag == STR:
                return value
            if tag == INT and value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)
            return self.construct_object(node, deep=True)
        key = id(node)
        if key in memo:
            return memo[key]
        if isinstance(node, yaml.SequenceNode) and tag == SEQ:
            items: list[Any] = []
            memo[key] = items
            items.extend(self._build(child, memo) for child in node.value)
            return items
        if isinstance(node, yaml.MappingNode) and tag == MAP:
            mapping: dict[Any, Any] = {}
            memo[key] = mapping
            for k, v in node.value:
                if k.tag == MERGE:  # `<<: *base`: PyYAML's constructor flattens merges
                    del memo[key]
                    return self.construct_object(node, deep=True)
                data = self._build(k, memo)
                if type(data) is not str:
                    try:
                        hash(data)
                    except TypeError as exc:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            "found unhashable key", k.start_mark,
                        ) from exc
                mapping[data] = self._build(v, memo)
            return mapping
        return self.construct_object(node, deep=True)
