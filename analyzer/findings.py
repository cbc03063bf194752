"""What `kubefence check` reports: lint findings and assertion results, as plain values.

Lints and intent assertions produce these; the formatters (text, JUnit, SARIF, GitHub
annotations) only read them. Every finding has a stable code, a severity, a one-line message, a
fix hint, and the location of the object (file, line, object, field) it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policy.errors import Location


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "note": 1}[self.value]


@dataclass(frozen=True)
class Finding:
    code: str  # stable, e.g. "KF101"
    severity: Severity
    message: str  # one line
    hint: str  # one line: how to fix it
    location: Location


@dataclass(frozen=True)
class Counterexample:
    source: str
    destination: str
    port: int | None
    protocol: str | None


@dataclass(frozen=True)
class AssertionResult:
    name: str  # the intent as written, or its `name:`
    passed: bool
    message: str  # one line
    location: Location  # of the intent in the intent file
    counterexample: Counterexample | None = None
    responsible: tuple[Location, ...] = ()  # policies and rules (file, line) behind it
