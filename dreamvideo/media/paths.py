"""Output paths that cannot destroy anything: checked before any work, written under unique
temporary names in the target folder (never through a planted link), renamed into place whole,
and locked against a second render of the same file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from dreamvideo.errors import UserError


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: any spelling, symbolic or hard links included."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would point
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(
    path: str | Path,
    suffixes: Sequence[str],
    kind: str,
    inputs: Sequence[str | Path | None] = (),
    overwrite: bool = False,
    what: str = "output",
) -> Path:
    """Fail before any work unless ``path`` can receive a finished ``kind`` file.

    Refused: an unknown suffix, a folder, a missing or unwritable folder, an existing file
    without ``overwrite``, and any of ``inputs`` (a render must never write over its source).
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UserError(
            f"{what} {path}: unknown {kind} type {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(suffixes)}"
        )
    for source in inputs:
        if source is not None and same_file(path, Path(source)):
            raise UserError(
                f"{what} {path} is the input file {source}; choose another name "
                "so the input is not overwritten"
            )
    if path.is_dir():
        raise UserError(
            f"{what} {path} is a folder; give a file name such as {path / ('dream' + suffixes[0])}"
        )
    if not path.parent.is_dir():
        raise UserError(f"{what} folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise UserError(f"{what} {path} already exists; add -y/--overwrite to replace it")
    check_writable(path.parent)
    return path


def check_writable(folder: Path) -> None:
    """Create and remove a file in ``folder``: the one test that also holds for root and for
    read-only file systems (``os.access`` says yes to root everywhere)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".dreamvideo-check-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise UserError(f"cannot write into folder {folder} ({e.strerror or e})") from None


@contextlib.contextmanager
def temp_path(target: Path, suffix: str | None = None) -> Iterator[Path]:
    """A new, empty file with a unique name beside ``target`` (``O_EXCL``: never an existing
    file or link), removed on exit unless it was renamed into place."""
    fd, name = tempfile.mkstemp(
        dir=target.parent,
        prefix=f".{target.stem}.",
        suffix=target.suffix if suffix is None else suffix,
    )
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_into(tmp: Path, target: Path) -> None:
    """Flush ``tmp`` to disk and rename it over ``target`` (atomic within a folder)."""
    _fsync(tmp)
    os.replace(tmp, target)
    with contextlib.suppress(OSError):  # the rename itself reaches the disk with the folder
        _fsync(target.parent)


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all."""
    with temp_path(target) as tmp:
        tmp.write_bytes(data)
        replace_into(tmp, target)


class RenderLock:
    """An exclusive ``flock`` on ``path`` naming the holder's pid; released when the process
    ends, so a crash never leaves a stale lock."""

    def __init__(self, path: Path, output: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        self._file: IO[bytes] = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = self._file.read().decode("ascii", "replace").strip() or "?"
            self._file.close()
            raise UserError(
                f"{output} is being rendered by another dreamvideo run (pid "
                f"{other}); wait for it or stop it first"
            ) from None
        self._file.truncate(0)
        self._file.write(str(os.getpid()).encode())
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()


def check_input(path: Path, what: str = "input") -> None:
    """A readable file at ``path``, or one line naming it (``what``: the option or key)."""
    if not path.exists():
        raise UserError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a file")
