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

from dreamvideo.config import Config, VideoConfig
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
    join_segments,
)
from dreamvideo.media.live import (
    Broadcast,
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

REPORT_EVERY = 3.0  # seconds between live lines
WINDOW = 12  # dreamed frames over which the rate is measured
MIN_SCALE = 0.5  # the budget lowers the touch-ups' size to this share of the preset's at most
MIN_FPS, MAX_FPS = 0.1, 240.0  # target rates a live run takes (and its recording's)


@dataclass(frozen=True)
class LiveStats:
    """What the live line and the page's corner show."""

    seconds: float  # since the first dreamed frame
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
    size: tuple[int, int]
    output: Path | None
    notes: tuple[str, ...] = ()
    start: float = 0.0  # seconds into the source of the first dreamed (and recorded) frame


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


class Budget:
    """Keeps the dream inside a target rate: lowers the touch-ups' iterations to 1, then
    their size to :data:`MIN_SCALE` of the preset's, when the measured rate falls under
    90 % of the target."""

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
        """A lighter dream when behind (and the window full again), with a line saying so."""
        if not self.fps or len(self.times) < WINDOW or self.rate() >= 0.9 * self.fps:
            return None
        later = self.steps.later
        if later.iterations > 1:
            self.steps = replace(self.steps, later=replace(later, iterations=later.iterations - 1))
            what = f"touch-ups of {later.iterations - 1} step(s)"
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
    output's container, at the encoder's ``veryfast`` speed (it is made in real time)."""
    return encoding_for(cfg.override("encode", preset="veryfast"), output, size, sound=True)


def finish_recording(
    segment: Path, output: Path, frames: int, fps: float, encoding: Encoding,
    sound: Sound | None,
) -> list[str]:  # fmt: skip
    """The recorded ``segment`` (``frames`` frames at ``fps``) made into ``output`` with the
    source's ``sound`` from its start, for as long as the picture; what was left out, said
    once. Should the sound not go in, the picture alone is kept."""
    duration = frames / fps
    try:
        return join_segments([segment], output, frames, sound, duration, final=encoding.final)
    except EncodeError as e:
        if sound is None:
            raise
        notes = join_segments([segment], output, frames, None, duration, final=encoding.final)
        return [*notes, f"the sound could not be added, the picture is kept alone ({e})"]


def run_live(
    cfg: Config,
    source: str,
    *,
    output: Path | None = None,
    serve: tuple[str, int] | None = None,
    stream: str | None = None,
    seconds: float | None = None,
    fps: float = 15.0,
    width: int | None = 256,
    realtime: bool = True,
    overwrite: bool = False,
    dreamer: Dreamer | None = None,
    on_stats: Callable[[LiveStats], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_serve: Callable[[tuple[str, int]], None] | None = None,
    on_frame: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> LiveResult:
    """Dream ``source`` (see :class:`dreamvideo.media.live.Latest`) live until it ends, for
    ``seconds``, or until Ctrl-C; ``output``: a recording at ``fps`` with the source's sound
    where it has one (``encode.audio``; a clip played at its own rate, a stream);
    ``stream``: a URL the dream is pushed to at ``fps`` (udp://, srt://, tcp://, rtmp://);
    ``serve``: (host, port) of the page and MJPEG stream (``on_serve`` hears the address,
    port 0 picks one); ``on_frame(source, dream)``: each dreamed frame, ``(H,W,3)`` uint8,
    beside the source frame it was dreamed from."""
    say = on_stage or (lambda text: None)
    if width is not None:  # the bounds of video.width, in its words
        cfg = cfg.override("video", width=width)
    if not MIN_FPS <= fps <= MAX_FPS:  # NaN fails it too
        raise UserError(
            f"--fps {fps:g}: give a rate from {MIN_FPS:g} to {MAX_FPS:g} frames per second"
        )
    push_args = stream_args(stream, fps) if stream is not None else None
    if output is not None:
        reads = (("input", Path(source)), *cfg.reads())
        output = check_video_output(Path(output), reads, overwrite)
        # a codec the container lacks is said now; the segment's container is known
        segment = recording_encoding(cfg, output, (16, 16)).segment_suffix
    if not check_source(source):  # a stream or camera may take a while to open
        say(f"opening {describe(source)}")
    dreamer = dreamer_for(cfg.dream, dreamer)
    budget = Budget(clip_steps(cfg.video, dreamer.params, cfg.dream.color_match), fps)
    notes: list[str] = []  # besides the budget's own
    latencies: deque[float] = deque(maxlen=WINDOW)
    dreamt: deque[float] = deque(maxlen=WINDOW)  # the budget's own measure restarts at cuts
    state = {"dreamed": 0, "written": 0, "t0": None, "start": 0.0}
    # a sound is kept where the recording runs on the source's clock
    keep_sound = output is not None and cfg.encode.audio and realtime
    with contextlib.ExitStack() as files:
        tmp = side = None
        if output is not None:
            tmp = files.enter_context(temp_path(output, segment))
        if keep_sound:
            side = files.enter_context(temp_path(output, ".sound.mka"))
        reader: Latest | None = None
        sound_lost = output is not None and cfg.encode.audio and not realtime
        if sound_lost and check_source(source) and file_sound(Path(source)) is not None:
            notes.append(
                "no sound is recorded with --every-frame (the recording keeps the wall "
                "clock, not the clip's)"
            )

        def stats() -> LiveStats:
            t0 = state["t0"]
            return LiveStats(
                0.0 if t0 is None else time.monotonic() - t0,
                state["dreamed"],
                per_second(dreamt),
                reader.dropped if reader is not None else 0,
                statistics.median(latencies) if latencies else 0.0,
                state["written"],
            )

        def figures() -> dict[str, float]:
            s = stats()
            return {"fps": s.fps, "dropped": s.dropped, "latency": s.latency,
                    "dreamed": s.dreamed}  # fmt: skip

        writer: VideoWriter | None = None
        pusher: VideoWriter | None = None
        server: Broadcast | None = None
        encoding: Encoding | None = None
        size: tuple[int, int] | None = None
        mattes: Mattes | None = None
        stepper = LiveStepper(dreamer, cfg.video)
        last_report = time.monotonic()
        try:
            server = Broadcast(*serve, figures) if serve is not None else None
            if server is not None and on_serve is not None:
                on_serve(server.address)  # the page is up while the source opens
            reader = Latest(source, paced=realtime, sound=side)
            while True:  # Ctrl-C ends the run as the end of the source would
                got = reader.take()
                if got is None:
                    break
                if size is None:
                    size = live_size(got.rgb, width)
                    mattes = live_mattes(cfg, size, source)
                    say(f"dreaming {size[0]}x{size[1]} live, aiming at {fps:g} frames/s")
                    rate = Fraction(fps).limit_denominator(1001)
                    if tmp is not None and output is not None:
                        encoding = recording_encoding(cfg, output, size)
                        notes.extend(encoding.notes)
                        writer = VideoWriter(tmp, size, rate, encoding.args)
                    if push_args is not None:
                        pusher = VideoWriter(stream, size, rate, push_args, url=True)
                        say(f"pushing the dream to {stream}")
                rgb = cv2.resize(got.rgb, size, interpolation=cv2.INTER_AREA)
                masks = None
                if mattes is not None:
                    if not state["dreamed"]:
                        mattes.check(got.index - 1, rgb, None)
                    masks = FrameMasks.upload(mattes.at(got.index - 1, rgb, None), dreamer.device)
                picture, fresh = stepper.dream(rgb, budget.steps, masks)
                now = time.monotonic()
                if state["t0"] is None:
                    state["t0"], state["start"] = now, got.time
                state["dreamed"] += 1
                latencies.append(now - got.at)
                dreamt.append(now)
                budget.tick(now, fresh)
                if server is not None:
                    server.publish(picture)
                if on_frame is not None:
                    on_frame(rgb, picture)
                # real time: as many frames as the clock says, the dream held between
                due = int((now - state["t0"]) * fps) + 1
                while (writer or pusher) and state["written"] < due:
                    for out_to in (writer, pusher):
                        if out_to is not None:
                            out_to.write(picture)
                    state["written"] += 1
                note = budget.adjust()
                if note is not None and len(budget.notes) == 1:
                    say(note)  # once: later steps down are in the result's notes
                if on_stats is not None and now - last_report >= REPORT_EVERY:
                    last_report = now
                    on_stats(stats())
                if seconds is not None and now - state["t0"] >= seconds:
                    break
        except KeyboardInterrupt:
            notes.append("stopped with Ctrl-C")
        finally:
            # the end of the source, the time asked for, Ctrl-C or an error: the frames
            # recorded so far make a complete file, with the sound heard meanwhile
            if pusher is not None:
                pusher.close()
            if writer is not None:
                writer.close()
            if reader is not None:
                reader.close()  # the stream's sound file is complete after this
            if server is not None:
                server.close()
            if writer is not None and state["written"]:
                assert tmp is not None and output is not None and encoding is not None
                sound = reader.sound if reader is not None else None
                if sound is not None:
                    sound = replace(sound, start=max(0.0, state["start"]))
                notes.extend(finish_recording(tmp, output, state["written"], fps, encoding, sound))
    if size is None:
        raise UserError(f"{describe(source)} sent no frames; is it playing?")
    return LiveResult(stats(), size, output, (*budget.notes, *notes), state["start"])
