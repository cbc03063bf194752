"""Label selectors (`metav1.LabelSelector`) and their matching semantics.

`matchLabels` and every `matchExpressions` requirement are ANDed. An empty selector (`{}`)
matches everything; whether an *absent* selector means "all" or "none" depends on where it
stands, so that decision is the engine's, not this module's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Operator(StrEnum):
    """`operator represents a key's relationship to a set of values.`"""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class Requirement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str
    operator: str  # validated against Operator by policy.validation, with a field path
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == Operator.IN:
            return self.key in labels and labels[self.key] in self.values
        if op == Operator.NOT_IN:
            # NotIn matches when the key is absent, as upstream's labels.Selector does.
            return self.key not in labels or labels[self.key] not in self.values
        if op == Operator.EXISTS:
            return self.key in labels
        return self.key not in labels  # DoesNotExist


class LabelSelector(BaseModel):
    """`A label selector is a label query over a set of resources. ... An empty label selector
    matches all objects. A null label selector matches no objects.`"""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: tuple[Requirement, ...] = Field(default=(), alias="matchExpressions")

    def matches(self, labels: Mapping[str, str]) -> bool:
        for k, v in self.match_labels.items():
            if labels.get(k) != v:
                return False
        return all(req.matches(labels) for req in self.match_expressions)

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def key(
        self,
    ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, tuple[str, ...]], ...]]:
        """A hashable identity, for caching match results of equal selectors."""
        return (
            tuple(sorted(self.match_labels.items())),
            tuple(
                sorted((r.key, r.operator, tuple(sorted(r.values))) for r in self.match_expressions)
            ),
        )

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for r in self.match_expressions:
            if r.operator in (Operator.IN, Operator.NOT_IN):
                word = "in" if r.operator == Operator.IN else "notin"
                parts.append(f"{r.key} {word} ({','.join(r.values)})")
            elif r.operator == Operator.EXISTS:
                parts.append(r.key)
            else:
                parts.append(f"!{r.key}")
        return ",".join(parts) if parts else "{}"
