"""Live dreaming: the newest frame of a camera or stream is dreamed as it comes, steadily (the
clip stepper carries the dream along the motion between the frames it actually dreams), and
shown, served and recorded while the source plays.

The dream is sized to a budget: when it falls behind the target rate it lowers the
touch-ups' steps, then their size (``video.dream_scale``), within bounds of the preset, and
says so once. A recording holds the dreamed frames at the target rate in real time (a frame
is repeated while the next one is dreamed), written to a temporary file that is moved into
place when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from dreamvideo.config import MAX_FPS, MIN_FPS, Config, VideoConfig
from dreamvideo.engine.ascent import AscentParams
from dreamvideo.engine.device import to_tensor, to_uint8
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.engine.masks import FrameMasks
from dreamvideo.errors import UserError
from dreamvideo.media.codecs import Encoding
from dreamvideo.media.ffmpeg import (
    EncodeError,
    Sound,
    VideoWriter,
    check_video_output,
    count_frames,
    join_segments,
)
from dreamvideo.media.live import (
    Broadcast,
    Captured,
    Latest,
    check_source,
    describe,
    file_sound,
    stream_args,
)
from dreamvideo.media.mattes import Mattes, mattes_for
from dreamvideo.media.paths import temp_path
from dreamvideo.motion.clip import Carry, ClipSteps, Tracked, step_clip
from dreamvideo.motion.flow import MIN_FLOW_SIDE, track
from dreamvideo.render.clip import clip_steps, flow_function
from dreamvideo.render.network import dreamer_for
from dreamvideo.render.output import encoding_for
from dreamvideo.stops import Stopped, shielded

REPORT_EVERY = 3.0  # seconds between live lines
QUIET_SECONDS = 20.0  # a source that sends nothing this long has ended (or never began)
WINDOW = 12  # dreamed frames over which the rate is measured
QUICK = 3  # frames enough to judge a rate under half the target
MIN_SCALE = 0.5  # the budget lowers the touch-ups' size to this share of the preset's at most


@dataclass(frozen=True)
class LiveStats:
    """What the live line and the page's corner show."""

    seconds: float  # since the first dreamed frame (to the end of the run, in a result)
    dreamed: int
    fps: float  # dreamed frames per second over the last few
    dropped: int  # frames of the source never dreamed (a newer one came first)
    latency: float  # median seconds from capture to output, over the last few frames
    written: int = 0  # frames recorded (and pushed), at the target rate

    def line(self) -> str:
        return (
            f"live {self.seconds:.0f} s: {self.fps:.1f} dreamed frames/s, {self.dropped} "
            f"dropped, latency {self.latency * 1000:.0f} ms"
            + (f", {self.written} frames recorded" if self.written else "")
        )


@dataclass(frozen=True)
class LiveResult:
    stats: LiveStats
    size: tuple[int, int]  # (0, 0) when stopped before the first frame came
    output: Path | None
    notes: tuple[str, ...] = ()
    start: float = 0.0  # seconds into the source of the first dreamed (and recorded) frame
    stopped: int = 0  # the signal that ended the run (Ctrl-C: SIGINT), 0 when none did
    first: float = 0.0  # seconds from the first frame dreamed coming in to its dream coming out


def live_size(frame: np.ndarray, width: int | None) -> tuple[int, int]:
    """(w, h) the live frames are dreamed at: ``width`` wide (even height), or as they come;
    frames too small to follow with optical flow are one line."""
    h, w = frame.shape[:2]
    size = (w, h) if not width else (width, max(2, 2 * round(h * width / w / 2)))
    if min(size) < MIN_FLOW_SIDE:
        raise UserError(
            f"live frames of {size[0]}x{size[1]} are too small to follow with optical flow; "
            f"dream at least {MIN_FLOW_SIDE} pixels on each side (--width)"
        )
    return size


def per_second(times: deque[float]) -> float:
    """Frames per second over the ``times`` (seconds, ascending) they were made at."""
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / max(times[-1] - times[0], 1e-9)


