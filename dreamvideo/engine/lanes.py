"""Lanes: several renders in threads of one process, whose dreams run in lockstep as one batch.

A small network dreaming one frame at a time leaves a GPU mostly idle (each convolution
is too small to fill it, and every step launches hundreds of them). Lanes fill it: each
lane is a render of its own (a chunk of a clip, :mod:`dreamvideo.scale.lanes`) whose dreamer
hands its ascent to a :class:`Lockstep`; when every lane still running has handed one in,
the ascents that fit together (same size, same settings) run as one batch and each lane
gets its own image back. A batch is dreamed image by image as if each were alone (see
:func:`dreamvideo.engine.ascent.dream`), so a lane's frames are the ones it would make alone,
up to the float rounding of batched convolutions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from dreamvideo.engine.ascent import AscentParams, Regions

if TYPE_CHECKING:
    from dreamvideo.engine.dreamer import Dreamer


class LanesClosed(Exception):
    """The lockstep was closed (another lane failed, or the render was stopped)."""


@dataclass
class _Ask:
    """One lane's ascent, waiting for its batch."""

    dreamer: Dreamer
    img: torch.Tensor  # (1,3,H,W)
    params: AscentParams
    step_map: torch.Tensor | None
    pull: tuple[torch.Tensor, torch.Tensor] | None
    regions: Regions | None
    progress: Callable[[int], None] | None
    out: torch.Tensor | None = None
    error: BaseException | None = None
    done: bool = False

    def key(self) -> tuple:
        """Ascents with equal keys run as one batch."""
        return (
            id(self.dreamer.objective),
            tuple(self.img.shape),
            self.params,
            self.step_map is None,
            self.pull is None,
            tuple(sorted(self.regions or {})),
        )


@dataclass
class Lockstep:
    """Gathers the ascents of ``lanes`` threads and runs them as batches (see the module doc).

    A lane that has no more ascents to hand in calls :meth:`leave`, so the others do not
    wait for it; :meth:`close` makes every waiting and later ascent raise
    :class:`LanesClosed`."""

    lanes: int
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _waiting: list[_Ask] = field(default_factory=list)
    _closed: bool = False
    batches: int = 0  # batches run so far
    dreams: int = 0  # ascents run so far (batches * lanes when every lane kept up)

    def dream(
        self,
        dreamer: Dreamer,
        img: torch.Tensor,
        params: AscentParams,
        step_map: torch.Tensor | None = None,
        pull: tuple[torch.Tensor, torch.Tensor] | None = None,
        regions: Regions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """``dreamer``'s ascent of ``img`` ``(1,3,H,W)``, run in a batch with the other lanes'."""
        ask = _Ask(dreamer, img, params, step_map, pull, regions, progress)
        with self._cond:
            if self._closed:
                raise LanesClosed
            self._waiting.append(ask)
            self._run_if_all_in()
            while not ask.done:
                self._cond.wait()
        if ask.error is not None:
            raise ask.error
        assert ask.out is not None
        return ask.out

    def leave(self) -> None:
        """One lane is done: the others stop waiting for it."""
        with self._cond:
            self.lanes -= 1
            self._run_if_all_in()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for ask in self._waiting:
                ask.error, ask.done = LanesClosed(), True
            self._waiting.clear()
            self._cond.notify_all()

    def _run_if_all_in(self) -> None:
        """Under the lock: once every running lane waits, run their ascents (the lanes are
        all waiting, so holding the lock costs nobody anything)."""
        if not self._waiting or len(self._waiting) < self.lanes:
            return
        groups: dict[tuple, list[_Ask]] = {}
        for ask in self._waiting:
            groups.setdefault(ask.key(), []).append(ask)
        self._waiting = []
        for asks in groups.values():
            try:
                outs = _batch(asks)
            except BaseException as e:  # each lane raises it in its own thread
                for ask in asks:
                    ask.error = e
            else:
                for ask, out in zip(asks, outs, strict=True):
                    ask.out = out
            for ask in asks:
                ask.done = True
            self.batches += 1
            self.dreams += len(asks)
        self._cond.notify_all()


def _batch(asks: list[_Ask]) -> list[torch.Tensor]:
    """The ascents of ``asks`` (equal keys) as one batch; one ``(1,3,H,W)`` image each."""
    first = asks[0]
    step_map = None
    if first.step_map is not None:
        step_map = torch.cat([a.step_map for a in asks])  # type: ignore[misc]
    pull = None
    if first.pull is not None:
        targets, weights = zip(*(a.pull for a in asks), strict=True)  # type: ignore[misc]
        pull = (torch.cat(targets), torch.cat(weights))
    regions = {n: torch.cat([a.regions[n] for a in asks]) for n in first.regions or {}}  # type: ignore[index]
    listeners = [a.progress for a in asks if a.progress is not None]

    def heard(steps: int) -> None:
        for listen in listeners:
            listen(steps)

    out = first.dreamer.alone()(
        torch.cat([a.img for a in asks]),
        first.params,
        heard if listeners else None,
        step_map=step_map,
        pull=pull,
        regions=regions or None,
    )
    return list(out.split(1))
