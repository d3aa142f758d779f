"""How frames become a file: the codec and container an output's name and ``encode.codec``
choose, the arguments ffmpeg gets for them, and what the file can hold (alpha, more than
8 bits, sound, subtitles). Pure: argument lists in, argument lists out.

Clips are written as segments (see :mod:`dreamvideo.media.checkpoint`) and joined by stream
copy, so every segment is in the output's own codec; GIF, WebP and APNG cannot be joined so,
and their segments are lossless FFV1, turned into the animation once, from the whole clip
(which also gives a GIF its one palette).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamvideo.errors import UserError

# codec -> (what it is, for messages)
CODECS = {
    "h264": "H.264",
    "h265": "H.265/HEVC",
    "prores": "ProRes 422 HQ",
    "prores4444": "ProRes 4444",
    "vp9": "VP9",
    "av1": "AV1",
    "ffv1": "FFV1 (lossless)",
    "gif": "animated GIF",
    "webp": "animated WebP",
    "apng": "animated PNG",
}
# container -> (its default codec, the codecs it takes)
CONTAINERS = {
    ".mp4": ("h264", ("h264", "h265", "av1")),
    ".mov": ("h264", ("h264", "h265", "prores", "prores4444")),
    ".mkv": ("h264", ("h264", "h265", "prores", "prores4444", "vp9", "av1", "ffv1")),
    ".webm": ("vp9", ("vp9", "av1")),
    ".gif": ("gif", ("gif",)),
    ".webp": ("webp", ("webp",)),
    ".apng": ("apng", ("apng",)),
}
# frame sequences: the suffix decides; JPEG holds neither alpha nor more than 8 bits
FRAME_DEEP = (".png", ".tif", ".tiff")
FRAME_ALPHA = (".png", ".tif", ".tiff", ".webp", ".exr")
ANIMATIONS = ("gif", "webp", "apng")  # made once from lossless segments; no sound
ALPHA_CODECS = ("prores4444", "vp9", "ffv1", "webp", "apng")
# what a container holds an alpha source in when no codec is asked for: editors take ProRes
# 4444 in .mov; .mkv keeps everything losslessly (.webm's own VP9 holds alpha already)
ALPHA_DEFAULTS = {".mov": "prores4444", ".mkv": "ffv1"}
DEEP_CODECS = ("h265", "prores", "prores4444", "vp9", "av1", "ffv1")  # 10 bits and more
# the sound a container takes when the source's will not go in as it is
SOUND = {".webm": ("libopus", "-b:a", "128k")}
DEFAULT_SOUND = ("aac", "-b:a", "192k")
# x264's speed names, for the encoders that number their presets instead
_SVT_PRESET = {"ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
               "medium": 7, "slow": 5, "slower": 4, "veryslow": 3}  # fmt: skip
_VPX_SPEED = {"ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4,
              "medium": 2, "slow": 1, "slower": 0, "veryslow": 0}  # fmt: skip
# HDR kept as it came: the source's BT.2020 primaries and matrix, and its transfer
HDR_TRANSFER = {"hlg": "arib-std-b67", "pq": "smpte2084"}


@dataclass(frozen=True)
class Encoding:
    """What one render's file is made of (plain data: it travels to workers)."""

    codec: str  # a key of CODECS
    container: str  # the output's suffix, ".mp4"
    args: tuple[str, ...]  # ffmpeg's output arguments for a segment (codec, format, tags)
    segment_suffix: str  # the segments' container
    alpha: bool = False  # frames carry alpha and the file keeps it
    deep: bool = False  # frames are fed at 16 bits (the file stores 10 or more)
    floating: bool = False  # frames are fed as float (EXR frames)
    final: tuple[str, ...] = ()  # an animation's arguments, made from the joined segments
    notes: tuple[str, ...] = field(default=(), compare=False)  # what it leaves out, said once

    @property
    def pix_fmt(self) -> str:
        """The raw frames ffmpeg is fed: RGB or RGBA, 8 or 16 bits."""
        return {(False, False): "rgb24", (True, False): "rgba", (False, True): "rgb48le",
                (True, True): "rgba64le"}[self.alpha, self.deep]  # fmt: skip

    @property
    def sound(self) -> bool:
        return self.codec not in (*ANIMATIONS, "frames")

    @property
    def frames(self) -> bool:
        """One file per frame (a printf pattern), not a video file."""
        return self.codec == "frames"

    @property
    def dtype(self) -> str:
        """What each frame is handed over as: "uint8", "uint16" or "float32" (0..1)."""
        return "float32" if self.floating else "uint16" if self.deep else "uint8"


