"""Reading input: files, folders (recursively) and stdin into documents that know their lines.

YAML goes through libyaml's composer so each document keeps its node tree: a field path such as
`spec.ingress[0].ports[1]` is turned back into a line number only when there is something to
say about it. JSON is read with the json module (fast for large `kubectl get -o json` dumps)
and composed as YAML only when a line is asked for. `kind: List` documents (and bare JSON
arrays) are expanded into their items. This is the only I/O in `policy/`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policy.errors import InputError, Location, Problem
from policy.yaml_data import FastLoader

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SUFFIXES = (".yaml", ".yml", ".json")
PathPart = str | int


@dataclass(slots=True)
class Document:
    """One object read from a source, with what is needed to point back into it."""

    data: Any
    file: str
    start: int | None  # 1-based line of the object; None for JSON until a line is asked
    node: yaml.Node | None = None
    resolve: Callable[[], yaml.Node | None] | None = field(default=None, repr=False)

    def _node(self) -> yaml.Node | None:
        if self.node is None and self.resolve is not None:
            self.node, self.resolve = self.resolve(), None
        return self.node

    @property
    def line(self) -> int | None:
        """The object's line. Cheap: for JSON it stays unknown unless a field was located."""
        node = self.node
        return node.start_mark.line + 1 if node is not None else self.start

    def line_of(self, path: str) -> int | None:
        """The line of a field path (`spec.ingress[0].from[1]`), or of its deepest parent.
        For JSON this composes the text as YAML once: only done when there is a problem."""
        node = self._node()
        if node is None:
            return self.start
        for part in split_path(path):
            child = child_node(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1


def split_path(path: str) -> Iterator[PathPart]:
    for piece in path.replace("]", "").split("."):
        name, *indexes = piece.split("[")
        if name:
            yield name
        for idx in indexes:
            yield int(idx) if idx.isdigit() else idx


def child_node(node: yaml.Node | None, part: PathPart) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == part:
                found: yaml.Node = v
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


def expand_paths(paths: list[str]) -> list[tuple[str, bool]]:
    """(file, found in a folder) for every source: files as given, folders walked recursively
    for *.yaml/*.yml/*.json in sorted order."""
    out: list[tuple[str, bool]] = []
    for p in paths:
        path = Path(p)
        if p == "-" or path.is_file():
            out.append((p, False))
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                out.extend(
                    (str(Path(root) / f), True) for f in sorted(files) if f.endswith(SUFFIXES)
                )
        else:
            raise InputError([Problem(Location(file=p), "no such file or folder")])
    return out


def display_name(name: str) -> str:
    return "<stdin>" if name == "-" else name


def read_source(name: str) -> str:
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(Location(display_name(name)), f"cannot read: {exc}")]) from exc


def parse_documents(text: str, name: str,
                    position: Callable[[int], None] | None = None) -> Iterator[Document]:
    """Every non-empty object of a source, `kind: List` expanded, one at a time so that each
    document's node tree can be dropped once it has been read; `position` hears how many
    characters of the text have been read so far. Raises InputError."""
    file = display_name(name)
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith(("{", "[")):
        try:
            data = json.loads(text) if stripped else None
        except json.JSONDecodeError as exc:
            if name.endswith(".json"):
                raise InputError(
                    [Problem(Location(file, exc.lineno), f"invalid JSON: {exc.msg}")]
                ) from exc
            # Not JSON after all (a YAML flow mapping, say): read it as YAML below.
        else:
            root = _LazyRoot(text)
            docs = _objects(data, file, None, root.find, [])
            for k, doc in enumerate(docs, start=1):
                yield doc
                if position is not None and k % 1000 == 0:
                    position(len(text) * k // len(docs))
            return
    loader = FastLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.build(node)
            yield from _objects(data, file, node.start_mark.line + 1, None, [], node)
            if position is not None:
                position(node.end_mark.index)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError([Problem(Location(file, line), f"invalid YAML: {problem}")]) from exc
    finally:
        loader.dispose()


class _LazyRoot:
    """The YAML node tree of a JSON text, composed on the first line look-up."""

    def __init__(self, text: str) -> None:
        self._text: str | None = text
        self._root: yaml.Node | None = None

    def find(self, path: list[PathPart]) -> yaml.Node | None:
        if self._text is not None:
            try:
                self._root = yaml.compose(self._text, Loader=_Loader)
            except yaml.YAMLError:
                self._root = None
            self._text = None
        node = self._root
        for part in path:
            node = child_node(node, part)
        return node


Finder = Callable[[list[PathPart]], yaml.Node | None]


def _objects(
    data: Any,
    file: str,
    line: int | None,
    finder: Finder | None,
    path: list[PathPart],
    node: yaml.Node | None = None,
) -> list[Document]:
    if data is None:
        return []
    if isinstance(data, list):
        items, items_path = data, path
    elif (
        isinstance(data, dict)
        and str(data.get("kind", "")).endswith("List")
        and isinstance(data.get("items"), list)
    ):
        items, items_path = data["items"], [*path, "items"]
        node = child_node(node, "items")
    else:
        return [_document(data, file, line, finder, path, node)]
    out = []
    for i, item in enumerate(items):
        child = child_node(node, i)
        item_line = child.start_mark.line + 1 if child is not None else line
        out.extend(_objects(item, file, item_line, finder, [*items_path, i], child))
    return out


def _document(
    data: Any,
    file: str,
    line: int | None,
    finder: Finder | None,
    path: list[PathPart],
    node: yaml.Node | None,
) -> Document:
    if finder is None:
        return Document(data, file, line, node)
    return Document(data, file, line, None, lambda: finder(path))
