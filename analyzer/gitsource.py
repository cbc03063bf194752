"""Manifests as they were at a git revision: the `--git REV` source of `kubefence diff`.

`PATH` is a file or folder of a git working tree (it need not exist in the working tree any
more, as long as its parent folder does). Its files at `REV` are listed with
`git ls-tree -r --name-only REV -- PATH` and read with `git show REV:file`; a folder gives its
`*.yaml`, `*.yml` and `*.json` files in sorted order, as `policy.documents.expand_paths` does
for a folder on disk. The result feeds `policy.loader.load_texts`; each source is named
`REV:path` (path relative to the repository's top), so messages say where a problem was.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from policy.documents import SUFFIXES
from policy.errors import KubefenceError


class GitSourceError(KubefenceError):
    """PATH is not in a git repository, REV names no commit, or git cannot be run."""


def git_sources(path: str, rev: str) -> list[tuple[str, str, bool]]:
    """(name, text, found in a folder) for the manifests of `path` at revision `rev`."""
    start = _existing_folder(Path(path))
    top = _git(start, "rev-parse", "--show-toplevel").strip()
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(top))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise GitSourceError(f"{path}: not inside the git repository at {top}")
    rel = "" if rel == os.curdir else Path(rel).as_posix()
    if not _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", ok=(0, 1)):
        raise GitSourceError(f"{rev}: unknown revision in {top}")
    listed = _git(top, "ls-tree", "-r", "--name-only", "--full-name", "-z", rev, "--", rel or ".")
    files = sorted(f for f in listed.split("\0") if f)
    if not files:
        raise GitSourceError(f"{path}: no such file or folder at {rev}")
    if files == [rel]:  # a file, read whatever its name
        return [(f"{rev}:{rel}", _show(top, rev, rel), False)]
    return [(f"{rev}:{f}", _show(top, rev, f), True) for f in files if f.endswith(SUFFIXES)]


def _existing_folder(path: Path) -> Path:
    """The folder git is run in: PATH if it is one, else its nearest existing parent."""
    here = path if path.is_dir() else path.parent
    while not here.is_dir() and here != here.parent:
        here = here.parent
    return here


def _show(top: str, rev: str, file: str) -> str:
    data = _git_bytes(top, "show", f"{rev}:{file}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GitSourceError(f"{rev}:{file}: cannot read: not UTF-8 text") from exc


def _git(cwd: Path | str, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    """Run git; its output as text, or '' for an accepted non-zero exit."""
    return _git_bytes(cwd, *args, ok=ok).decode("utf-8", errors="replace")


def _git_bytes(cwd: Path | str, *args: str, ok: tuple[int, ...] = (0,)) -> bytes:
    cmd = ["git", "-C", str(cwd), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as exc:
        raise GitSourceError(f"cannot run git: {exc}") from exc
    if done.returncode in ok and done.returncode != 0:
        return b""
    if done.returncode != 0:
        message = _first_line(done.stderr) or f"exit status {done.returncode}"
        raise GitSourceError(f"git {args[0]} failed in {cwd}: {message}") from (
            subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
        )
    return done.stdout


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", errors="replace").strip().splitlines()
    return lines[0].removeprefix("fatal: ").strip() if lines else ""
