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

Both are set by a small launcher (this Python, started fresh, which then becomes ffmpeg by
``exec``), not by a ``preexec_fn``: between fork and exec a ``preexec_fn`` child runs Python
in a copy of a process full of threads, and Python 3.12 there frees what the other threads
held (in ComfyUI, a PyAV scaler whose lock was copied mid-use), which can hang the child
before ffmpeg ever starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

# argv: the parent's pid, "1" to block the session's signals, then the command. Exit 127 (as
# a shell does) when the command cannot be started, with the reason on stderr.
_LAUNCH = """
import ctypes, os, signal, sys
parent, shielded, *cmd = sys.argv[1:]
if sys.platform.startswith("linux"):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(parent):  # the parent died before the request took hold
        os._exit(137)
if shielded == "1":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
try:
    os.execvp(cmd[0], cmd)
except OSError as e:
    sys.stderr.write(f"cannot start {cmd[0]}: {e.strerror}\\n")
    os._exit(127)
"""


def child(cmd: Sequence[str], shielded: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``subprocess.run`` / ``Popen`` (``args`` included) that start
    ``cmd`` as the module doc says (``shielded``: deaf to the session's signals). Without a
    Python to launch with (an embedding that has no ``sys.executable``) ``cmd`` starts
    plainly, in its own process group."""
    launch = [sys.executable, "-I", "-S", "-c", _LAUNCH, str(os.getpid()), "01"[shielded]]
    return {"args": [*launch, *cmd] if sys.executable else list(cmd), "process_group": 0}
