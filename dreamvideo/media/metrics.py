"""How steady and how strong a dreamed clip is, measured against its source.

* Temporal warping error (Lai et al. 2018): output frame t-1 warped onto frame t with the
  SOURCE clip's optical flow, mean ``|O_t - warp(O_{t-1})|`` (0..255) over pixels the flow
  tracks. Reported beside the same number for the source itself; their ratio is the flicker
  the dream adds (lower is steadier). The same from frame t-k to frame t (``long_gap`` k,
  flow computed directly between them) tells whether the dream holds over longer spans or
  only from one frame to the next.
* Dream strength: mean ``|O_t - S_t|`` (0..255) per frame; its drift is the mean over the last
  tenth of the clip divided by the mean over the first tenth.
* Likeness: whether the output is a dream of this source at all (see :func:`likeness`), so
  that two unrelated clips are said to be unrelated rather than measured as if they were.

The flow is Farneback's by default, not the DIS flow the renderer follows, so the metric does
not simply reward agreeing with the renderer's own motion estimate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dreamvideo.errors import UserError
from dreamvideo.media.ffmpeg import count_frames, read_video_metadata
from dreamvideo.media.frames import probe_video, read_frames
from dreamvideo.motion.flow import make_flow, occlusion_mask, warp

UNRELATED = 0.4  # likeness below which two clips are not a source and its dream
LIKENESS_WIDTH = 64  # pixels: the coarse pictures compared for likeness


def likeness(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation (-1..1) of two ``(H,W,3)`` uint8 frames' coarse grey pictures with their
    broad gradients taken out: the layout of edges and shapes, which a dream keeps of its
    source (0.87 and up for `video-strong`, measured) and unrelated pictures do not share
    (under 0.2; without the high-pass, vignettes and bright centres lift them to 0.3)."""

    def coarse(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        size = (LIKENESS_WIDTH, max(1, round(h * LIKENESS_WIDTH / w)))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float64)
        return (small - cv2.GaussianBlur(small, (0, 0), LIKENESS_WIDTH / 8)).ravel()

    x, y = coarse(a), coarse(b)
    x, y = x - x.mean(), y - y.mean()
    spread = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / spread) if spread > 0 else 0.0


def warping_error(
    prev: np.ndarray, cur: np.ndarray, backward: np.ndarray, mask: np.ndarray
) -> float:
    """Mean ``|cur - warp(prev, backward)|`` over ``mask`` (weights in 0..1), in 0..255 units.

    ``prev``/``cur``: ``(H,W,3)`` uint8; ``backward``: ``(H,W,2)`` flow from cur to prev.
    """
    diff = np.abs(cur.astype(np.float32) - warp(prev.astype(np.float32), backward)).mean(-1)
    weight = float(mask.sum())
    return float((diff * mask).sum() / weight) if weight > 0 else 0.0


@dataclass(frozen=True)
class ClipMetrics:
    frames: int
    warp_error_output: float  # 0..255
    warp_error_source: float  # 0..255
    strength: float  # mean |output - source|, 0..255
    strength_first: float  # over the first tenth of the frames
    strength_last: float  # over the last tenth
    # the output's warping error from each frame to the next (frame t -> t+1 at index t)
    warp_errors: tuple[float, ...] = ()
    long_gap: int = 0  # k of the long-range warping errors below (0: not measured)
    long_error_output: float = 0.0  # from frame t-k to frame t, 0..255
    long_error_source: float = 0.0
    # how alike the two clips' coarse pictures are: the mean correlation of their blurred
    # grey frames, -1..1 (see likeness). A dream keeps the shapes of its source; a clip
    # compared with another one scores near 0, and its figures say nothing
    likeness: float = 1.0
    source_frames: int = 0  # frames the source has from the output's first frame on
    first_frame: int = 0  # the source frame the output starts at

    @property
    def unrelated(self) -> bool:
        return self.likeness < UNRELATED

    @property
    def warp_ratio(self) -> float:
        return self.warp_error_output / max(self.warp_error_source, 1e-6)

    @property
    def long_ratio(self) -> float:
        return self.long_error_output / max(self.long_error_source, 1e-6)

    @property
    def drift(self) -> float:
        return self.strength_last / max(self.strength_first, 1e-6)


def _pairs(
    source: Path, output: Path, first: int, max_frames: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    out_info = probe_video(output)
    size = (out_info.width, out_info.height)
    last = first + max_frames if max_frames else None
    src_frames = read_frames(source, first, last, size)
    for (_, out), (_, src) in zip(read_frames(output, 0, max_frames), src_frames, strict=False):
        yield src, out


def measure_clip(
    source: str | Path,
    output: str | Path,
    first_frame: int | None = None,
    max_frames: int | None = None,
    flow: str = "farneback",
    long_gap: int = 0,
) -> ClipMetrics:
    """Warping error and strength of ``output`` against ``source``.

    ``first_frame``: the source frame the output starts at; by default read from the
    output's metadata (renders made with ``--start``), else 0. ``long_gap``: also measure
    the warping error from frame t-``long_gap`` to frame t (0: skip, it doubles the flows).
    """
    source, output = Path(source), Path(output)
    probe_video(source)  # a clear error for a file that is not a clip, before anything else
    probe_video(output)
    if first_frame is None:
        meta = read_video_metadata(output) or {}
        first_frame = int(meta.get("first_frame", 0))
    flow_fn = make_flow(flow)

    def errors(before: tuple[np.ndarray, np.ndarray], src: np.ndarray, out: np.ndarray):
        backward = flow_fn(src, before[0])
        mask = occlusion_mask(backward, flow_fn(before[0], src), blur=1)
        return (
            warping_error(before[0], src, backward, mask),
            warping_error(before[1], out, backward, mask),
        )

    err_out, err_src, strength, long_src, long_out, alike = [], [], [], [], [], []
    recent: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=max(long_gap, 1))
    for src, out in _pairs(source, output, first_frame, max_frames):
        strength.append(float(np.abs(out.astype(np.float32) - src).mean()))
        alike.append(likeness(src, out))
        if recent:
            e_src, e_out = errors(recent[-1], src, out)
            err_src.append(e_src)
            err_out.append(e_out)
        if long_gap > 1 and len(recent) == long_gap:
            e_src, e_out = errors(recent[0], src, out)
            long_src.append(e_src)
            long_out.append(e_out)
        recent.append((src, out))
    if len(strength) < 2:
        raise UserError(f"{output}: need at least 2 frames to measure, got {len(strength)}")
    tenth = max(1, len(strength) // 10)
    return ClipMetrics(
        len(strength),
        float(np.mean(err_out)),
        float(np.mean(err_src)),
        float(np.mean(strength)),
        float(np.mean(strength[:tenth])),
        float(np.mean(strength[-tenth:])),
        tuple(err_out),
        long_gap if long_out else 0,
        float(np.mean(long_out)) if long_out else 0.0,
        float(np.mean(long_src)) if long_src else 0.0,
        float(np.mean(alike)),
        max(0, count_frames(source) - first_frame),
        first_frame,
    )