def _yuv(w: int, h: int, deep: bool, alpha: bool, chroma: str = "420") -> str:
    """A YUV pixel format; odd sizes take 4:4:4, which needs no even size."""
    if w % 2 or h % 2:
        chroma = "444"
    return f"yuv{'a' if alpha else ''}{chroma}p{'10le' if deep else ''}"


def _to_yuv(hdr: str | None) -> list[str]:
    """RGB frames to YUV with the matrix the tags say (ffmpeg's default is BT.601, which
    players read as BT.709 for HD: a colour shift), in limited range, and every frame tagged
    with its primaries, transfer, matrix and range (what players need to show it right)."""
    primaries, transfer, matrix = ("bt2020", HDR_TRANSFER[hdr], "bt2020nc") if hdr else (
        "bt709", "bt709", "bt709")  # fmt: skip
    tags = (
        f"setparams=range=tv:color_primaries={primaries}:color_trc={transfer}:colorspace={matrix}"
    )
    return ["-vf", f"scale=out_color_matrix={matrix}:out_range=tv,{tags}"]


def video_args(
    codec: str,
    size: tuple[int, int],
    crf: int = 18,
    lossless: bool = False,
    preset: str = "medium",
    *,
    alpha: bool = False,
    deep: bool = False,
    hdr: str | None = None,
    mastering: str | None = None,
    light: tuple[int, int] | None = None,
) -> list[str]:
    """ffmpeg's output arguments for one codec (no container, no file name). Kept HDR carries
    its ``mastering`` display (x265's ``master-display`` syntax) and content ``light`` level
    (MaxCLL, MaxFALL) in the stream, where the encoder writes them (H.265, AV1)."""
    w, h = size
    if codec == "h264":
        if lossless:
            return ["-c:v", "libx264rgb", "-qp", "0", "-preset", preset, "-pix_fmt", "rgb24"]
        return ["-c:v", "libx264", "-crf", str(crf), "-preset", preset,
                "-pix_fmt", _yuv(w, h, False, False), *_to_yuv(None)]  # fmt: skip
    if codec == "h265":
        params = "log-level=error" + (":lossless=1" if lossless else "")
        if hdr and mastering:
            params += f":master-display={mastering}"
        if hdr and light:
            params += f":max-cll={light[0]},{light[1]}"
        return ["-c:v", "libx265", "-crf", str(crf), "-preset", preset, "-x265-params", params,
                "-tag:v", "hvc1", "-pix_fmt", _yuv(w, h, deep, False), *_to_yuv(hdr)]  # fmt: skip
    if codec in ("prores", "prores4444"):
        profile = "4" if codec == "prores4444" else "3"  # 4444, or 422 HQ
        pix = ("yuva444p10le" if alpha else "yuv444p10le") if profile == "4" else "yuv422p10le"
        return ["-c:v", "prores_ks", "-profile:v", profile, "-vendor", "apl0",
                "-pix_fmt", pix, *_to_yuv(hdr)]  # fmt: skip
    if codec == "vp9":
        quality = ["-lossless", "1"] if lossless else ["-crf", str(crf), "-b:v", "0"]
        return ["-c:v", "libvpx-vp9", *quality, "-row-mt", "1", "-deadline", "good",
                "-cpu-used", str(_VPX_SPEED[preset]), "-pix_fmt",
                _yuv(w, h, deep and not alpha, alpha), *_to_yuv(hdr)]  # fmt: skip
    if codec == "av1":
        hdr10 = [f"mastering-display={mastering}"] if hdr and mastering else []
        hdr10 += [f"content-light={light[0]},{light[1]}"] if hdr and light else []
        extra = ["-svtav1-params", ":".join(hdr10)] if hdr10 else []
        return ["-c:v", "libsvtav1", "-crf", str(crf), "-preset", str(_SVT_PRESET[preset]),
                *extra, "-pix_fmt", _yuv(w, h, deep, False), *_to_yuv(hdr)]  # fmt: skip
    if codec == "ffv1":
        pix = {(False, False): "rgb24", (True, False): "rgba", (False, True): "rgb48le",
               (True, True): "rgba64le"}[alpha, deep]  # fmt: skip
        return ["-c:v", "ffv1", "-level", "3", "-g", "1", "-pix_fmt", pix]
    raise ValueError(f"no segment arguments for {codec}")


