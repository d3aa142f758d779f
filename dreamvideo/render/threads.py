"""Background work beside the ascent: a reader thread that decodes ahead, a pool that finds
the motion of the frames ahead, and a writer thread that encodes behind."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


def prefetch(items: Iterator[T], depth: int = 3) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (decode, flow);
    ``depth`` 0 iterates them in the caller's thread, one at a time.

    Errors raised by ``items`` come out here, in the caller's thread.
    """
    if depth == 0:
        yield from items
        return
    with ThreadPoolExecutor(1, thread_name_prefix="dreamvideo-read") as pool:
        pending = deque(pool.submit(next, items, _END) for _ in range(depth))
        try:
            while True:
                item = pending.popleft().result()
                if item is _END:
                    return
                pending.append(pool.submit(next, items, _END))
                yield item  # type: ignore[misc]
        finally:
            for f in pending:
                f.cancel()


def in_parallel(fn: Callable[[T], R], items: Iterator[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for each of ``items``, in order, computed on ``workers`` threads up to
    twice as many items ahead (``workers`` 1: in the caller's thread, one at a time).
    ``items`` is drawn in the caller's thread; errors come out in order, here."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="dreamvideo-flow") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


class Sink:
    """Runs calls in order on one background thread (encoding), at most ``depth`` queued;
    ``depth`` 0 runs each call at once in the caller's thread.

    An error in the thread is raised by the next :meth:`submit` or by :meth:`drain`, and the
    calls queued after the one that failed are skipped: a frame whose write failed must not be
    followed by the next frame under its name, nor by the call that finishes the file.
    """

    def __init__(self, depth: int = 4) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dreamvideo-write") if depth else None
        self._pending: deque[Future[Any]] = deque()
        self._depth = depth
        self._failed = False

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self._failed:
            return
        try:
            fn(*args)
        except BaseException:
            self._failed = True
            raise

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            fn(*args)
            return
        self._pending.append(self._pool.submit(self._call, fn, args))
        while self._pending and (len(self._pending) > self._depth or self._pending[0].done()):
            self._pending.popleft().result()

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def stop(self) -> None:
        """Drop queued calls and wait for the running one (after an error or Ctrl-C)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
