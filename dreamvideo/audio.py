"""Audio envelopes that drive schedules: for every video frame, how loud (``rms``), how much
starts (``onset``), a pulse on each beat (``beat``) and the energy in three bands (``bass``,
``mid``, ``treble``), each 0..1.

The analysis is librosa's (onset strength, beat tracking, RMS, STFT) on mono 22.05 kHz
samples decoded by ffmpeg; librosa is the optional extra ``dreamvideo[audio]`` and imported
only here. Each curve is reduced to the frame rate (the loudest moment of each frame's time
for ``onset``, the mean otherwise), scaled so its loudest frame is 1, and smoothed with an
attack/release follower, as a music visualiser would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.names import ENVELOPES

SAMPLE_RATE = 22_050  # Hz: all the analysis needs (bands up to 11 kHz)
HOP = 256  # samples between analysis frames: 11.6 ms, several per video frame
N_FFT = 2048
BANDS = {"bass": (20.0, 250.0), "mid": (250.0, 4000.0), "treble": (4000.0, SAMPLE_RATE / 2)}


@dataclass(frozen=True)
class Envelopes:
    """Per-frame curves of one sound, ``(frames,)`` float32 in [0, 1] each."""

    fps: float
    seconds: float  # length of the sound
    curves: dict[str, np.ndarray]
    beats: np.ndarray  # beat times in seconds

    @property
    def frames(self) -> int:
        return len(self.curves["rms"])

    def at(self, t: int) -> dict[str, float]:
        """Every envelope's value at frame ``t`` (0 past the end of the sound)."""
        inside = 0 <= t < self.frames
        return {k: float(v[t]) if inside else 0.0 for k, v in self.curves.items()}


def _librosa():
    try:
        import librosa
    except ImportError:
        raise UserError("audio analysis needs librosa: pip install 'dreamvideo[audio]'") from None
    return librosa


def to_frames(feature: np.ndarray, fps: float, frames: int, peak: bool = False) -> np.ndarray:
    """Reduce a feature sampled every ``HOP`` samples to ``frames`` video frames: frame ``k``
    covers ``[k/fps, (k+1)/fps)`` seconds; its value is the mean (or the ``peak``) there."""
    times = np.arange(len(feature)) * HOP / SAMPLE_RATE
    which = np.floor(times * fps).astype(np.int64)
    out = np.zeros(frames, np.float64)
    keep = which < frames
    if peak:
        np.maximum.at(out, which[keep], feature[keep])
        return out
    np.add.at(out, which[keep], feature[keep])
    counts = np.bincount(which[keep], minlength=frames)
    return out / np.maximum(counts, 1)


def follow(x: np.ndarray, fps: float, attack: float, release: float) -> np.ndarray:
    """Attack/release envelope follower: rises with time constant ``attack`` seconds and falls
    with ``release`` (0 = at once)."""

    def gain(seconds: float) -> float:
        return 1.0 if seconds <= 0 else float(1.0 - np.exp(-1.0 / (seconds * fps)))

    up, down = gain(attack), gain(release)
    out, y = np.empty_like(x), 0.0
    for i, v in enumerate(x):
        y += (v - y) * (up if v > y else down)
        out[i] = y
    return out


def beat_pulse(beats: np.ndarray, fps: float, frames: int, decay: float) -> np.ndarray:
    """1 on the frame holding each beat, decaying by ``1/e`` every ``decay`` seconds after."""
    starts = np.unique(np.floor(np.asarray(beats, np.float64) * fps).astype(np.int64))
    k = np.arange(frames)
    last = np.searchsorted(starts, k, side="right") - 1  # the latest beat at or before k
    since = (k - starts[np.maximum(last, 0)]) / fps if len(starts) else np.zeros(frames)
    return np.where(last >= 0, np.exp(-since / max(decay, 1e-6)), 0.0)


def _unit(x: np.ndarray) -> np.ndarray:
    top = float(np.max(x)) if len(x) else 0.0
    return (x / top if top > 0 else np.zeros_like(x)).clip(0.0, 1.0)


def analyse(
    samples: np.ndarray, fps: float, attack: float, release: float, beat_decay: float
) -> Envelopes:
    """The envelopes of mono ``samples`` at ``SAMPLE_RATE``, one value per frame at ``fps``."""
    librosa = _librosa()
    y = np.asarray(samples, np.float32)
    seconds = len(y) / SAMPLE_RATE
    frames = max(1, int(np.ceil(seconds * fps)))
    onset = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    _, beats = librosa.beat.beat_track(
        onset_envelope=onset, sr=SAMPLE_RATE, hop_length=HOP, units="time", trim=False
    )
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)[0]
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)
    raw = {"rms": to_frames(rms, fps, frames), "onset": to_frames(onset, fps, frames, peak=True)}
    for name, (lo, hi) in BANDS.items():
        band = np.sqrt(power[(freqs >= lo) & (freqs < hi)].sum(axis=0))
        raw[name] = to_frames(band, fps, frames)
    curves = {k: follow(_unit(v), fps, attack, release) for k, v in raw.items()}
    curves["beat"] = beat_pulse(beats, fps, frames, beat_decay)
    return Envelopes(
        fps,
        seconds,
        {k: curves[k].astype(np.float32) for k in ENVELOPES},
        np.asarray(beats, np.float64),
    )


def load_envelopes(
    path: str | Path, fps: float, attack: float, release: float, beat_decay: float
) -> Envelopes:
    """Decode ``path``'s sound with ffmpeg and analyse it (see :func:`analyse`)."""
    from dreamvideo.ffmpeg import read_audio

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
