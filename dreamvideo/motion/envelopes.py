"""Audio envelopes that drive schedules, from samples (no I/O): for every video frame, how
loud (``rms``), how much starts (``onset``), a pulse on each beat (``beat``) and the energy
in three bands (``bass``, ``mid``, ``treble``), each 0..1.

The analysis is librosa's (onset strength, beat tracking, RMS, STFT) on mono 22.05 kHz
samples (:mod:`dreamvideo.media.audio` decodes them with ffmpeg); librosa is the optional
extra ``dreamvideo[audio]`` and imported only here. Each curve is reduced to the frame rate
(the loudest moment of each frame's time for ``onset``, the mean otherwise), scaled so its
loudest frame is 1, and smoothed with an attack/release follower, as a music visualiser
would.
"""

from __future__ import annotations

from dataclasses import dataclass

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
