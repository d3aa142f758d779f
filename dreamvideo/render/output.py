"""What file a render makes: a video file or a frame sequence (a printf pattern), checked
before any work, its encoding chosen from the output's name and the ``encode`` section, and
the resumable writer that makes it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import SegmentedRender, parts_dir
from dreamvideo.media.codecs import CODECS, Encoding, choose_encoding, sound_codec
from dreamvideo.media.ffmpeg import check_video_output, encoders, ffmpeg_exe
from dreamvideo.media.frame_folder import FrameFolderRender
from dreamvideo.media.paths import Inputs
from dreamvideo.media.sequence import check_sequence_output, is_pattern
from dreamvideo.names import FRAME_SUFFIXES, VIDEO_SUFFIXES
from dreamvideo.text import path_text

MAX_UPSCALED = 7680 * 4320  # pixels of an upscaled frame: 8K


def check_upscaled(size: tuple[int, int], upscale: float, what: str, smaller: str) -> None:
    """Upscaled frames of ``size`` = (w, h) larger than 8K are one line (``what``: whose
    frames, ``smaller``: the setting that makes them smaller), before any work."""
    if upscale > 1.0 and size[0] * size[1] > MAX_UPSCALED:
        raise UserError(
            f"dream.upscale {upscale:g}: {what} would be {size[0]}x{size[1]}, over 8K "
            f"(33 megapixels); choose a smaller upscale or {smaller}"
        )


def check_render_output(
    output: str | Path,
    reads: Inputs,
    overwrite: bool,
    resume: bool = False,
    restart: bool = False,
) -> Path:
    """A video file or a frame pattern that can receive this render (see the checks of
    :func:`dreamvideo.media.paths.check_output` and :func:`check_sequence_output`). What is
    there may be replaced with ``overwrite``, on ``resume`` (a finished file is then kept),
    and on ``restart`` of an unfinished render (it was allowed to replace it when it began).
    A picture's name or a folder is one line saying how frames are written."""
    output = Path(output)
    overwrite = overwrite or resume or (restart and parts_dir(output).is_dir())
    if is_pattern(output):
        return check_sequence_output(output, reads, overwrite)
    suffix = output.suffix.lower()
    if _is_dir(output) or (
        suffix not in VIDEO_SUFFIXES and (suffix in FRAME_SUFFIXES or not suffix)
    ):
        example = (output if _is_dir(output) else output.parent) / (
            (output.stem if not _is_dir(output) else "dream")
            + "_%04d"
            + (suffix if suffix in FRAME_SUFFIXES else ".png")
        )
        raise UserError(
            f"output {path_text(output)}: give a video file ({', '.join(VIDEO_SUFFIXES)}), or "
            f"numbered frames with a printf pattern such as {path_text(example)}"
        )
    return check_video_output(output, reads, overwrite)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def encoding_for(
    cfg: Config,
    output: Path,
    size: tuple[int, int],
    *,
    alpha: bool = False,
    source_depth: int = 8,
    hdr: str | None = None,
    loop: bool = False,
    sound: bool = False,
    mastering: str | None = None,
    light: tuple[int, int] | None = None,
) -> Encoding:
    """The encoding of ``output`` for frames of ``size``: ``alpha``, ``source_depth`` and
    ``hdr`` (with its ``mastering`` display and content ``light`` level) say what the source
    holds, ``sound`` whether it has sound to keep."""
    e, frames = cfg.encode, is_pattern(output)
    if frames and e.codec != "auto":
        raise UserError(
            f"encode.codec {e.codec} is for video files; frames {output.name} are written "
            f"as their suffix says ({output.suffix})"
        )
    encoding = choose_encoding(
        output.suffix,
        e.codec,
        size,
        crf=e.crf,
        lossless=e.lossless,
        preset=e.preset,
        depth=e.depth,
        alpha=alpha,
        source_depth=source_depth,
        hdr=hdr if e.hdr == "keep" else None,
        mastering=mastering,
        light=light,
        loop=loop,
        sound=sound and e.audio and not (frames and e.sound_file != "none"),
        frames=frames,
        what=f"output {output}",
    )
    check_encoders(encoding, output)
    return encoding


def check_encoders(encoding: Encoding, output: Path) -> None:
    """An encoder the ffmpeg in use lacks (one named by ``IMAGEIO_FFMPEG_EXE``, built
    without x265 or SVT-AV1) is one line before any work, not an ffmpeg error after the first
    segment."""
    args = [*encoding.args, *encoding.final]
    wanted = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c:v", "-c:a")]
    if encoding.sound:
        wanted.append(sound_codec(encoding.container)[0])
    exe = ffmpeg_exe()
    have = encoders(exe)
    missing = [name for name in wanted if have is not None and name not in have]
    if missing:
        raise UserError(
            f"output {path_text(output)}: the ffmpeg in use ({exe}) has no {missing[0]} "
            f"encoder for {CODECS[encoding.codec]}; choose another --codec (dreamvideo doctor "
            "lists this ffmpeg's encoders) or leave IMAGEIO_FFMPEG_EXE unset for the bundled one"
        )


def open_render(
    cfg: Config,
    output: Path,
    fingerprint: dict[str, Any],
    size: tuple[int, int],
    fps: Fraction,
    encoding: Encoding,
    every: int,
    resume: bool,
    restart: bool,
    first_number: int = 0,
) -> SegmentedRender | FrameFolderRender:
    """The resumable writer of ``output``: segments of a video file, or numbered frames."""
    if encoding.frames:
        return FrameFolderRender(
            output, fingerprint, size, fps, encoding, every, resume, restart, first_number,
            cfg.encode.sound_file,
        )  # fmt: skip
    return SegmentedRender(output, fingerprint, size, fps, encoding, every, resume, restart)
