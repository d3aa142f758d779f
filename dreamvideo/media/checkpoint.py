"""Crash-safe, resumable encoding: a render is written as segments in ``OUTPUT.parts/``.

Every ``every`` frames the open segment is closed, flushed to disk and renamed, the caller's
state (numpy arrays only) is saved beside it, and ``manifest.json`` records the segment's
frames, size and SHA-256. After a crash or Ctrl-C, ``resume`` checks every segment against
the manifest, rolls back past any that is damaged (to the newest commit whose state is
kept) and hands that state back, so the finished file has every frame exactly once. When all
frames are in, the segments are joined with the sound, the result is checked to hold every
frame, and only then is the folder removed. A lock in the folder keeps a second run out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamvideo.errors import UserError
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import Sound, VideoWriter, join_segments
from dreamvideo.media.owned import clear_parts, parts_pattern, remove_own, sha256_of
from dreamvideo.media.paths import (
    PARTS,
    RenderLock,
    new_file,
    replace_into,
    temp_path,
    write_atomic,
)
from dreamvideo.text import path_text

State = Mapping[str, np.ndarray | torch.Tensor]  # tensors are copied to the host when saved
KEEP_STATES = 2  # states of the newest commits kept, to roll back past a damaged segment
CHUNKED = "chunks.json"  # marks a parts folder of a chunked render (dreamvideo.scale.chunked)
# what a single-process render writes into its parts folder (see dreamvideo.media.owned)
SEGMENT_PARTS = parts_pattern(
    r"seg_\d{5}\.\w+", r"state_\d{5}\.npz", r"run\.json", r"manifest\.json"
)


def _count(value: Any) -> bool:
    """Whether ``value`` is a count as this module writes them (an int, not a bool, >= 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parts_dir(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + PARTS)


def first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """A readable ``key: old -> new`` for the first setting that changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {old!r} -> {new!r}"[:160]


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(
            f"cannot resume: {path} ({what}) is damaged; add --restart to render "
            "again from the start"
        ) from None


class SegmentedRender:
    """Frames in, a finished video out, committed to disk every ``every`` frames.

    ``fingerprint`` describes the run (settings, source, size); a resume with another one is
    refused, since the frames would not match. ``state`` is what :meth:`write` last committed
    (``None`` for a fresh render); ``done`` counts committed frames; ``notes`` says what a
    resume had to redo. Use as a context manager: an exception aborts (see :meth:`abort`).
    """

    def __init__(
        self,
        output: str | Path,
        fingerprint: dict[str, Any],
        size: tuple[int, int],
        fps: Fraction,
        encoding: Encoding,
        every: int,
        resume: bool = False,
        restart: bool = False,
    ) -> None:
        self.output, self.size, self.fps, self.encoding, self.every = (
            Path(output),
            size,
            fps,
            encoding,
            every,
        )
        self.dir = parts_dir(output)
        self.state: dict[str, np.ndarray] | None = None
        self.notes: list[str] = []
        self.segments: list[dict[str, Any]] = []  # manifest entries of committed segments
        self._writer: VideoWriter | None = None
        self._open_frames = 0
        fingerprint = json.loads(json.dumps(fingerprint))  # what it will read back as
        lock = lock_parts(self.dir, self.output)
        if lock is not None:
            self._lock = lock
            if restart:
                restart_parts(self.dir, SEGMENT_PARTS, self._lock)
        if resume:
            if (self.dir / CHUNKED).is_file():
                self._lock.release()
                raise UserError(
                    f"{self.dir} holds a chunked render (made with --workers or --lanes); "
                    "resume it with --workers N or --lanes N (any number), or use --restart"
                )
            if not (self.dir / "run.json").is_file():
                raise UserError(
                    f"nothing to resume for {self.output}: no unfinished render "
                    f"in {self.dir}; run without --resume"
                )
            saved = read_json(self.dir / "run.json", "the render's settings")
            if saved != fingerprint:
                raise UserError(
                    f"the unfinished render in {self.dir} was made with other "
                    f"settings ({first_difference(saved, fingerprint)}); repeat "
                    "the original command with --resume, or use --restart"
                )
            self._load()
        elif self.dir.exists():
            self._lock.release()
            raise unfinished(self.dir, self.output)
        else:
            self.dir.mkdir()
            self._lock = RenderLock(self.dir / "lock", self.output)
            write_atomic(self.dir / "run.json", json.dumps(fingerprint, indent=1).encode())
            self._save_manifest()

    @property
    def done(self) -> int:
        """Frames committed so far."""
        return sum(s["frames"] for s in self.segments)

    # ------------------------------------------------------------------ files
    def _segment(self, k: int) -> Path:
        return self.dir / f"seg_{k:05d}{self.encoding.segment_suffix}"

    def _state_file(self, commits: int) -> Path:
        return self.dir / f"state_{commits:05d}.npz"

    def _save_manifest(self) -> None:
        write_atomic(
            self.dir / "manifest.json", json.dumps({"segments": self.segments}, indent=1).encode()
        )

    def _damage(self, k: int, entry: Any) -> str | None:
        """Why segment ``k`` does not match its manifest entry, or ``None``. An entry someone
        edited (a value of the wrong type, a key missing) counts as damage too."""
        path = self._segment(k)
        if not (
            isinstance(entry, dict)
            and entry.get("file") == path.name
            and _count(entry.get("frames"))
            and _count(entry.get("bytes"))
            and isinstance(entry.get("sha256"), str)
        ):
            return "not listed properly in the manifest"
        if not path.is_file():
            return "missing"
        if path.stat().st_size != entry.get("bytes"):
            return f"{path.stat().st_size} bytes instead of {entry.get('bytes')}"
        if sha256_of(path) != entry.get("sha256"):
            return "its checksum does not match"
        return None

    def _load(self) -> None:
        """Keep the longest run of intact segments whose closing state can be loaded."""
        listed = read_json(self.dir / "manifest.json", "the list of finished segments")
        entries = listed.get("segments") if isinstance(listed, dict) else None
        if not isinstance(entries, list):
            self.notes.append(f"the list of finished segments in {self.dir} is damaged")
            entries = []
        good = 0
        for k, entry in enumerate(entries):
            why = self._damage(k, entry)
            if why is not None:
                self.notes.append(f"segment {k} in {self.dir} is damaged ({why})")
                break
            good += 1
        keep = good
        while keep > 0:
            try:
                with np.load(self._state_file(keep)) as z:
                    self.state = {k: z[k] for k in z.files}
                break
            except (OSError, ValueError, EOFError, KeyError):  # missing, empty or cut short
                keep -= 1
        self.segments = entries[:keep]
        if keep < len(entries):
            self.notes.append(
                f"resuming from frame {self.done}: the frames after it are rendered again"
            )
        for path in self.dir.iterdir():  # every part not kept is redone
            if not self._kept(path) and path.name.startswith(("seg_", "state_")):
                remove_own(self.dir, path.name, SEGMENT_PARTS)
        self._save_manifest()

    def _kept(self, path: Path) -> bool:
        n = len(self.segments)
        return path in {self._segment(k) for k in range(n)} | {self._state_file(n)}

    def _commit(self, state: State) -> None:
        assert self._writer is not None
        self._writer.close()
        writer, self._writer = self._writer, None
        k = len(self.segments)
        replace_into(writer.path, self._segment(k))
        arrays = {
            key: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            for key, v in state.items()
        }
        with temp_path(self._state_file(k + 1)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            replace_into(tmp, self._state_file(k + 1))
        self.segments.append(
            {
                "file": self._segment(k).name,
                "frames": self._open_frames,
                "bytes": self._segment(k).stat().st_size,
                "sha256": sha256_of(self._segment(k)),
            }
        )
        self._open_frames = 0
        self._save_manifest()
        remove_own(self.dir, self._state_file(k + 1 - KEEP_STATES).name, SEGMENT_PARTS)

    # ------------------------------------------------------------------ frames
    def write(self, frame: np.ndarray, state: State | None) -> None:
        """Append one frame (RGB or RGBA, 8 or 16 bits, as the encoding says); ``state`` is
        saved if this closes a segment (``None``: a resume cannot start after this frame, so
        the segment stays open)."""
        if self._writer is None:
            e = self.encoding
            path = new_file(self.dir, ".open.", e.segment_suffix)  # ours alone: made O_EXCL
            self._writer = VideoWriter(path, self.size, self.fps, e.args, pix_fmt=e.pix_fmt)
        self._writer.write(frame)
        self._open_frames += 1
        if state is not None and self._open_frames >= self.every:
            self._commit(state)

    def finish(
        self, state: State, sound: Sound | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        """Commit the last frames, join every segment with the sound into the output; what
        the output had to leave out joins :attr:`notes`."""
        if self._writer is not None:
            self._commit(state)
        if not self.segments:
            raise UserError(
                f"no frames were rendered for {self.output} (is the selected "
                "range past the end of the clip?)"
            )
        self.notes += join_segments(
            [self._segment(k) for k in range(len(self.segments))],
            self.output,
            self.done,
            sound if self.encoding.sound else None,
            self.done / float(self.fps),
            {**(metadata or {}), "frames": self.done},
            self.encoding.final,
            self.fps,
        )
        left = clear_parts(self.dir, SEGMENT_PARTS)
        self.notes += [left] if left else []
        self._lock.release()

    def abort(self) -> None:
        """Stop ffmpeg and drop the open segment; committed ones stay for ``--resume``.

        With nothing committed, nothing is worth keeping: the folder goes too, so the next
        run is not told to resume an empty render.
        """
        if self._writer is not None:
            self._writer.abort()
            self._writer.path.unlink(missing_ok=True)
            self._writer = None
        if not self.segments:
            clear_parts(self.dir, SEGMENT_PARTS)
        self._lock.release()

    def __enter__(self) -> SegmentedRender:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


def lock_parts(folder: Path, output: Path) -> RenderLock | None:
    """The lock of the unfinished render in the parts folder ``folder`` of ``output``, or
    ``None`` where there is no such folder. A link, a file, or a folder that holds no
    unfinished render at that name is one line (nothing is written into it)."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(f"{path_text(folder)} is not a folder dreamvideo made; move it away first")
    if not folder.exists():
        return None
    if not any((folder / name).is_file() for name in ("run.json", CHUNKED)):
        raise unfinished(folder, output)
    return RenderLock(folder / "lock", output)


def unfinished(folder: Path, output: Path) -> UserError:
    """The one line for a parts folder found where a new render would begin: an unfinished
    render to resume or restart, or a folder in the way (what a render left because it held
    files dreamvideo did not write)."""
    if any((folder / name).is_file() for name in ("run.json", CHUNKED)):
        return UserError(
            f"{path_text(folder)} holds an unfinished render of {path_text(output)}; add "
            "--resume to continue it or --restart to discard it"
        )
    try:
        held = ", ".join(sorted(os.listdir(folder))[:3]) or "nothing"
    except OSError:
        held = "?"
    return UserError(
        f"{path_text(folder)} is in the way of {path_text(output)}'s render: it holds no "
        f"unfinished render ({held}); move it away"
    )


def restart_parts(folder: Path, own: re.Pattern[str], lock: RenderLock) -> None:
    """``--restart``: remove the unfinished render's parts folder (its own parts only, see
    :mod:`dreamvideo.media.owned`), releasing ``lock``; a folder that still holds other files
    is one line naming them (the new render needs the folder to itself)."""
    try:
        left = clear_parts(folder, own)
    finally:
        lock.release()
    if left:
        raise UserError(f"cannot restart: {left}; move them away first")
