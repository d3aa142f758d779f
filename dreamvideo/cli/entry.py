"""The ``dreamvideo`` command line: one function per command (in :mod:`dreamvideo.cli.pictures`
and :mod:`dreamvideo.cli.clips`), every user mistake caught once here as one line."""

from __future__ import annotations

import sys

# each command module adds its commands to the app when imported
from dreamvideo.cli import audio, batch, clips, comfy, doctor, live, pictures, ui, zoom  # noqa: F401
from dreamvideo.cli.common import app, err
from dreamvideo.errors import UserError, out_of_memory
from dreamvideo.stops import install

try:  # typer >= 0.22 carries its own click; older ones use click's exceptions
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # pragma: no cover
    from click import ClickException as _UsageError  # type: ignore[assignment]


# --help lists the commands in the order people need them, not in import order
ORDER = [
    "image",
    "video",
    "zoom",
    "live",
    "gallery",
    "layers",
    "presets",
    "metrics",
    "audio",
    "batch",
    "ui",
    "doctor",
]
app.registered_commands.sort(key=lambda c: ORDER.index(c.name or c.callback.__name__))
# the whole first line of each command's docstring in the top-level --help, not cut at "..."
for _command in app.registered_commands:
    _command.short_help = _command.short_help or (_command.callback.__doc__ or "").split("\n")[0]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every user mistake (and running out of memory) becomes one
    line on stderr and exit code 2, Ctrl-C exit code 130 (SIGTERM 143, SIGHUP 129). Returns
    the exit code (the console script exits with it)."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="dreamvideo")
        return code if isinstance(code, int) else 0
    except UserError as e:
        message = f"error: {e}"
    except _UsageError as e:
        message = f"error: {e.format_message()}"
    except KeyboardInterrupt as e:
        err.print("interrupted", markup=False)
        return getattr(e, "code", 130)
    except Exception as e:  # a machine too small for the job is not a bug: say what to try
        if (oom := out_of_memory(e)) is None:
            raise
        message = f"error: {oom}"
    err.print(" ".join(message.split()), markup=False, highlight=False, soft_wrap=True)
    return 2


def run() -> None:
    """Console-script entry point: Ctrl-C, a terminal closed (SIGHUP) or a service manager's
    stop (SIGTERM) end a render once, keeping what was dreamed (:mod:`dreamvideo.stops`)."""
    install()
    sys.exit(main())


if __name__ == "__main__":
    run()