def live_steps(video: VideoConfig, full: AscentParams, color_match: str = "none") -> ClipSteps:
    """The clip stepper's settings for live frames (:func:`dreamvideo.render.clip.clip_steps`),
    a fresh dream spread over the frames after it, a touch-up's iterations at a time: the
    first picture comes out at once, and the dream grows as the frames come."""
    steps = clip_steps(video, full, color_match)
    return replace(steps, ramp=steps.later.iterations)


class Budget:
    """Keeps the dream inside a target rate: a fresh dream (the first frame, a cut) is
    spread over the frames after it (``ClipSteps.ramp``), and the touch-ups' iterations are
    lowered to 1, then their size to :data:`MIN_SCALE` of the preset's, when the measured
    rate falls under 90 % of the target."""

    def __init__(self, steps: ClipSteps, fps: float) -> None:
        self.steps, self.fps = steps, fps
        self.floor = steps.dream_scale * MIN_SCALE
        self.times: deque[float] = deque(maxlen=WINDOW)
        self.notes: list[str] = []

    def tick(self, now: float, fresh: bool) -> None:
        """A frame was dreamed at ``now``; a full dream (a first frame, a scene cut) starts
        the measure afresh instead of counting as falling behind."""
        if fresh:
            self.times.clear()
        self.times.append(now)

    def rate(self) -> float:
        return per_second(self.times)

    def adjust(self) -> str | None:
        """A lighter dream when behind, with a line saying so: judged on the window of the
        last frames, or on a few where each takes longer than two frames' time (a loaded
        machine: waiting for the whole window there would take many seconds)."""
        if not self.fps or len(self.times) < 2 or self.rate() >= 0.9 * self.fps:
            return None
        far_behind = self.rate() < self.fps / 2 and len(self.times) >= QUICK
        if len(self.times) < WINDOW and not far_behind:
            return None
        later = self.steps.later
        if later.iterations > 1:
            fewer = later.iterations - 1
            self.steps = replace(self.steps, later=replace(later, iterations=fewer), ramp=fewer)
            what = f"touch-ups of {fewer} step(s)"
        elif self.steps.dream_scale > self.floor + 1e-9:
            scale = max(self.floor, self.steps.dream_scale * 0.8)
            self.steps = replace(self.steps, dream_scale=scale)
            what = f"touch-ups at {scale:.2f} of the size"
        else:
            return None
        note = f"behind the {self.fps:g} frames/s target ({self.rate():.1f}): {what}"
        self.times.clear()
        self.notes.append(note)
        return note


class LiveStepper:
    """Dreams a live picture frame after frame: each frame follows the motion from the last
    one dreamed (the clip stepper, :func:`dreamvideo.motion.clip.step_clip`). Used by
    :func:`run_live` and the studio's Live tab."""

    def __init__(self, dreamer: Dreamer, video: VideoConfig) -> None:
        self.dreamer, self.video = dreamer, video
        self.flow = flow_function(video, dreamer.device)
        self.prev: np.ndarray | None = None  # (H,W,3) uint8, the last frame dreamed
        self.carry: Carry | None = None

    def dream(
        self, rgb: np.ndarray, steps: ClipSteps, masks: FrameMasks | None = None
    ) -> tuple[np.ndarray, bool]:
        """The dream of ``rgb`` ``(H,W,3)`` uint8 (``masks``: its mask and regions), and
        whether it was dreamed afresh (the first frame, a cut, a new size)."""
        device, tracked = self.dreamer.device, None
        if self.prev is not None and self.prev.shape == rgb.shape:
            tr = track(self.prev, rgb, self.flow, self.video.occlusion, self.video.flow_scale)
            tracked = Tracked(
                torch.from_numpy(tr.flow).to(device),
                torch.from_numpy(tr.mask).to(device),
                tr.coverage,
            )
        cur = to_tensor(rgb, device)
        out, self.carry, fresh = step_clip(
            self.dreamer, steps, rgb, cur, tracked, self.carry, masks
        )
        self.prev = rgb
        return to_uint8(out), fresh

    def restart(self, dreamer: Dreamer) -> None:
        """Go on with ``dreamer`` (another objective or strength) from a full dream."""
        self.dreamer, self.prev, self.carry = dreamer, None, None


