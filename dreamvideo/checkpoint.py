"""Crash-safe, resumable encoding: a render is written as segments in ``OUTPUT.parts/``.

Every ``every`` frames the open segment is closed and renamed, then the caller's state (the
arrays it needs to go on, e.g. the last dreamed frame) is saved beside it. After a crash or
Ctrl-C, ``resume`` reopens the folder, drops anything not committed and hands the state back,
so the finished file has every frame exactly once. When all frames are in, the segments are
joined (stream copy) with the source's sound into the output, and the folder is removed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamvideo.encode import VideoWriter, join_segments
from dreamvideo.errors import UserError

State = Mapping[str, np.ndarray | torch.Tensor]  # tensors are copied to the host when saved


def parts_dir(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".parts")


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """A readable ``key: old -> new`` for the first setting that changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {old!r} -> {new!r}"


class SegmentedRender:
    """Frames in, a finished video out, committed to disk every ``every`` frames.

    ``fingerprint`` describes the run (settings, source, size); a resume with another one is
    refused, since the frames would not match. ``state`` is what :meth:`write` last committed
    (``None`` for a fresh render); ``done`` counts committed frames.
    """

    def __init__(self, output: str | Path, fingerprint: dict[str, Any], size: tuple[int, int],
                 fps: Fraction, codec: list[str], every: int, resume: bool = False,
                 restart: bool = False) -> None:
        self.output, self.size, self.fps, self.codec, self.every = \
            Path(output), size, fps, codec, every
        self.dir = parts_dir(output)
        self.done, self.segments = 0, 0
        self.state: dict[str, np.ndarray] | None = None
        self._writer: VideoWriter | None = None
        fingerprint = json.loads(json.dumps(fingerprint))  # what it will read back as
        run_file = self.dir / "run.json"
        if self.dir.exists() and restart:
            shutil.rmtree(self.dir)
        if resume:
            if not run_file.is_file():
                raise UserError(f"nothing to resume for {self.output}: no unfinished render in "
                                f"{self.dir}; run without --resume")
            saved = json.loads(run_file.read_text(encoding="utf-8"))
            if saved != fingerprint:
                raise UserError(f"the unfinished render in {self.dir} was made with other "
                                f"settings ({_first_difference(saved, fingerprint)}); repeat "
                                "the original command with --resume, or use --restart")
            self._load()
        elif self.dir.exists():
            raise UserError(f"{self.dir} holds an unfinished render of {self.output}; add "
                            "--resume to continue it or --restart to discard it")
        else:
            self.dir.mkdir()
            self._atomic_write(run_file, json.dumps(fingerprint, indent=1).encode())

    # ------------------------------------------------------------------ files
    def _segment(self, k: int, part: bool = False) -> Path:
        return self.dir / f"seg_{k:05d}{'.part' if part else ''}.mp4"

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _load(self) -> None:
        state_file = self.dir / "state.npz"
        if state_file.is_file():
            with np.load(state_file) as z:
                self.done, self.segments = int(z["_done"]), int(z["_segments"])
                self.state = {k: z[k] for k in z.files if not k.startswith("_")}
        for path in self.dir.glob("seg_*.mp4"):  # anything not committed is redone
            if path.name.endswith(".part.mp4") or int(path.stem[4:9]) >= self.segments:
                path.unlink()

    def _commit(self, state: State) -> None:
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        os.replace(self._segment(self.segments, part=True), self._segment(self.segments))
        self.segments += 1
        tmp = self.dir / "state.tmp.npz"
        arrays = {k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                  for k, v in state.items()}
        np.savez(tmp, _done=np.int64(self.done), _segments=np.int64(self.segments), **arrays)
        os.replace(tmp, self.dir / "state.npz")

    # ------------------------------------------------------------------ frames
    def write(self, frame: np.ndarray, state: State) -> None:
        """Append one ``(H,W,3)`` uint8 frame; ``state`` is saved if this closes a segment."""
        if self._writer is None:
            self._writer = VideoWriter(self._segment(self.segments, part=True), self.size,
                                       self.fps, self.codec)
        self._writer.write(frame)
        self.done += 1
        if self.done % self.every == 0:
            self._commit(state)

    def finish(self, state: State, audio_source: str | Path | None = None,
               audio_start: float = 0.0, metadata: dict[str, Any] | None = None) -> None:
        """Commit the last frames, join every segment with the sound into the output."""
        if self._writer is not None:
            self._commit(state)
        if self.segments == 0:
            raise UserError(f"no frames were rendered for {self.output} (is the selected "
                            "range past the end of the clip?)")
        join_segments([self._segment(k) for k in range(self.segments)], self.output,
                      audio_source, audio_start, self.done / float(self.fps),
                      {**(metadata or {}), "frames": self.done})
        shutil.rmtree(self.dir)

    def abort(self) -> None:
        """Stop ffmpeg and drop the open segment; committed ones stay for ``--resume``."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        self._segment(self.segments, part=True).unlink(missing_ok=True)