def codec_args(width: int, height: int, crf: int, lossless: bool, preset: str) -> list[str]:
    """H.264 arguments, tagged BT.709; odd sizes use 4:4:4 instead of being rescaled."""
    return video_args("h264", (width, height), crf, lossless, preset)


def animation_args(codec: str, alpha: bool, loop: bool) -> tuple[str, ...]:
    """The arguments that turn the joined lossless segments into an animation. A GIF gets
    one palette made from the whole clip, dithered; ``loop``: played on repeat."""
    if codec == "gif":
        graph = (
            "[0:v]split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=sierra2_4a"
        )
        return ("-filter_complex", graph, "-loop", "0" if loop else "-1")
    if codec == "webp":
        return ("-c:v", "libwebp_anim", "-quality", "90", "-loop", "0" if loop else "1",
                "-pix_fmt", "yuva420p" if alpha else "yuv420p")  # fmt: skip
    return ("-c:v", "apng", "-plays", "0" if loop else "1", "-pix_fmt",
            "rgba" if alpha else "rgb24")  # fmt: skip


def choose_encoding(
    suffix: str,
    codec: str,
    size: tuple[int, int],
    *,
    crf: int = 18,
    lossless: bool = False,
    preset: str = "medium",
    depth: int | str = "auto",
    alpha: bool = False,
    source_depth: int = 8,
    hdr: str | None = None,
    loop: bool = False,
    sound: bool = False,
    frames: bool = False,
    what: str = "output",
    mastering: str | None = None,
    light: tuple[int, int] | None = None,
) -> Encoding:
    """The encoding of an output named ``*suffix``: ``codec`` ("auto": the container's own),
    keeping ``alpha`` where the codec can, 10 bits where ``depth`` asks or ("auto") where the
    source has them (``hdr`` kept needs them), BT.709 tags (BT.2020 and the HDR curve when
    an HDR source is kept). A codec the container cannot hold is one line naming what can.
    ``frames``: a sequence of ``*suffix`` files (a printf pattern)."""
    suffix = suffix.lower()
    if frames:
        return _frames_encoding(suffix, depth, alpha, source_depth, sound)
    default, allowed = CONTAINERS[suffix]
    notes = []
    if codec == "auto" and alpha and default not in ALPHA_CODECS and suffix in ALPHA_DEFAULTS:
        codec = ALPHA_DEFAULTS[suffix]  # the source's alpha kept, in the codec that holds it
        notes.append(
            f"the source has alpha: written as {CODECS[codec]}, which keeps it "
            f"(--codec {default} leaves it out)"
        )
    elif codec == "auto" and hdr and default == "h264":  # H.264 here has 8 bits: no HDR
        codec = "h265"
        notes.append(f"HDR kept: written as {CODECS[codec]} in 10 bits")
    codec = default if codec == "auto" else codec
    if codec not in allowed:
        homes = ", ".join(s for s, (_, takes) in CONTAINERS.items() if codec in takes)
        raise UserError(
            f"{what}: {CODECS[codec]} does not go into {suffix} files; {suffix} takes "
            f"{', '.join(allowed)}, and {codec} goes into {homes}"
        )
    keep_alpha = alpha and codec in ALPHA_CODECS
    if alpha and not keep_alpha:
        fits = ", ".join(c for c in ALPHA_CODECS if c in allowed) or "none here"
        notes.append(
            f"the source's alpha is left out: {CODECS[codec]} has no alpha (alpha goes into "
            f"ProRes 4444 .mov, VP9 .webm, FFV1 .mkv, WebP, APNG or PNG/EXR frames; in "
            f"{suffix}: {fits})"
        )
    wanted = source_depth > 8 if depth == "auto" else str(depth) not in ("8",)
    deep = wanted and codec in DEEP_CODECS and not (codec == "vp9" and keep_alpha)
    if hdr and not deep:
        raise UserError(
            f"{what}: encode.hdr keep needs 10 bits, and {CODECS[codec]} here gives 8; use "
            "encode.codec h265 (.mp4, .mov, .mkv), prores, vp9 or av1"
        )
    if str(depth) not in ("8", "auto") and not deep:
        notes.append(f"{CODECS[codec]} stores 8 bits: encode.depth {depth} is not kept")
    if sound and codec in ANIMATIONS:
        notes.append(f"the sound is left out: {CODECS[codec]} holds no sound")
    if codec in ANIMATIONS:
        return Encoding(
            codec, suffix, tuple(video_args("ffv1", size, alpha=keep_alpha)), ".mkv",
            alpha=keep_alpha, final=animation_args(codec, keep_alpha, loop), notes=tuple(notes),
        )  # fmt: skip
    if hdr and (mastering or light) and codec not in ("h265", "av1"):
        notes.append(
            f"the source's HDR10 mastering display and light levels are left out: "
            f"{CODECS[codec]} does not carry them here (H.265 and AV1 do)"
        )
    args = video_args(codec, size, crf, lossless, preset, alpha=keep_alpha, deep=deep, hdr=hdr,
                      mastering=mastering, light=light)  # fmt: skip
    if codec == "vp9" and keep_alpha:
        # WebM keeps VP9's alpha beside each frame, which joining by stream copy drops: the
        # segments are lossless and the clip is encoded once, at the end
        return Encoding(
            codec, suffix, tuple(video_args("ffv1", size, alpha=True)), ".mkv", alpha=True,
            final=tuple(args), notes=tuple(notes),
        )  # fmt: skip
    return Encoding(
        codec, suffix, tuple(args), suffix, alpha=keep_alpha, deep=deep, notes=tuple(notes)
    )


