"""The render loop shared by clips and zooms: a stepper's frames are encoded on a writer
thread into resumable segments, with a preview picture and a report after every frame."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dreamvideo import __version__
from dreamvideo.config import Config
from dreamvideo.engine.device import HostFrame
from dreamvideo.media.checkpoint import SegmentedRender, State, parts_dir
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import Sound, count_frames, read_video_metadata
from dreamvideo.media.frame_folder import FrameFolderRender, finished_files, read_settings
from dreamvideo.media.images import PREVIEW_KEY, write_image
from dreamvideo.media.owned import is_vouched
from dreamvideo.media.sequence import frame_path
from dreamvideo.render.output import open_render
from dreamvideo.render.threads import Sink


@dataclass(frozen=True)
class FrameReport:
    """What the progress display shows after each frame."""

    index: int  # source frame index (clips) or frame number (zooms)
    done: int  # frames finished in this render, resumed ones included
    expected: int  # frames expected in all (estimate)
    fresh: bool  # dreamed from scratch (first frame or scene cut)
    coverage: float  # share of pixels carried over from the previous frame
    cut: bool = False  # a scene cut restarted the dream here


@dataclass(frozen=True)
class RenderResult:
    frames: int  # frames in the finished file
    resumed_from: int  # frames that were already done when this run started
    seconds: float  # wall time of this run
    seconds_per_frame: float  # for the frames dreamed in this run
    scene_cuts: int
    size: tuple[int, int]  # (width, height)
    fps: Fraction
    notes: tuple[str, ...] = field(default=())  # what a resume had to redo, if anything


@dataclass(frozen=True)
class Frame:
    """One dreamed frame on its way to the encoder."""

    image: HostFrame | None  # (H,W,3) uint8 to write; None = kept for later (a loop's head)
    state: State | None  # what a resume needs to go on after this frame (None: cannot)
    report: FrameReport


OnFrame = Callable[[FrameReport], None]
OnStage = Callable[[str], None]  # told what is happening before the frames come
LONG_CHECK = 100_000  # frames: a schedule check over more says how far it has come
CHECK_EVERY = 5.0  # seconds between those reports


def checking(say: OnStage | None, frames: int) -> Callable[[int], None] | None:
    """The progress of a schedule check over ``frames`` frames, said every few seconds when
    the check is long enough to be noticed (``None``: nothing to say)."""
    if say is None or frames < LONG_CHECK:
        return None
    last = float("-inf")

    def report(t: int) -> None:
        nonlocal last
        if time.monotonic() - last >= CHECK_EVERY:
            last = time.monotonic()
            say(f"checking the schedules' values: frame {t:,} of {frames:,}")

    return report


def run_metadata(cfg: Config, source: str | Path | None, **extra: Any) -> dict[str, Any]:
    """What goes into an output file so the render can be reproduced."""
    return {
        "dreamvideo": __version__,
        "source": str(source) if source else None,
        "config": cfg.to_dict(),
        **extra,
    }


def file_fingerprint(path: Path | None, files: Sequence[Path] = ()) -> dict[str, Any]:
    """Identifies an input for resumes: a changed file (or frame of a sequence, ``files``)
    is not resumed into."""
    if path is None:
        return {"source": None}
    stats = [f.stat() for f in files] if files else [path.stat()]
    return {
        "source": str(path.resolve()),
        "source_bytes": sum(s.st_size for s in stats),
        "source_mtime": max(s.st_mtime for s in stats),
        **({"source_frames": len(files)} if files else {}),
    }


@dataclass(frozen=True)
class Job:
    """What the loop needs to know about one segmented render."""

    output: Path
    fingerprint: dict[str, Any]  # besides the config: source, range, size
    size: tuple[int, int]  # (width, height)
    fps: Fraction
    every: int  # frames per checkpoint
    metadata: dict[str, Any]  # written into the file's comment tag
    encoding: Encoding  # what the file is made of (see render.output.encoding_for)
    sound: Sound | None = None  # where its sound and subtitles come from
    first_note: str = ""  # said before the first frame of this run (what it will take)
    first_number: int = 0  # the number of the first frame of a frame sequence out
    # frames dreamed before a resume, from the saved state (default: frames in the file)
    resume_point: Callable[[State], int] | None = None


def finished_before(job: Job) -> RenderResult | None:
    """The result of an earlier render of exactly this job whose file is complete, if any.

    A file counts as this job's when the settings in its comment tag (a frame sequence's:
    in its settings file) are this job's; a resume of such a file then has nothing to do
    (rather than failing or rendering it again)."""
    if (parts_dir(job.output) / "run.json").exists():
        return None
    frames_out = job.encoding.frames
    if not frames_out and not job.output.is_file():
        return None
    stored = (read_settings(job.output) if frames_out else read_video_metadata(job.output)) or {}
    frames, first = stored.pop("frames", None), stored.pop("first_number", None)
    files = finished_files({"files": stored.pop("files", None)})
    if stored != json.loads(json.dumps(job.metadata)) or not isinstance(frames, int):
        return None
    if frames_out:  # every frame still as it was written
        whole = isinstance(first, int) and all(
            is_vouched(job.output.parent / (n := frame_path(job.output, first + k).name),
                       files.get(n))
            for k in range(frames)
        )  # fmt: skip
    else:
        whole = count_frames(job.output) == frames
    if not whole:
        return None
    note = f"{job.output} is already complete with these settings; nothing to resume"
    return RenderResult(frames, frames, 0.0, 0.0, 0, job.size, job.fps, (note,))


def _write(
    render: SegmentedRender | FrameFolderRender, frame: HostFrame, state: State | None
) -> None:
    render.write(frame.numpy(), state)


def _preview(path: Path, frame: HostFrame) -> None:
    write_image(path, as_rgb8(frame.numpy()), {PREVIEW_KEY: True})


def as_rgb8(frame: np.ndarray) -> np.ndarray:
    """A frame of any depth, with or without alpha, as ``(H,W,3)`` uint8 (a preview)."""
    rgb = frame[..., :3]
    if rgb.dtype == np.uint16:
        return (rgb >> 8).astype(np.uint8)
    if rgb.dtype != np.uint8:
        return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return rgb


def run(
    cfg: Config,
    job: Job,
    frames: Callable[[SegmentedRender | FrameFolderRender], Iterator[Frame]],
    *,
    resume: bool = False,
    restart: bool = False,
    preview: Path | None = None,
    on_frame: OnFrame | None = None,
    on_stage: OnStage | None = None,
    overlap: bool = True,
) -> RenderResult:
    """Encode ``frames(render)`` on a writer thread while the stepper dreams the next
    (``overlap`` False: in turn, on this thread).

    ``frames`` gets the open render (its ``state`` and ``done`` say where to go on from). The
    preview picture is refreshed at most once a second, and shows the last frame at the end.
    On any error or Ctrl-C the open segment is dropped and committed ones stay for
    ``--resume``.
    """
    if resume and (done := finished_before(job)) is not None:
        return done
    with open_render(
        cfg,
        job.output,
        {"config": cfg.identity(), **job.fingerprint},
        job.size,
        job.fps,
        job.encoding,
        job.every,
        resume,
        restart,
        job.first_number,
    ) as render:
        resumed_from, sink = render.done, Sink() if overlap else Sink(0)
        if job.resume_point is not None and render.state:
            resumed_from = job.resume_point(render.state)
        if on_stage is not None:
            on_stage(
                (f"resuming at frame {resumed_from}; " if resumed_from else "") + job.first_note
            )
        last_preview, state, count, cuts = 0.0, {}, 0, 0
        shown = unshown = None  # the last frame written to the preview, and a newer one
        t0 = time.perf_counter()
        stepper = frames(render)
        try:
            for f in stepper:
                count, cuts = count + 1, cuts + f.report.cut
                state = state if f.state is None else f.state
                if f.image is not None:
                    sink.submit(_write, render, f.image, f.state)
                    unshown = f.image
                    if preview is not None and time.monotonic() - last_preview > 1.0:
                        sink.submit(_preview, preview, f.image)
                        last_preview, shown = time.monotonic(), f.image
                if on_frame is not None:
                    on_frame(f.report)
            if preview is not None and unshown is not None and unshown is not shown:
                sink.submit(_preview, preview, unshown)  # the preview ends on the last frame
            seconds = time.perf_counter() - t0
            sink.submit(render.finish, state, job.sound, job.metadata)
            sink.drain()
        except KeyboardInterrupt:  # frames already dreamed are written before stopping
            try:
                sink.drain()
            finally:
                sink.stop()
            raise
        except BaseException:
            sink.stop()
            raise
        finally:
            stepper.close()  # type: ignore[attr-defined]
    return RenderResult(
        render.done,
        resumed_from,
        seconds,
        seconds / max(count, 1),
        cuts,
        job.size,
        job.fps,
        tuple(render.notes),
    )
