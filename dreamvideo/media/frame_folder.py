"""Crash-safe, resumable frame sequences out (``-o out/frame_%04d.png``): the counterpart of
:class:`dreamvideo.media.checkpoint.SegmentedRender` for one file per frame.

Each frame is written under a unique name in ``PATTERN.parts/`` and renamed into place, so a
frame file is always whole; its size and SHA-256 are then appended to ``written.jsonl`` in
the parts folder. Every ``every`` frames the caller's state is saved beside. A resume checks
every finished frame against its checksum and goes on from the newest saved state before the
first frame that is missing or damaged (frames after it are written again, the same).
``--restart`` removes only the frames this render wrote whose checksums still match (see
:mod:`dreamvideo.media.owned`). When the last frame is in, the settings go into
``PREFIXsettings.json`` beside the frames, with every frame's checksum (so that a later
``-y`` render knows which files were this one's), the sound into ``PREFIXsound.wav`` (or
``.m4a``) when asked, and the parts folder goes.
"""

from __future__ import annotations

import contextlib
import json
import os
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
    lock_parts,
    parts_dir,
    read_json,
    restart_parts,
    unfinished,
)
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import Sound, file_arg, run_ffmpeg
from dreamvideo.media.owned import (
    clear_parts,
    is_vouched,
    parts_pattern,
    remove_own,
    remove_vouched,
    vouch,
)
from dreamvideo.media.paths import RenderLock, replace_into, temp_path, write_atomic
from dreamvideo.media.sequence import (
    beside,
    frame_path,
    pattern_regex,
    write_frame,
    written_frames,
)
from dreamvideo.text import path_text

SETTINGS = "settings.json"
LOG = "written.jsonl"  # one line per frame written: {"file", "bytes", "sha256"}
# what a frame render writes into its parts folder (see dreamvideo.media.owned)
FRAME_PARTS = parts_pattern(r"run\.json", r"manifest\.json", r"written\.jsonl", r"state_\d{8}\.npz")
SHOWN = 3  # file names a note lists


def settings_file(pattern: Path) -> Path:
    return beside(pattern, SETTINGS)


