"""How dreamvideo starts its child processes (ffmpeg), so that none outlives it and none is
stopped by a signal meant for dreamvideo.

- **Its own process group.** A Ctrl-C in the terminal reaches only dreamvideo, which then
  finishes or stops its children itself (killed by the same key, an encoder would fail the
  segment being written and turn an interruption into an encoding error).
- **Dies with its parent.** On Linux each child asks the kernel for SIGKILL when the thread
  that started it ends (``prctl(PR_SET_PDEATHSIG)``), so not even a SIGKILL of dreamvideo
  leaves an ffmpeg behind, reparented to init and waiting on a port. Children are started
  from threads that outlive them (the main thread, a render's reader, writer or lane).
- **Deaf to the session's signals** (``shielded``): SIGINT, SIGTERM and SIGHUP sent to every
  process of a session (a closed terminal, a service manager stopping its unit) are blocked
  in encoders, which finish when their input ends, whenever dreamvideo decides; what they
  wrote is never cut short by the signal that stops dreamvideo. A child that is stopped by
  SIGTERM (a stream reader, which then finishes its sound file) is started without it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h
SESSION_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up once, here: the child runs as little Python as it can


def _setup(parent: int, shielded: bool) -> Callable[[], None]:
    """What a child runs between fork and exec: ask for SIGKILL when its parent goes (and go
    now if it already went), and block the session's signals when ``shielded``."""

    def setup() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the request took hold
                os.kill(os.getpid(), signal.SIGKILL)
        if shielded:
            signal.pthread_sigmask(signal.SIG_BLOCK, SESSION_SIGNALS)

    return setup


def child(shielded: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``subprocess.run`` / ``Popen`` that start a child as the module
    doc says (``shielded``: deaf to the session's signals)."""
    return {"process_group": 0, "preexec_fn": _setup(os.getpid(), shielded)}