def live_mattes(cfg: Config, size: tuple[int, int], source: str) -> Mattes | None:
    """The mask and regions of ``cfg.dream`` for live frames of ``size``: keys follow each
    frame, pictures stay, a matte clip plays along by frame number and starts again at its
    end; ``None`` without a mask or regions."""
    d = cfg.dream
    return mattes_for(d.mask, d.regions, size, invert=d.mask_invert, feather=d.mask_feather,
                      input=describe(source), loop=True)  # fmt: skip


def recording_encoding(cfg: Config, output: Path, size: tuple[int, int]) -> Encoding:
    """How a live recording of frames of ``size`` is encoded: as ``encode`` says for the
    output's container, at the encoder's ``veryfast`` speed (it is made in real time), into
    a Matroska segment that plays up to its last frame however the run ends (an MP4 cut
    short has no index and does not play); the output's own container comes at the join."""
    e = encoding_for(cfg.override("encode", preset="veryfast"), output, size, sound=True)
    if e.segment_suffix == ".mkv":
        return e
    args, final = list(e.args), ["-c:v", "copy"]
    if "-tag:v" in args:  # an MP4 tag (hvc1) goes on at the join: Matroska has none
        k = args.index("-tag:v")
        final += args[k : k + 2]
        del args[k : k + 2]
    return replace(e, args=tuple(args), segment_suffix=".mkv", final=e.final or tuple(final))


def finish_recording(
    segment: Path, output: Path, fps: float, encoding: Encoding, sound: Sound | None
) -> tuple[int, list[str]]:
    """The recorded ``segment`` (at ``fps``) made into ``output`` with the source's
    ``sound`` from its start, for as long as the picture: the frames it holds and what was
    left out, said once. Should the sound not go in, the picture alone is kept."""
    try:
        frames = count_frames(segment)
    except EncodeError:  # the encoder was stopped before it wrote anything
        frames = 0
    if not frames:
        return 0, ["the recording's encoder stopped before it wrote a frame"]
    duration = frames / fps
    try:
        notes = join_segments([segment], output, frames, sound, duration, final=encoding.final)
    except EncodeError as e:
        if sound is None:
            raise
        notes = join_segments([segment], output, frames, None, duration, final=encoding.final)
        notes = [*notes, f"the sound could not be added, the picture is kept alone ({e})"]
    return frames, notes


def check_live(
    cfg: Config,
    source: str,
    output: Path | None,
    fps: float,
    width: int | None,
    overwrite: bool,
) -> tuple[Config, Path | None]:
    """The settings and output of a live run, checked before anything opens: the width's
    bounds (those of ``video.width``), the rate's, and an output that is none of the files
    the run reads (the source, the guide, a mask or region matte), as for ``video``."""
    if width:  # the bounds of video.width, in its words (0 or None: as the frames come)
        cfg = cfg.override("video", width=width)
    if not MIN_FPS <= fps <= MAX_FPS:  # NaN fails it too
        raise UserError(
            f"--fps {fps:g}: give a rate from {MIN_FPS:g} to {MAX_FPS:g} frames per second"
        )
    if output is not None:
        reads = (("input", Path(source)), *cfg.reads())
        output = check_video_output(Path(output), reads, overwrite)
        recording_encoding(cfg, output, (16, 16))  # a codec the container lacks is said now
    return cfg, output