def read_settings(pattern: Path) -> dict[str, Any] | None:
    """The settings a finished sequence was made with; ``None`` without a readable file."""
    try:
        settings = json.loads(settings_file(pattern).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return settings if isinstance(settings, dict) else None


def finished_files(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The frames a finished sequence's settings list, name -> ``{"bytes", "sha256"}`` (data
    only: a name is removed only if :mod:`dreamvideo.media.owned` allows it)."""
    files = (settings or {}).get("files")
    return files if isinstance(files, dict) else {}


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
        self.folder = self.output.parent
        self.names = pattern_regex(self.output)  # the names this render's frames may have
        self.state: dict[str, np.ndarray] | None = None
        self.notes: list[str] = []
        self.written: dict[str, dict[str, Any]] = {}  # frames this render wrote -> checksums
        self._done = 0  # frames committed
        self._open = 0  # frames written since
        # the finished render this one replaces (-y): its frames may go, where they still match
        self._replaced = finished_files(read_settings(self.output))
        fingerprint = json.loads(json.dumps(fingerprint))
        lock = lock_parts(self.dir, self.output)
        if lock is not None:
            self._lock = lock
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
            raise unfinished(self.dir, self.output)
        else:
            self.dir.mkdir()
            self._lock = RenderLock(self.dir / "lock", self.output)
            write_atomic(self.dir / "run.json", json.dumps(fingerprint, indent=1).encode())
            self._save()

    @property
    def done(self) -> int:
        return self._done

    def _name(self, k: int) -> str:
        """The file name of the ``k``-th frame of this render."""
        return frame_path(self.output, self.first_number + k).name

    def _read_log(self) -> dict[str, dict[str, Any]]:
        """The frames the log lists, name -> checksums (the newest line of each name); a line
        cut short by a crash is skipped."""
        listed: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in (self.dir / LOG).read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                    listed[entry["file"]] = entry
        return listed

    def _forget(self) -> None:
        """--restart: remove the frames this render wrote that are still as it wrote them,
        and its parts folder."""
        for name, entry in self._read_log().items():
            remove_vouched(self.folder, name, self.names, entry)
        lock, self._lock = self._lock, None
        restart_parts(self.dir, FRAME_PARTS, lock)

    def _state_file(self, commits: int) -> Path:
        return self.dir / f"state_{commits:08d}.npz"

    def _save(self) -> None:
        write_atomic(self.dir / "manifest.json", json.dumps({"done": self._done}).encode())

    def _load(self) -> None:
        """Go on from the newest saved state before the first finished frame that is
        missing or not as it was written."""
        listed = read_json(self.dir / "manifest.json", "the list of written frames")
        done = listed.get("done") if isinstance(listed, dict) else None
        if not isinstance(done, int) or isinstance(done, bool) or done < 0:
            done = 0
            self.notes.append(f"the list of written frames in {path_text(self.dir)} is damaged")
        self.written, listed_done = self._read_log(), done
        for k in range(done):
            name = self._name(k)
            if not is_vouched(self.folder / name, self.written.get(name)):
                why = "missing" if not os.path.lexists(self.folder / name) else "damaged"
                self.notes.append(f"frame {name} is {why}: it is rendered again")
                done = k
                break
        while done > 0:
            try:
                with np.load(self._state_file(done)) as z:
                    self.state = {k: z[k] for k in z.files}
                break
            except (OSError, ValueError, EOFError, KeyError):  # not kept, or cut short
                done -= 1
        if done != listed_done:
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
            remove_own(self.dir, old.name, FRAME_PARTS)

    def write(self, frame: np.ndarray, state: State | None) -> None:
        """Write the next frame's file (whole, or not at all) and list its checksum; ``state``
        is saved every ``every`` frames (``None``: a resume cannot start after this frame;
        the state waits for the next)."""
        path = self.folder / self._name(self._done + self._open)
        write_frame(path, frame, folder=self.dir)
        entry = {"file": path.name, **vouch(path)}
        with open(self.dir / LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
            log.flush()
            os.fsync(log.fileno())
        self.written[path.name] = entry
        self._open += 1
        if state is not None and self._open >= self.every:
            self._commit(state)

    def finish(
        self, state: State, sound: Sound | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        """Commit, write the settings (and the sound, when asked) beside the frames. Frames
        of the finished render this one replaced (``-y``) that this one did not write again
        go, where they are still as that render wrote them; any other file that matches the
        pattern stays, and a note names it (an editor reading the sequence would take it
        in)."""
        if self._open:
            self._commit(state)
        if not self._done:
            raise UserError(
                f"no frames were rendered for {path_text(self.output)} (is the selected "
                "range past the end of the clip?)"
            )
        mine = {self._name(k) for k in range(self._done)}
        for name, entry in self._replaced.items():
            if name not in mine:
                remove_vouched(self.folder, name, self.names, entry)
        strays = [p.name for p in written_frames(self.output) if p.name not in mine]
        if strays:
            shown = ", ".join(strays[:SHOWN]) + (", ..." if len(strays) > SHOWN else "")
            self.notes.append(
                f"{len(strays)} file(s) that match {self.output.name} were not written by this "
                f"render and are left as they are ({shown}); move them away before using "
                "the frames as one sequence"
            )
        files = {name: {k: v for k, v in self.written[name].items() if k != "file"}
                 for name in sorted(mine)}  # fmt: skip
        settings = {
            **(metadata or {}),
            "frames": self._done,
            "first_number": self.first_number,
            "files": files,
        }
        write_atomic(settings_file(self.output), json.dumps(settings, indent=1).encode())
        if sound is not None and self.sound_file != "none":
            self._write_sound(sound)
        left = clear_parts(self.dir, FRAME_PARTS)
        self.notes += [left] if left else []
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
        """Keep what was committed for ``--resume`` (the frames after the last commit are
        listed too: ``--restart`` removes them); with nothing committed, remove what this
        render wrote, so the next run is not told to resume an empty render."""
        if not self._done:
            for name, entry in self.written.items():
                remove_vouched(self.folder, name, self.names, entry)
            clear_parts(self.dir, FRAME_PARTS)
        self._lock.release()

    def __enter__(self) -> FrameFolderRender:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
