"""Output paths that cannot destroy anything: checked before any work, written under unique
temporary names in the target folder (never through a planted link), renamed into place whole,
and locked against a second render of the same file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from dreamvideo.errors import UserError
from dreamvideo.text import excerpt, path_text

# what a run reads, named for messages: ("input", path), ("guide picture (dream.guide)", path)
Inputs = Sequence[tuple[str, str | Path | None]]
PARTS = ".parts"  # the suffix of a render's folder of resumable parts beside its output
TEMP_STEM = 40  # characters of the target's name kept in its temporary names


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: any spelling, symbolic or hard links included."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would point
        return os.path.realpath(a) == os.path.realpath(b)


def check_name(path: Path, what: str, reserve: int, shown: str | None = None) -> None:
    """A file name the folder's file system takes, with ``reserve`` bytes to spare (for the
    ``.parts`` folder beside a video); checked before any work. ``shown``: how the message
    names it (default: the path)."""
    try:
        limit = os.pathconf(path.parent if str(path.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    size = len(os.fsencode(path.name))
    if size + reserve > limit:
        raise UserError(
            f"{what} {shown or path_text(path)}: the file name is {size} bytes long; this "
            f"folder takes names of at most {limit - reserve} bytes here"
        )


def check_output(
    path: str | Path,
    suffixes: Sequence[str],
    kind: str,
    inputs: Inputs = (),
    overwrite: bool = False,
    what: str = "output",
    reserve: int = 0,
) -> Path:
    """Fail before any work unless ``path`` can receive a finished ``kind`` file.

    Refused: an unknown suffix, a name too long for the folder (with ``reserve`` bytes to
    spare), a folder, a missing or unwritable folder, anything already there without
    ``overwrite`` (a link too, dangling or not: it is replaced, never followed), and every
    file of ``inputs``, with or without ``overwrite`` (a run never writes over what it reads).
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UserError(
            f"{what} {path_text(path)}: unknown {kind} type {excerpt(path.suffix or '(none)')}; "
            f"use one of {', '.join(suffixes)}"
        )
    check_name(path, what, reserve)
    for name, source in inputs:
        if source is not None and same_file(path, Path(source)):
            thing = "the input file" if name == "input" else f"the {name}"
            raise UserError(
                f"{what} {path_text(path)} is {thing} {path_text(source)}; choose another name "
                "so it is not overwritten"
            )
    try:
        if path.is_dir():
            raise UserError(
                f"{what} {path_text(path)} is a folder; give a file name such as "
                f"{path_text(path / ('dream' + suffixes[0]))}"
            )
        if not path.parent.is_dir():
            raise UserError(f"{what} folder {path_text(path.parent)} does not exist")
        taken = os.path.lexists(path)
    except OSError as e:
        raise UserError(f"{what} {path_text(path)}: {e.strerror or e}") from None
    if taken and not overwrite:
        link = " (a link)" if path.is_symlink() else ""
        raise UserError(
            f"{what} {path_text(path)} already exists{link}; add -y/--overwrite to replace it"
        )
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
        raise UserError(
            f"cannot write into folder {path_text(folder)} ({e.strerror or e})"
        ) from None


def new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file with a unique name in ``folder``. Like ``mkstemp`` (``O_EXCL``
    and no link followed) but with the usual permissions (0666 less the umask, 0644 for most
    users), since it becomes the user's output; mkstemp's are private (0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(name, flags, 0o666))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(f"no free temporary name in {folder}")


@contextlib.contextmanager
def temp_path(
    target: Path, suffix: str | None = None, folder: Path | None = None
) -> Iterator[Path]:
    """A new, empty file with a unique name beside ``target`` (or in ``folder``, on the same
    file system), never an existing file or link (a long name is cut, so the temporary one
    fits where the target does), removed on exit unless it was renamed into place."""
    name = new_file(
        target.parent if folder is None else folder,
        f".{target.stem[:TEMP_STEM]}.",
        target.suffix if suffix is None else suffix,
    )
    try:
        yield name
    finally:
        name.unlink(missing_ok=True)


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
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:  # a planted link (ELOOP), a folder, no permission
            raise UserError(
                f"{path_text(path)} cannot be the lock of {path_text(output)}'s render "
                f"({e.strerror or e}); dreamvideo did not make it: move it away"
            ) from None
        self._file: IO[bytes] = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = self._file.read().decode("ascii", "replace").strip() or "?"
            self._file.close()
            raise UserError(
                f"{path_text(output)} is being rendered by another dreamvideo run (pid "
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
    try:
        if not path.exists():
            raise UserError(f"{what} file {path_text(path)} does not exist")
        if not path.is_file():
            raise UserError(f"{what} {path_text(path)} is not a file")
    except OSError as e:  # e.g. a name too long for the file system
        raise UserError(f"{what} {path_text(path)}: {e.strerror or e}") from None