class _Outputs:
    """Where a live run's dreamed pictures go: the page (served), a recording at the target
    rate (the dream held while the next is dreamed), a pushed stream. An output whose
    encoder fails is dropped with a note; what it wrote is kept."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.server: Broadcast | None = None
        self.writer: VideoWriter | None = None
        self.pusher: VideoWriter | None = None
        self.encoding: Encoding | None = None
        self.written = 0  # frames recorded (and pushed)
        self.notes: list[str] = []

    def open(
        self, cfg: Config, size: tuple[int, int], record: Path | None, output: Path | None,
        push: list[str] | None, stream: str | None, say: Callable[[str], None],
    ) -> None:  # fmt: skip
        """Start the encoders for frames of ``size``: the recording into the temporary
        segment ``record`` (of ``output``), the push to ``stream`` with ``push``'s args."""
        rate = Fraction(self.fps).limit_denominator(1001)
        if record is not None and output is not None:
            self.encoding = recording_encoding(cfg, output, size)
            self.notes.extend(self.encoding.notes)
            self.writer = VideoWriter(record, size, rate, self.encoding.args)
        if push is not None and stream is not None:
            self.pusher = VideoWriter(stream, size, rate, push, url=True)
            say(f"pushing the dream to {stream}")

    def show(self, picture: np.ndarray, due: int) -> None:
        """``picture`` on the page now, and recorded and pushed until ``due`` frames are."""
        if self.server is not None:
            self.server.publish(picture)
        while (self.writer or self.pusher) and self.written < due:
            for name in ("writer", "pusher"):
                out = getattr(self, name)
                if out is None:
                    continue
                try:
                    out.write(picture)
                except EncodeError as e:  # what it wrote stays; the run goes on without it
                    setattr(self, name, None)
                    self.notes.append(f"the {'recording' if name == 'writer' else 'push'} "
                                      f"stopped: {e}")  # fmt: skip
            self.written += 1

    def close(self) -> None:
        """Finish the encoders (each ends its file when its input ends) and the page."""
        for name in ("pusher", "writer"):
            out = getattr(self, name)
            if out is not None:
                try:
                    out.close()
                except EncodeError as e:
                    self.notes.append(f"the {'recording' if name == 'writer' else 'push'} "
                                      f"did not end cleanly: {e}")  # fmt: skip
        if self.server is not None:
            self.server.close()