def sound_codec(suffix: str) -> tuple[str, ...]:
    """The sound a ``suffix`` file gets when the source's cannot be copied into it."""
    return SOUND.get(suffix.lower(), DEFAULT_SOUND)


def subtitle_codec(suffix: str) -> str:
    """The subtitle format a container takes (text subtitles are converted to it)."""
    return {".mp4": "mov_text", ".mov": "mov_text", ".webm": "webvtt"}.get(suffix.lower(), "copy")


def _frames_encoding(
    suffix: str, depth: int | str, alpha: bool, source_depth: int, sound: bool
) -> Encoding:
    notes = []
    keep_alpha = alpha and suffix in FRAME_ALPHA
    if alpha and not keep_alpha:
        notes.append(
            f"the source's alpha is left out: {suffix} frames have none (PNG, TIFF, WebP, EXR do)"
        )
    floating = suffix == ".exr"
    wanted = source_depth > 8 if depth == "auto" else str(depth) not in ("8",)
    deep = wanted and suffix in FRAME_DEEP
    if depth == "float" and not floating:
        raise UserError(f"encode.depth float goes into .exr frames, not {suffix}")
    if wanted and not (deep or floating) and depth != "auto":
        notes.append(f"{suffix} frames store 8 bits: encode.depth {depth} is not kept")
    if sound:
        notes.append(
            "the sound is not in the frames: encode.sound_file wav or m4a writes it beside them"
        )
    return Encoding(
        "frames", suffix, (), suffix, alpha=keep_alpha, deep=deep, floating=floating,
        notes=tuple(notes),
    )  # fmt: skip
