"""Crash-safe, resumable frame sequences out (``-o out/frame_%04d.png``): the counterpart of
:class:`dreamvideo.media.checkpoint.SegmentedRender` for one file per frame.

Each frame is written under a unique name and renamed into place, so a frame file is always
whole. Every ``every`` frames the caller's state is saved in ``PATTERN.parts/`` with the list
of the files this render wrote; a resume goes on from the newest saved state (frames written
after it are written again, the same). ``--restart`` removes only the files that list names.
When the last frame is in, the settings go into ``PREFIXsettings.json`` beside the frames,
the sound into ``PREFIXsound.wav`` (or ``.m4a``) when asked, and the parts folder goes.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import (
    KEEP_STATES,
    State,
    first_difference,
    parts_dir,
    read_json,
)
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import Sound, file_arg, run_ffmpeg
from dreamvideo.media.paths import RenderLock, replace_into, temp_path, write_atomic
from dreamvideo.media.sequence import beside, frame_path, write_frame, written_frames
from dreamvideo.text import path_text

SETTINGS = "settings.json"


def settings_file(pattern: Path) -> Path:
    return beside(pattern, SETTINGS)


def read_settings(pattern: Path) -> dict[str, Any] | None:
    """The settings a finished sequence was made with; ``None`` without a readable file."""
    try:
        settings = json.loads(settings_file(pattern).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return settings if isinstance(settings, dict) else None


class FrameFolderRender:
    """Frames in, numbered files out, committed every ``every`` frames (see the module doc).
    The same interface as :class:`SegmentedRender`: ``state``, ``done``, ``notes``,
    :meth:`write`, :meth:`finish`, :meth:`abort`; ``first_number`` numbers the first frame."""

    def __init__(
        self,
        pattern: str | Path,
        fingerprint: dict[str, Any],
        size: tuple[int, int],
        fps: Fraction,
        encoding: Encoding,
        every: int,
        resume: bool = False,
        restart: bool = False,
        first_number: int = 0,
        sound_file: str = "none",
    ) -> None:
        self.output, self.size, self.fps, self.every = Path(pattern), size, fps, every
        self.encoding, self.first_number, self.sound_file = encoding, first_number, sound_file
        self.dir = parts_dir(self.output)
        self.state: dict[str, np.ndarray] | None = None
        self.notes: list[str] = []
        self.written: list[str] = []  # file names this render wrote, in order
        self._done = 0  # frames committed
        self._open = 0  # frames written since
        fingerprint = json.loads(json.dumps(fingerprint))
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            raise UserError(f"{path_text(self.dir)} is not a folder dreamvideo made; move it away")
        if self.dir.exists():
            self._lock = RenderLock(self.dir / "lock", self.output)
            if restart:
                self._forget()
        if resume:
            if not (self.dir / "run.json").is_file():
                raise UserError(
                    f"nothing to resume for {path_text(self.output)}: no unfinished render "
                    f"in {path_text(self.dir)}; run without --resume"
                )
            saved = read_json(self.dir / "run.json", "the render's settings")
            if saved != fingerprint:
                self._lock.release()
                raise UserError(
                    f"the unfinished render in {path_text(self.dir)} was made with other "
                    f"settings ({first_difference(saved, fingerprint)}); repeat the original "
                    "command with --resume, or use --restart"
                )
            self._load()
        elif self.dir.exists():
            self._lock.release()
            raise UserError(
                f"{path_text(self.dir)} holds an unfinished render of {path_text(self.output)};"
                " add --resume to continue it or --restart to discard it"
            )
        else:
            self.dir.mkdir()
            self._lock = RenderLock(self.dir / "lock", self.output)
            write_atomic(self.dir / "run.json", json.dumps(fingerprint, indent=1).encode())
            self._save()

    @property
    def done(self) -> int:
        return self._done

    def _forget(self) -> None:
        """--restart: remove the files this render wrote (only those) and its parts."""
        listed = read_json(self.dir / "manifest.json", "the list of written frames")
        names = listed.get("written", []) if isinstance(listed, dict) else []
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and "/" not in name and name not in ("", ".", ".."):
                (self.output.parent / name).unlink(missing_ok=True)
        old, self._lock = self._lock, None
        shutil.rmtree(self.dir)
        old.release()

    def _state_file(self, commits: int) -> Path:
        return self.dir / f"state_{commits:08d}.npz"

    def _save(self) -> None:
        manifest = {"done": self._done, "written": self.written}
        write_atomic(self.dir / "manifest.json", json.dumps(manifest).encode())

    def _load(self) -> None:
        """The newest committed state whose frames are all on disk."""
        listed = read_json(self.dir / "manifest.json", "the list of written frames")
        done = listed.get("done") if isinstance(listed, dict) else None
        written = listed.get("written") if isinstance(listed, dict) else None
        if not isinstance(done, int) or not isinstance(written, list):
            done, written = 0, []
            self.notes.append(f"the list of written frames in {path_text(self.dir)} is damaged")
        self.written = [w for w in written if isinstance(w, str)]
        while done > 0:
            names = [frame_path(self.output, self.first_number + k).name for k in range(done)]
            whole = all((self.output.parent / n).is_file() for n in names)
            try:
                with np.load(self._state_file(done)) as z:
                    state = {k: z[k] for k in z.files}
            except (OSError, ValueError, EOFError, KeyError):
                state = None
            if whole and state is not None:
                self.state = state
                break
            done = max(0, done - self.every)
            self.notes.append(f"resuming from frame {done}: the frames after it are made again")
        self._done = done

    def _commit(self, state: State) -> None:
        arrays = {
            key: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            for key, v in state.items()
        }
        self._done += self._open
        self._open = 0
        with temp_path(self._state_file(self._done)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            replace_into(tmp, self._state_file(self._done))
        self._save()
        for old in sorted(self.dir.glob("state_*.npz"))[:-KEEP_STATES]:
            old.unlink(missing_ok=True)

    def write(self, frame: np.ndarray, state: State | None) -> None:
        """Write the next frame's file; ``state`` is saved every ``every`` frames (``None``:
        a resume cannot start after this frame; the state waits for the next)."""
        path = frame_path(self.output, self.first_number + self._done + self._open)
        write_frame(path, frame)
        if path.name not in self.written:
            self.written.append(path.name)
        self._open += 1
        if state is not None and self._open >= self.every:
            self._commit(state)

    def finish(
        self, state: State, sound: Sound | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        """Commit, write the settings (and the sound, when asked) beside the frames; frames
        of the pattern that an earlier render left and this one did not write go (the
        output was replaced with ``-y``)."""
        if self._open:
            self._commit(state)
        if not self._done:
            raise UserError(
                f"no frames were rendered for {path_text(self.output)} (is the selected "
                "range past the end of the clip?)"
            )
        mine = set(self.written)
        for stale in written_frames(self.output):
            if stale.name not in mine:
                stale.unlink(missing_ok=True)
        settings = {**(metadata or {}), "frames": self._done, "first_number": self.first_number}
        write_atomic(settings_file(self.output), json.dumps(settings, indent=1).encode())
        if sound is not None and self.sound_file != "none":
            self._write_sound(sound)
        shutil.rmtree(self.dir)
        self._lock.release()

    def _write_sound(self, sound: Sound) -> None:
        target = beside(self.output, f"sound.{self.sound_file}")
        codec = (
            ["-c:a", "pcm_s16le"] if self.sound_file == "wav" else ["-c:a", "aac", "-b:a", "192k"]
        )
        with temp_path(target) as tmp:
            run_ffmpeg(
                ["-ss", f"{sound.start:.6f}", "-t", f"{self._done / float(self.fps):.6f}",
                 "-i", file_arg(sound.source), "-map", "0:a:0", *codec, file_arg(tmp)],
                f"writing {target}",
                120,
            )  # fmt: skip
            replace_into(tmp, target)

    def abort(self) -> None:
        """Keep what was committed for ``--resume``; with nothing committed, remove what this
        render wrote, so the next run is not told to resume an empty render."""
        if not self._done:
            for name in self.written:
                (self.output.parent / name).unlink(missing_ok=True)
            shutil.rmtree(self.dir, ignore_errors=True)
        else:  # the frames after the last commit are this render's too (--restart removes them)
            self._save()
        self._lock.release()

    def __enter__(self) -> FrameFolderRender:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
