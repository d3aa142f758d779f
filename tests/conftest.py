"""Shared fixtures: tiny pictures from scikit-image and the bundled network, loaded once."""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dreamvideo.engine.models import Backbone, load_backbone

torch.set_num_threads(2)

# seconds: "fast" in tests means no blow-up (a billion laughs, a recursion, a huge echo, which
# take minutes or exhaust memory), not a speed: speed is measured in benchmarks/, against a
# reference in the same run. The bound leaves room for a busy machine and a cold import.
NO_BLOW_UP = 15.0


def photo(name: str = "chelsea", width: int = 96) -> np.ndarray:
    """A scikit-image photo as ``(H,W,3)`` uint8, scaled to ``width``."""
    import skimage.data

    rgb = getattr(skimage.data, name)()
    height = round(rgb.shape[0] * width / rgb.shape[1])
    return np.array(Image.fromarray(rgb).resize((width, height), Image.LANCZOS))


@pytest.fixture(scope="session")
def lite0() -> Backbone:
    """The bundled EfficientNet-Lite0 with its ImageNet weights (shared, never modified)."""
    return load_backbone()


@pytest.fixture()
def cat_png(tmp_path) -> str:
    path = tmp_path / "cat.png"
    Image.fromarray(photo("chelsea", 96)).save(path)
    return str(path)


def pan_frames(
    frames: int = 12, size: tuple[int, int] = (96, 64), step=(2.0, 1.0), name: str = "astronaut"
) -> list[np.ndarray]:
    """A camera pan over a photo: frame t shows the photo moved by ``t * step`` pixels.

    The true backward flow (frame t -> t-1) is ``-step`` everywhere.
    """
    import cv2

    w, h = size
    big = photo(name, w * 2)
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, -w / 2 + t * step[0]], [0, 1, -h / 2 + t * step[1]]])
        out.append(
            cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        )
    return out


def write_clip(
    path,
    frames: list[np.ndarray],
    fps=Fraction(30000, 1001),
    audio: bool | Path = False,
    lossless: bool = False,
) -> str:
    """Encode ``frames`` to ``path`` (H.264), with a 440 Hz sine soundtrack if ``audio`` is
    true, or with the sound file ``audio``."""
    from dreamvideo.media.codecs import codec_args
    from dreamvideo.media.ffmpeg import VideoWriter, add_soundtrack

    h, w = frames[0].shape[:2]
    path = Path(path)
    target = path.with_name("silent_" + path.name) if audio else path
    with VideoWriter(target, (w, h), fps, codec_args(w, h, 12, lossless, "ultrafast")) as vw:
        for f in frames:
            vw.write(f)
    if audio:
        sound = (
            ["-i", str(audio)]
            if isinstance(audio, Path)
            else ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        )
        add_soundtrack(target, sound, path)
        target.unlink()
    return str(path)


def ffmpeg_children() -> list[int]:
    """PIDs of ffmpeg processes started by this test process that are still alive."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if fields[3] == str(me) and "ffmpeg" in fields[1] and fields[2] != "Z":
            found.append(int(fields[0]))
    return found


def interrupt_at(done: int):
    """An ``on_frame`` callback that presses Ctrl-C once ``done`` frames are finished."""

    def on_frame(report) -> None:
        if report.done == done:
            raise KeyboardInterrupt

    return on_frame


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def cli(*args: object) -> CliResult:
    """Run ``dreamvideo ARGS`` in this process, as the console script does (errors included)."""
    from dreamvideo.cli.entry import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: CliResult, message: str) -> None:
    """Exit code 2 and exactly one ``error: ...`` line containing ``message``; before it at
    most our own ``[m:ss]`` progress lines (a mistake found once the network is loaded)."""
    assert result.code == 2, result.output
    lines = [
        line for line in result.output.strip().splitlines() if not re.match(r"\[\d+:\d\d\] ", line)
    ]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], result.output


def interrupted_then_resumed(render, done: int, **kwargs):
    """Run ``render(on_frame=...)`` until ``done`` frames are finished (a Ctrl-C there), then
    ``render(resume=True)``; returns the resumed run's result."""
    with pytest.raises(KeyboardInterrupt):
        render(on_frame=interrupt_at(done), **kwargs)
    return render(resume=True, **kwargs)


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest's hook)
    """After the docs tests: how many of the docs' blocks ran, and which were left out, why."""
    import sys

    docs = next((m for name, m in sys.modules.items() if name.endswith("test_docs")), None)
    tally = getattr(docs, "TALLY", None)
    if not tally or not (tally["blocks run"] or tally["not run"]):
        return
    say = terminalreporter.write_line
    terminalreporter.section("README and docs blocks")
    say(f"{len(set(tally['blocks run']))} blocks run ({len(tally['commands run'])} commands run, "
        f"{len(tally['checked'])} checked without running); "
        f"{len(tally['not run'])} blocks not run:")  # fmt: skip
    for line in tally["not run"]:
        say(f"  {line}")
