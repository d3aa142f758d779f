"""What a render may delete, decided in one place.

A render removes a file only when every one of these holds:

1. **Its own name.** The name is a plain file name (no folder in it, not ``.`` or ``..``, not
   absolute) that matches the render's own naming: the output's frame pattern
   (``dream_%04d.png``) in the output's folder, or the names the render gives its bookkeeping
   inside its own parts folder (``OUTPUT.parts/``: ``seg_00003.mp4``, ``state_00003.npz``,
   ``chunk_00002_main.mp4``, ``manifest.json``, its temporary names ...).
2. **In its own folder, a plain file.** It lies directly in that folder and is a regular
   file, never a folder, a FIFO or a device. A link is never followed: in an output folder
   it is left as it is; in the render's own parts folder a link at one of its own names is
   removed itself (what it points to is untouched).
3. **Vouched for.** In an output folder, where the user's own files live, the file's size
   and SHA-256 must be the ones the render recorded when it wrote it (in its checkpoint, or in
   the settings file of the finished render that ``-y`` replaces). Inside a parts folder the
   render made (its lock and settings are there), its own part names are its own, whatever
   their content: a damaged part is rendered again, never kept.

A manifest or settings file is data: the names it lists are checked by these rules like any
other name, never taken as a list of things to remove. A parts folder is removed only once
nothing is left in it; one that holds anything else stays where it is, and the render says
what it holds. Files a run creates under unique temporary names (``O_EXCL``, see
:func:`dreamvideo.media.paths.temp_path`) are its own until renamed into place; so are the
folders it makes under unique names (``tempfile.mkdtemp``: a chunk's parts on a worker),
removed whole with what the run put in them, from a scratch folder of its own naming.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from dreamvideo.text import path_text

# the unique temporary names of dreamvideo.media.paths.temp_path: ".STEM.1a2b3c4d.SUFFIX"
TEMP_NAME = r"\..*\.[0-9a-f]{8}(\.[^./]+)*"
SHOWN = 3  # names a note shows before "..."


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def vouch(path: Path) -> dict[str, Any]:
    """What a render records of a file it wrote, to know it again: its size and SHA-256."""
    return {"bytes": path.stat().st_size, "sha256": sha256_of(path)}


def _plain(name: Any) -> bool:
    """Rule 1's first half: a file name alone, nothing that leads elsewhere."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and not os.path.isabs(name)
    )


def _regular(path: Path) -> bool:
    """Rule 2: a regular file, not a link to one (``lstat``: the link is not followed)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_vouched(path: Path, entry: Any) -> bool:
    """Whether ``path`` is a regular file whose size and SHA-256 are those of ``entry``
    (``{"bytes": ..., "sha256": ...}`` as :func:`vouch` made it)."""
    if not (isinstance(entry, dict) and _regular(path)):
        return False
    size, digest = entry.get("bytes"), entry.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool) or not isinstance(digest, str):
        return False
    try:
        return path.stat().st_size == size and sha256_of(path) == digest
    except OSError:
        return False


def remove_vouched(folder: Path, name: Any, pattern: re.Pattern[str], entry: Any) -> bool:
    """Remove ``folder/name`` if rules 1-3 allow it: a plain ``name`` that ``pattern``
    matches whole, a regular file there, of the size and checksum ``entry`` records.
    Returns whether it was removed; anything else is left as it is."""
    if not (_plain(name) and pattern.fullmatch(name)):
        return False
    path = folder / name
    if not is_vouched(path, entry):
        return False
    path.unlink(missing_ok=True)
    return True


def remove_own(folder: Path, name: str, pattern: re.Pattern[str]) -> bool:
    """Remove ``folder/name`` from a parts folder the render made, if ``pattern`` (the
    render's part names) matches it and it is a regular file or a link (removed itself, never
    followed): rules 1 and 2."""
    if not (_plain(name) and pattern.fullmatch(name)):
        return False
    path = folder / name
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return False
    path.unlink(missing_ok=True)
    return True


def _remove_own_folder(folder: Path, name: str, pattern: re.Pattern[str] | None) -> bool:
    """Remove the folder ``folder/name`` whole if ``pattern`` (the unique names a run gives
    the folders it makes) matches it and it is a folder, not a link to one."""
    if pattern is None or not (_plain(name) and pattern.fullmatch(name)):
        return False
    path = folder / name
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    shutil.rmtree(path, ignore_errors=True)  # links inside are removed, never followed
    return not os.path.lexists(path)


def clear_parts(
    folder: Path, pattern: re.Pattern[str], folders: re.Pattern[str] | None = None
) -> str | None:
    """Remove a render's parts (or scratch) folder: every regular file or link in it whose
    name ``pattern`` (the render's own part names, its temporary names included) matches,
    every folder ``folders`` matches, then the folder once it is empty. Returns a note naming
    what was left when anything else is in it (the folder stays), else ``None``."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"{path_text(folder)} was left in place ({e.strerror or e})"
    left = [
        n
        for n in names
        if not (remove_own(folder, n, pattern) or _remove_own_folder(folder, n, folders))
    ]
    if left:
        shown = ", ".join(left[:SHOWN]) + (", ..." if len(left) > SHOWN else "")
        return (
            f"{path_text(folder)} was left in place: it holds files dreamvideo did not write "
            f"({shown})"
        )
    try:
        folder.rmdir()
    except OSError as e:
        return f"{path_text(folder)} was left in place ({e.strerror or e})"
    return None


def parts_pattern(*names: str) -> re.Pattern[str]:
    """The names a parts folder holds: ``names`` (regular expressions), its lock and the
    temporary names its files were written under."""
    return re.compile("|".join(f"(?:{n})" for n in (*names, "lock", TEMP_NAME)))