def run_live(
    cfg: Config,
    source: str,
    *,
    output: Path | None = None,
    serve: tuple[str, int] | None = None,
    stream: str | None = None,
    seconds: float | None = None,
    frames: int | None = None,
    fps: float = 15.0,
    width: int | None = 256,
    realtime: bool = True,
    overwrite: bool = False,
    quiet: float = QUIET_SECONDS,
    dreamer: Dreamer | None = None,
    on_stats: Callable[[LiveStats], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_serve: Callable[[tuple[str, int]], None] | None = None,
    on_frame: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> LiveResult:
    """Dream ``source`` (see :class:`dreamvideo.media.live.Latest`) live until it ends, for
    ``seconds`` (wall clock, from when the source starts opening) or ``frames`` dreamed
    frames, until it sends nothing for ``quiet`` seconds, or until Ctrl-C (or SIGTERM,
    SIGHUP); ``output``: a recording at
    ``fps`` with the source's sound where it has one (``encode.audio``; a clip played at its
    own rate, a stream), kept however the run ends; ``stream``: a URL the dream is pushed to
    at ``fps`` (udp://, srt://, tcp://, rtmp://); ``serve``: (host, port) of the page and
    MJPEG stream (``on_serve`` hears the address, port 0 picks one); ``on_frame(source,
    dream)``: each dreamed frame, ``(H,W,3)`` uint8, beside the source frame it was dreamed
    from."""
    say = on_stage or (lambda text: None)
    cfg, output = check_live(cfg, source, output, fps, width, overwrite)
    push = stream_args(stream, fps) if stream is not None else None
    if not check_source(source):  # a stream or camera may take a while to open
        say(f"opening {describe(source)}")
    dreamer = dreamer_for(cfg.dream, dreamer)
    run = _LiveRun(cfg, source, dreamer, fps, width, say)
    with contextlib.ExitStack() as files:
        record = files.enter_context(temp_path(output, ".mkv")) if output is not None else None
        # a sound is kept where the recording runs on the source's clock
        keep_sound = output is not None and cfg.encode.audio and realtime
        side = files.enter_context(temp_path(output, ".sound.mka")) if keep_sound else None
        if output is not None and cfg.encode.audio and not realtime and run.clip_has_sound():
            run.notes.append("no sound is recorded with --every-frame (the recording keeps the "
                             "wall clock, not the clip's)")  # fmt: skip
        try:
            if serve is not None:
                run.outputs.server = Broadcast(*serve, run.figures)
                if on_serve is not None:
                    on_serve(run.outputs.server.address)  # the page is up while it opens
            run.open(realtime, side, quiet)
            run.loop(seconds, frames, quiet, on_stats, on_frame,
                     lambda size: run.outputs.open(cfg, size, record, output, push, stream,
                                                   say))  # fmt: skip
        except KeyboardInterrupt as e:  # Ctrl-C or a signal ends the run as the source's end
            run.notes.append(e.said if isinstance(e, Stopped) else "stopped with Ctrl-C")
            run.stopped = e.signum if isinstance(e, Stopped) else signal.SIGINT
        finally:
            with shielded():  # what was dreamed is kept, whatever signal comes now
                written = run.finish(record, output, fps)
    if run.size is None and not run.stopped:
        raise UserError(f"{describe(source)} sent no frames; is it playing?")
    stats = replace(run.final, written=written)
    notes = (*run.budget.notes, *run.notes)
    return LiveResult(stats, run.size or (0, 0), output, notes, run.start, run.stopped, run.first)


class _LiveRun:
    """One live run's state and steps (see :func:`run_live`)."""

    def __init__(
        self, cfg: Config, source: str, dreamer: Dreamer, fps: float, width: int | None,
        say: Callable[[str], None],
    ) -> None:  # fmt: skip
        self.cfg, self.source, self.dreamer, self.fps, self.width = cfg, source, dreamer, fps, width
        self.say = say
        self.budget = Budget(live_steps(cfg.video, dreamer.params, cfg.dream.color_match), fps)
        self.stepper = LiveStepper(dreamer, cfg.video)
        self.outputs = _Outputs(fps)
        self.reader: Latest | None = None
        self.size: tuple[int, int] | None = None
        self.mattes: Mattes | None = None
        self.notes: list[str] = []  # besides the budget's own
        self.latencies: deque[float] = deque(maxlen=WINDOW)
        self.dreamt: deque[float] = deque(maxlen=WINDOW)  # the budget's measure restarts at cuts
        self.dreamed = 0
        self.t0: float | None = None  # the first dreamed frame
        self.start = 0.0  # seconds into the source of the first dreamed (and recorded) frame
        self.stopped = 0  # the signal that ended the run
        self.first = 0.0  # the first picture's latency
        self.began = time.monotonic()
        self.final = LiveStats(0.0, 0, 0.0, 0, 0.0)  # the figures when the run ended

    def clip_has_sound(self) -> bool:
        return check_source(self.source) and file_sound(Path(self.source)) is not None

    def stats(self) -> LiveStats:
        return LiveStats(
            0.0 if self.t0 is None else time.monotonic() - self.t0,
            self.dreamed,
            per_second(self.dreamt),
            self.reader.dropped if self.reader is not None else 0,
            statistics.median(self.latencies) if self.latencies else 0.0,
            self.outputs.written,
        )

    def figures(self) -> dict[str, float]:
        s = self.stats()
        return {"fps": s.fps, "dropped": s.dropped, "latency": s.latency, "dreamed": s.dreamed}

    def open(self, realtime: bool, side: Path | None, quiet: float) -> None:
        self.began = time.monotonic()  # --seconds counts from here: opening is part of it
        self.reader = Latest(self.source, paced=realtime, sound=side, quiet=quiet, say=self.say)

    def loop(
        self,
        seconds: float | None,
        frames: int | None,
        quiet: float,
        on_stats: Callable[[LiveStats], None] | None,
        on_frame: Callable[[np.ndarray, np.ndarray], None] | None,
        on_size: Callable[[tuple[int, int]], None],
    ) -> None:
        """Dream the newest frame, again and again, until the source ends, goes quiet for
        ``quiet`` seconds, ``seconds`` have passed since the run began or ``frames`` are
        dreamed."""
        assert self.reader is not None
        began = self.began
        deadline = began + seconds if seconds is not None else float("inf")
        last_report = last_frame = began
        while (left := deadline - time.monotonic()) > 0:
            got = self.reader.take(min(quiet, left))
            if got is None:
                # quiet for the time allowed since its last frame (ffmpeg's own read
                # time-out may end the stream first)
                silent = time.monotonic() - last_frame
                if self.size and quiet <= left and silent >= 0.9 * quiet:
                    self.notes.append(f"{describe(self.source)} sent nothing for {quiet:g} s: "
                                      "taken as its end")  # fmt: skip
                break
            if self.size is None:
                self.size = live_size(got.rgb, self.width)
                self.mattes = live_mattes(self.cfg, self.size, self.source)
                self.say(f"dreaming {self.size[0]}x{self.size[1]} live, aiming at "
                         f"{self.fps:g} frames/s"
                         + (f", for {seconds:g} s from the start" if seconds else ""))  # fmt: skip
                on_size(self.size)
            last_frame = got.at
            rgb, picture = self.dream(got)
            now = time.monotonic()
            if on_frame is not None:
                on_frame(rgb, picture)
            # real time: as many frames as the clock says, the dream held between
            self.outputs.show(picture, int((now - self.t0) * self.fps) + 1)  # type: ignore[operator]
            note = self.budget.adjust()
            if note is not None and len(self.budget.notes) == 1:
                self.say(note)  # once: later steps down are in the result's notes
            if on_stats is not None and now - last_report >= REPORT_EVERY:
                last_report = now
                on_stats(self.stats())
            if frames is not None and self.dreamed >= frames:
                break

    def dream(self, got: Captured) -> tuple[np.ndarray, np.ndarray]:
        """The source frame ``got`` at the dream's size, and its dream."""
        assert self.size is not None
        rgb = cv2.resize(got.rgb, self.size, interpolation=cv2.INTER_AREA)
        masks = None
        if self.mattes is not None:
            if not self.dreamed:
                self.mattes.check(got.index - 1, rgb, None)
            frame_mattes = self.mattes.at(got.index - 1, rgb, None)
            masks = FrameMasks.upload(frame_mattes, self.dreamer.device)
        picture, fresh = self.stepper.dream(rgb, self.budget.steps, masks)
        now = time.monotonic()
        if self.t0 is None:
            self.t0, self.start, self.first = now, got.time, now - got.at
        self.dreamed += 1
        self.latencies.append(now - got.at)
        self.dreamt.append(now)
        self.budget.tick(now, fresh)
        return rgb, picture

    def finish(self, record: Path | None, output: Path | None, fps: float) -> int:
        """The end of the source, the time asked for, a signal or an error: the encoders
        finish, the stream's sound file is completed, and the frames recorded so far make a
        complete file with the sound heard meanwhile. Returns the frames in it."""
        self.final = self.stats()  # the run's own figures, before the files are finished
        self.outputs.close()
        self.notes.extend(self.outputs.notes)
        if self.reader is not None:
            self.reader.close()  # the stream's sound file is complete after this
        if record is None or output is None or not self.outputs.written:
            return 0
        sound = self.reader.sound if self.reader is not None else None
        if sound is not None:
            sound = replace(sound, start=max(0.0, self.start))
        written, notes = finish_recording(record, output, fps, self.outputs.encoding, sound)
        self.notes.extend(notes)
        return written
