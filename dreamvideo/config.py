"""One frozen configuration per run, built from a YAML preset and CLI flags.

Every field is checked in ``__post_init__`` (type, range, accepted values), so a config made by
``from_dict`` (YAML) or by ``dataclasses.replace`` (CLI overrides) is always valid. Errors are
:class:`ConfigError` with a one-line message naming the key and what would be accepted.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from dreamvideo import names
from dreamvideo.fields import ConfigError, Section, check_number, parse_schedule_value, setting
from dreamvideo.masks import parse_matte, parse_regions
from dreamvideo.text import excerpt

# frame rates a file is written at: a tenth of a frame per second (a slow slideshow) .. 240
MIN_FPS, MAX_FPS = 0.1, 240.0


@dataclass(frozen=True)
class DreamConfig(Section):
    """How one picture is dreamed: network, objective and gradient ascent."""

    SECTION: typing.ClassVar[str] = "dream"
    # backbone network; `dreamvideo layers MODEL` lists its layers
    model: str = setting(names.DEFAULT_MODEL, choices=names.MODELS)
    # local state-dict file for the backbone (needed offline for torchvision models)
    weights: str | None = None
    # objective to maximize: "blocks.10", "blocks.10:42", "0.5*blocks.8 + blocks.10:7", ...
    layers: str = "blocks.10"
    # guide picture whose features guide(...) terms pull towards
    guide: str | None = None
    # pyramid levels; detail found at a coarse level is carried up to the next
    octaves: int = setting(4, min=1, max=12)
    # size ratio between neighbouring octaves
    octave_scale: float = setting(1.4, above=1.0, max=4.0)
    # gradient-ascent steps per octave
    iterations: int = setting(20, min=0, max=1000)
    # step per iteration in 0..255 pixel units, times the normalized gradient
    step: float = setting(2.0, above=0.0, max=100.0)
    # largest random roll (pixels) applied before each step, hides the network's grid
    jitter: int = setting(32, min=0, max=512)
    # gradient normalization: "mean" (g / mean|g|, classic) or "laplacian" (per-band unit std)
    normalize: str = setting("laplacian", choices=names.NORMALIZATIONS)
    # tile side in pixels for the gradient; bounds memory on big frames; 0 never tiles
    tile: int = setting(1024, min=0, max=8192)
    # output this many times the size (1 .. 4): the octaves keep the look of the size asked
    # for and finer ones dream the detail up to the output's (clips touch up at the size
    # asked for and carry that detail along the motion)
    upscale: float = setting(1.0, min=1.0, max=4.0)
    # random seed: same seed, input and device give the same output
    # (torch seeds are 64-bit; a bigger one would crash the run, not the config check)
    seed: int = setting(0, min=0, max=2**63 - 1, words="an integer in 0..2**63-1")
    # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N" or "mps" (an Apple GPU,
    # only when asked for: it is not measured)
    device: str = setting(
        "auto", pattern=(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda, cuda:N or mps")
    )
    # CPU threads for torch; 0 = torch's default (one per core). Lower it to share the
    # machine: two renders side by side run best at half the cores each
    threads: int = setting(0, min=0, max=1024)
    # forward precision: "auto" (bf16 on CUDA, fp32 on CPU), "fp32", "bf16", "fp16"
    precision: str = setting("auto", choices=names.PRECISIONS)
    # match each dreamed frame's colours (mean and spread in LAB) to: "none"; "source", the
    # picture it was dreamed from; "first", the first dreamed frame (stops long zooms drifting
    # to vivid greens and reds)
    color_match: str = setting("none", choices=names.COLOR_MATCHES)
    # where to dream: white dreams, black keeps the source. A picture (a still matte), a clip
    # or frame folder (one matte frame per source frame), "alpha" (the input's own),
    # "luma:LOW-HIGH" (0..1) or "key:#RRGGBB/TOLERANCE" (keys of each source frame); null = all
    mask: str | None = None
    # dream where the mask is black instead
    mask_invert: bool = False
    # soften the mask's edge over about this many pixels (a Gaussian blur)
    mask_feather: float = setting(0.0, min=0.0, max=512.0)
    # named mattes for region(NAME, TERM) objectives, "sky=luma:0.6-1; ground=luma:0-0.6"
    # (each SOURCE as for mask)
    regions: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tile and self.tile < 64:
            raise ConfigError(f"dream.tile: must be 0 (no tiling) or >= 64, got {self.tile}")
        if self.mask is not None:
            parse_matte(self.mask)
        parse_regions(self.regions)


@dataclass(frozen=True)
class VideoConfig(Section):
    """How a clip is dreamed frame after frame, and which part of it."""

    SECTION: typing.ClassVar[str] = "video"
    # octaves for frames after the first (and after scene cuts); they start from a warped dream
    next_octaves: int = setting(2, min=1, max=12)
    # ascent steps per octave for those frames
    next_iterations: int = setting(5, min=0, max=1000)
    # share of the previous frame's dream (its residual over the source) carried into the next
    blend: float = setting(0.98, min=0.0, max=1.0)
    # step size on carried-over pixels, as a share of the step on newly revealed ones
    tracked_step: float = setting(0.5, min=0.0, max=1.0)
    # step size of those frames' touch-ups, 0..255 units: a number, keyframes, or an expression
    # of t (frame), s (seconds) and the clip's own sound (rms, onset, beat, bass, mid, treble),
    # e.g. "1.5 + 3*beat"; null = dream.step
    step: float | str | None = setting(None, above=0.0, max=100.0, schedule=True)
    # dream (first frames and touch-ups) at this fraction of the frame size; the change is
    # upsampled onto the full-size frame, whose carried detail keeps its resolution. 0.5 makes
    # each ascent about 4x cheaper (HD on a CPU)
    dream_scale: float = setting(1.0, above=0.05, max=1.0)
    # touch up every Nth frame; the frames between only carry the residual along the flow
    stride: int = setting(1, min=1, max=100)
    # temporal term of the touch-ups: each step pulls followed pixels this share of the way
    # back towards the motion-warped previous dream (0 = off), so short touch-ups cannot drift
    temporal: float = setting(0.0, min=0.0, max=1.0)
    # what that pull aims at: the average of the last N dreams, each moved along the motion
    # onto the current frame (1 = the previous dream only); longer memories keep the dream
    # consistent over spans of frames, not only from one frame to the next
    memory: int = setting(1, min=1, max=100)
    # keep the dream as strong as the shot's first frame: the carried residual is scaled so
    # that carried part plus touch-up stay at that strength, instead of drifting frame by frame
    hold_strength: bool = True
    # how far that controller may also scale the carried residual UP when the dream fades (1 =
    # only down); 1.5 holds the strength when touch-ups are sparse (video.stride) or small
    hold_gain: float = setting(1.0, min=1.0, max=4.0)
    # optical flow between source frames: "dis" (fast), "farneback", or "raft" (needs weights)
    flow: str = setting("dis", choices=names.FLOWS)
    # compute the flow on frames this much smaller and scale it up (0.5: a quarter of the cost)
    flow_scale: float = setting(1.0, above=0.05, max=1.0)
    # DIS quality/speed: "ultrafast", "fast", "medium"
    flow_preset: str = setting("medium", choices=names.DIS_PRESETS)
    # threads that find the motion of the frames ahead in parallel (the flow needs only the
    # source frames), so a GPU is not held up by one CPU thread; 0 = half the cores, at most 8
    flow_workers: int = setting(0, min=0, max=64)
    # RAFT weights file (raft_small_C_T_V2-01064c6d.pth) when flow is "raft"; null = hub cache
    flow_weights: str | None = None
    # forward-backward check: pixels that appear from behind others are dreamed fresh
    occlusion: bool = True
    # restart from a full dream when less than this share of pixels can be followed
    scene_cut: float = setting(0.2, min=0.0, max=1.0)
    # first second of the source to render
    start: float = setting(0.0, min=0.0)
    # second to stop at (exclusive); null = the end of the clip
    end: float | None = setting(None, above=0.0)
    # render at most this many frames; null = no limit
    max_frames: int | None = setting(None, min=1)
    # the rate of a frame folder's frames (they carry none); null = 24. A clip keeps its own
    fps: float | None = setting(None, min=MIN_FPS, max=MAX_FPS)
    # render width in pixels (height keeps the aspect, rounded to even); null = source size
    width: int | None = setting(None, min=16, max=16384)
    # render at this fraction of the source size (ignored when width is set)
    scale: float = setting(1.0, above=0.0, max=4.0)
    # save a resumable checkpoint every this many frames
    checkpoint_every: int = setting(30, min=1)
    # with --workers: a long shot is rendered as chunks of about this many seconds, in
    # parallel (scene cuts are chunk boundaries too)
    chunk_seconds: float = setting(10.0, above=0.0, max=36000.0)
    # frames each chunk that splits a shot starts early; over them the two chunks' dreams
    # are cross-faded, so no pop shows at the seam
    chunk_overlap: int = setting(12, min=0, max=1000)
    # chunks one process dreams in lockstep as one batch on its device (with --workers: on
    # each worker); the clip is planned as chunks as with --workers, and joined the same way
    lanes: int = setting(1, min=1, max=64)


@dataclass(frozen=True)
class EncodeConfig(Section):
    """How frames become a file."""

    SECTION: typing.ClassVar[str] = "encode"
    # H.264 constant rate factor: 0 best .. 51 worst; 18 is visually lossless
    crf: int = setting(18, min=0, max=51)
    # lossless RGB H.264 (libx264rgb, qp 0): exact pixels, big files, fewer players
    lossless: bool = False
    # x264 speed/size trade-off (x265, VP9 and AV1 take the nearest speed of their own)
    preset: str = setting("medium", choices=names.X264_PRESETS)
    # copy the source's sound (every track) and subtitles into the output
    audio: bool = True
    # "auto": the output's container decides (H.264 for .mp4/.mov/.mkv, VP9 for .webm, GIF,
    # WebP, APNG); or h264, h265, prores (422 HQ), prores4444 (alpha), vp9, av1, ffv1
    codec: str = setting("auto", choices=names.CODECS)
    # bits per channel: "auto" keeps the source's where the output can (10-bit H.265, VP9,
    # AV1, ProRes; 16-bit PNG/TIFF frames), or 8, 10, 16, "float" (EXR frames)
    depth: int | str = "auto"
    # an HDR source (HLG or PQ): "sdr" dreams it in SDR BT.709 after a tone map; "keep"
    # dreams its signal and writes it back HDR, 10-bit, tagged (H.265, ProRes, VP9, AV1)
    hdr: str = setting("sdr", choices=names.HDR_MODES)
    # frame folders only: write the source's sound beside the frames ("wav", "m4a")
    sound_file: str = setting("none", choices=names.SOUND_FILES)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.depth not in names.DEPTHS or isinstance(self.depth, bool):
            raise ConfigError(
                f"encode.depth: must be one of {', '.join(map(str, names.DEPTHS))}; got "
                f"{excerpt(self.depth)}"
            )


@dataclass(frozen=True)
class ZoomConfig(Section):
    """Zoom-feedback animations: each frame is the last dream moved a little, dreamed again.

    Fields marked (keyframes) take a number or a schedule like "0: 1.05, 120: 1.3" (frames)
    or "smooth: 0s: 1.05, 5s: 1.3" (seconds).
    """

    SECTION: typing.ClassVar[str] = "zoom"
    # length of the animation in seconds; null = the length of zoom.audio
    seconds: float | None = setting(10.0, above=0.0, max=36000.0)
    # frames per second
    fps: float = setting(24.0, min=MIN_FPS, max=MAX_FPS)
    # frame width and height in pixels
    width: int = setting(512, min=16, max=16384)
    height: int = setting(512, min=16, max=16384)
    # zoom factor per second, > 1 moves in (keyframes)
    zoom: float | str = setting(1.15, above=0.0, max=100.0, schedule=True)
    # rotation in degrees per second, counter-clockwise (keyframes)
    rotate: float | str = setting(0.0, min=-3600.0, max=3600.0, schedule=True)
    # camera pan in pixels per second, right / down (keyframes)
    pan_x: float | str = setting(0.0, min=-100000.0, max=100000.0, schedule=True)
    pan_y: float | str = setting(0.0, min=-100000.0, max=100000.0, schedule=True)
    # zoom and rotation centre, relative to the frame (0..1)
    center_x: float = setting(0.5, min=0.0, max=1.0)
    center_y: float = setting(0.5, min=0.0, max=1.0)
    # objective, or keyframed objectives that cross-fade ("0: blocks.8, 10s: blocks.10");
    # null = dream.layers
    layers: str | None = None
    # ascent steps per frame after the first (keyframes)
    iterations: int | str = setting(4, min=0, max=1000, schedule=True)
    # octaves per frame after the first
    octaves: int = setting(1, min=1, max=12)
    # step size per frame after the first, 0..255 units (keyframes); null = dream.step
    step: float | str | None = setting(None, above=0.0, max=100.0, schedule=True)
    # how keyframes without their own "linear:"/"smooth:"/"step:" are interpolated
    interpolation: str = setting("smooth", choices=names.INTERPOLATIONS)
    # what to start from without a picture: "noise" or "color"
    start: str = setting("noise", choices=names.ZOOM_STARTS)
    # the colour for start "color", as #RRGGBB
    color: str = setting("#808080", pattern=(r"#[0-9a-fA-F]{6}", "a colour like #808080"))
    # make the last frame flow into the first, so the file plays on repeat without a jump
    loop: bool = False
    # frames of the loop's cross-fade; null = one second's worth
    loop_frames: int | None = setting(None, min=1)
    # dream every Nth frame; the frames between are made from the two dreamed neighbours
    # moved by the exact motion to their time and blended (1 = dream every frame)
    interpolate: int = setting(1, min=1, max=16)
    # save a resumable checkpoint every this many frames
    checkpoint_every: int = setting(48, min=1)
    # a song (any file with sound) whose envelopes drive the schedules' expressions (rms,
    # onset, beat, bass, mid, treble) and which becomes the animation's soundtrack
    audio: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layers is not None:
            parse_schedule_value(self.layers, "zoom.layers", numbers=False)


@dataclass(frozen=True)
class AudioConfig(Section):
    """How the audio envelopes that drive schedules follow the music (all in seconds)."""

    SECTION: typing.ClassVar[str] = "audio"
    # how fast an envelope rises towards a louder moment; 0 = at once
    attack: float = setting(0.0, min=0.0, max=10.0)
    # how fast it falls back after one
    release: float = setting(0.2, min=0.0, max=10.0)
    # the beat pulse falls to 1/e this long after each beat
    beat_decay: float = setting(0.25, above=0.0, max=10.0)


SECTIONS: dict[str, type[Section]] = {
    "dream": DreamConfig,
    "video": VideoConfig,
    "encode": EncodeConfig,
    "zoom": ZoomConfig,
    "audio": AudioConfig,
}


def check_scheduled(key: str, value: float) -> None:
    """The range rules of the schedulable setting ``key`` (``"zoom.zoom"``) for one value an
    expression gave; :class:`ConfigError` names the key and what is accepted."""
    section, name = key.split(".")
    rules = {f.name: f.metadata for f in dataclasses.fields(SECTIONS[section])}[name]
    check_number(key, value, rules)


@dataclass(frozen=True)
class Config:
    """Everything one run needs; written into the output's metadata so a render can be redone."""

    dream: DreamConfig = field(default_factory=DreamConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)

    @classmethod
    def from_dict(cls, data: Any) -> Config:
        """Build from nested plain data (YAML), rejecting unknown keys and wrong types."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"expected a mapping with sections {', '.join(SECTIONS)}, got {type(data).__name__}"
            )
        unknown = [k for k in data if k not in SECTIONS]
        if unknown:
            raise ConfigError(
                f"{excerpt(unknown[0], quote=False)}: unknown section; "
                "valid sections: "
                f"{', '.join(SECTIONS)}"
            )
        return cls(**{k: SECTIONS[k].from_dict(v) for k, v in data.items()})

    def reads(self) -> tuple[tuple[str, str], ...]:
        """The files a run with these settings reads besides its input, named for messages:
        no output may be one of them."""
        named = {
            "guide picture (dream.guide)": self.dream.guide,
            "weights file (dream.weights)": self.dream.weights,
            "flow weights file (video.flow_weights)": self.video.flow_weights,
            "song (zoom.audio)": self.zoom.audio,
        }
        mattes = {"mask (dream.mask)": parse_matte(self.dream.mask)} if self.dream.mask else {}
        for name, source in parse_regions(self.dream.regions).items():
            mattes[f"region {name} (dream.regions)"] = source
        named.update({what: source.path for what, source in mattes.items()})
        return tuple((what, path) for what, path in named.items() if path is not None)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    # settings that change how fast a render goes, not its frames: a resume may change them
    SPEED_ONLY: typing.ClassVar[tuple[tuple[str, str], ...]] = (
        ("video", "lanes"),
        ("video", "flow_workers"),
    )

    def identity(self) -> dict[str, dict[str, Any]]:
        """:meth:`to_dict` without :attr:`SPEED_ONLY`: what a resume must find unchanged."""
        data = self.to_dict()
        for section, key in self.SPEED_ONLY:
            data[section].pop(key, None)
        return data

    def override(self, section: str, **values: Any) -> Config:
        """A copy with ``values`` replaced in ``section``; ``None`` values are left alone."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **values)}
        )
