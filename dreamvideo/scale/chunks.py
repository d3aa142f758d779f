"""Splitting a clip into chunks that render in parallel, and sewing them back (no I/O).

A scene cut is a free boundary: the renderer starts a fresh dream there anyway. A shot longer
than ``chunk_frames`` is split into near-equal pieces; each piece after the first starts
``overlap`` frames early (its *lead*), dreamed from a fresh full dream, and over those frames
the previous chunk's dream (its *tail*) is cross-faded into the new one. Both dreams follow
the same motion, so the seam is a slow dissolve of detail, not a jump.

Frame numbers are source frame indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """Source frames ``[start, end)`` of the output, rendered from ``start - lead``."""

    index: int
    start: int
    end: int
    lead: int  # frames rendered before start, cross-faded with the previous chunk's tail
    tail: int  # last frames that the next chunk cross-fades (its lead)

    @property
    def first(self) -> int:
        """The first frame this chunk renders."""
        return self.start - self.lead

    @property
    def rendered(self) -> int:
        return self.end - self.first

    @property
    def main(self) -> tuple[int, int]:
        """The frames written as they are: between the lead and the tail."""
        return self.start, self.end - self.tail


def plan_chunks(
    first: int, last: int, cuts: list[int], chunk_frames: int, overlap: int
) -> list[Chunk]:
    """Chunks covering ``[first, last)``; ``cuts``: frames where a new shot starts.

    Pieces of a shot are at most ``chunk_frames`` long and at least twice the overlap (a
    shorter shot stays whole), so a lead never reaches past the previous chunk's start.
    """
    bounds = sorted({first, last, *(c for c in cuts if first < c < last)})
    chunks: list[Chunk] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        longest = max(chunk_frames, 2 * overlap + 1)
        pieces = max(1, int(np.ceil((b - a) / longest)))
        edges = np.linspace(a, b, pieces + 1).round().astype(int).tolist()
        for k, (s, e) in enumerate(zip(edges, edges[1:], strict=False)):
            chunks.append(Chunk(len(chunks), s, e, overlap if k else 0, 0))
    return [
        Chunk(c.index, c.start, c.end, c.lead, nxt.lead)
        for c, nxt in zip(chunks, [*chunks[1:], Chunk(0, last, last, 0, 0)], strict=True)
    ]


def crossfade(tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Blend ``(N,H,W,C)`` frames (uint8 or uint16, RGB or RGBA) of the ending chunk into the
    starting one's: frame ``j`` weighs the new dream ``(j+1)/(N+1)``, eased in and out.
    Returns frames of the same type."""
    n = len(tail)
    a = (np.arange(1, n + 1) / (n + 1))[:, None, None, None]
    w = a * a * (3 - 2 * a)
    mixed = (1 - w) * tail.astype(np.float32) + w * head.astype(np.float32)
    return np.round(mixed).clip(0, np.iinfo(tail.dtype).max).astype(tail.dtype)
