"""Sound files: a song's envelopes decoded and analysed (:mod:`dreamvideo.motion.envelopes`),
their plot, and the click track and WAV writer that tests, benchmarks and samples use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.motion.envelopes import N_FFT, SAMPLE_RATE, Envelopes, analyse
from dreamvideo.names import ENVELOPES


def load_envelopes(
    path: str | Path, fps: float, attack: float, release: float, beat_decay: float
) -> Envelopes:
    """Decode ``path``'s sound with ffmpeg and analyse it (see :func:`analyse`)."""
    from dreamvideo.media.ffmpeg import read_audio

    samples = read_audio(path, SAMPLE_RATE)
    if len(samples) < N_FFT:
        raise UserError(f"the sound of {path} is too short to analyse (under 0.1 s)")
    return analyse(samples, fps, attack, release, beat_decay)


COLORS = {
    "rms": (235, 235, 235),
    "onset": (255, 170, 60),
    "beat": (255, 80, 80),
    "bass": (90, 160, 255),
    "mid": (120, 220, 120),
    "treble": (220, 120, 255),
}


def plot(env: Envelopes, width: int = 1200, row: int = 70) -> np.ndarray:
    """The envelopes one above the other, beats as thin vertical lines: ``(H,W,3)`` uint8."""
    from PIL import Image, ImageDraw, ImageFont

    label_w, pad = 70, 6
    h = len(ENVELOPES) * (row + pad) + pad + 18
    img = Image.new("RGB", (width, h), (20, 20, 24))
    draw, font = ImageDraw.Draw(img), ImageFont.load_default(size=13)
    span = width - label_w - pad
    for b in env.beats:
        x = label_w + int(b / max(env.seconds, 1e-9) * span)
        draw.line([(x, pad), (x, h - 20)], fill=(70, 50, 50))
    for i, name in enumerate(ENVELOPES):
        top = pad + i * (row + pad)
        draw.text((pad, top + row // 2 - 7), name, fill=COLORS[name], font=font)
        draw.rectangle([label_w, top, width - pad, top + row], outline=(60, 60, 66))
        v = env.curves[name]
        xs = label_w + np.arange(len(v)) * span / max(len(v) - 1, 1)
        ys = top + row - v * (row - 2) - 1
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=COLORS[name], width=1)
    draw.text(
        (label_w, h - 17),
        f"{env.seconds:.1f} s, {env.frames} frames at {env.fps:g} fps, {len(env.beats)} beats",
        fill=(200, 200, 200),
        font=font,
    )
    return np.asarray(img)


def click_track(seconds: float, bpm: float, offset: float = 0.25) -> np.ndarray:
    """A metronome at ``SAMPLE_RATE``: a short 1 kHz click every beat from ``offset`` seconds,
    over a quiet 80 Hz hum. The known answer for checking beats and sync (tests, benchmarks,
    samples)."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    y = 0.05 * np.sin(2 * np.pi * 80 * t)
    click = round(0.01 * SAMPLE_RATE)
    k = np.arange(click) / SAMPLE_RATE
    shape = 0.8 * np.sin(2 * np.pi * 1000 * k) * np.exp(-k / 0.003)
    for beat in np.arange(offset, seconds, 60.0 / bpm):
        i = round(beat * SAMPLE_RATE)
        y[i : i + click] += shape[: n - i]
    return y.astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Mono float samples in [-1, 1] as a 16-bit WAV file."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
