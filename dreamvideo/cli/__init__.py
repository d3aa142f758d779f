"""The ``dreamvideo`` command line (typer): :mod:`dreamvideo.cli.entry` runs it, one module per
family of commands adds them, :mod:`dreamvideo.cli.common` holds what they share."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {"entry": ("main", "run")})
