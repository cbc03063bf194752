"""Errors and warnings of the whole project, as values.

Every error kubefence raises derives from `KubefenceError`, so the command line has one place to
turn them into a one-line message and exit code 2. `InputError` carries where bad input was found
(file, line, object, field path); `LoadWarning` is the same location for something the API server
would accept but change (a CIDR with host bits set), returned as a value, never logged.
"""

from __future__ import annotations

from dataclasses import dataclass


class KubefenceError(Exception):
    """Base class of every error kubefence reports to a user."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where in the input something was found; every part is optional."""

    file: str = ""
    line: int | None = None
    obj: str = ""  # "Kind namespace/name"
    field: str = ""  # "spec.ingress[0].ports[1].endPort"

    def render(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.obj:
            parts.append(self.obj)
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about the input: an error or a warning, with its location."""

    location: Location
    message: str

    def render(self) -> str:
        where = self.location.render()
        return f"{where}: {self.message}" if where else self.message


class InputError(KubefenceError):
    """Input the API server would reject, or that cannot be read: one or more problems."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


class UsageError(KubefenceError):
    """A command-line argument that names nothing or cannot be parsed."""
