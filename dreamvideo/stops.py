"""How a run stops on a signal: SIGINT (Ctrl-C), SIGTERM (``timeout``, a service manager) and
SIGHUP (a closed terminal) stop it as Ctrl-C does, keeping what was dreamed, and exit with
128 + the signal's number, the shell's convention.

A run is stopped once: the first signal raises :class:`Stopped` where the run is, and the
signals that follow while it finishes (writes its recording, keeps its checkpoints) are
noted, not raised, so they cannot cut that short; the third one stops it at once, as
ffmpeg does. Work that must not be cut short even by the first (a live recording being
finished) runs :func:`shielded`: a signal that comes during it is raised when it ends.
The handlers are the command line's (:func:`install`); without them (the Python API) Ctrl-C
is Python's own KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HARD = 3  # the signal that stops a run at once, however it is finishing


class Stopped(KeyboardInterrupt):
    """A signal stopped the run; :attr:`code` is the exit code (130 for Ctrl-C, 143 for
    SIGTERM, 129 for SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum

    @property
    def said(self) -> str:
        """How the run says it stopped: "stopped with Ctrl-C", "stopped by SIGTERM"."""
        return "stopped with Ctrl-C" if self.signum == signal.SIGINT else f"stopped by {self}"


_state = {"received": 0, "pending": 0, "shields": 0}
_lock = threading.Lock()


def _handler(signum: int, frame: object) -> None:
    with _lock:
        _state["received"] += 1
        hard = _state["received"] >= HARD
        if _state["received"] > 1 and not hard:
            return  # the run is already stopping: let it finish what it keeps
        if _state["shields"] and not hard:
            _state["pending"] = signum
            return
    raise Stopped(signum)


def install() -> None:
    """The command line's handlers for SIGINT, SIGTERM and SIGHUP (see the module doc)."""
    _state.update(received=0, pending=0, shields=0)
    for sig in SIGNALS:
        signal.signal(sig, _handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run the block whole: a first signal that comes during it is raised after it."""
    with _lock:
        _state["shields"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["shields"] -= 1
            pending = _state["pending"] if not _state["shields"] else 0
            _state["pending"] = 0 if pending else _state["pending"]
        if pending:
            raise Stopped(pending)
