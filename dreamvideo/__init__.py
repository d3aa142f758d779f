"""dreamvideo: temporally stable DeepDream videos and infinite zoom-dream animations.

The Python API (the same functions the command line calls)::

    import dreamvideo as dv

    cfg = dv.load_config("eyes", {"dream.step": 3.0})
    picture = dv.dream_image("cat.jpg", cfg)            # (H,W,3) uint8 array
    dv.dream_video("clip.mp4", "dream.mp4", dv.load_config("video"))
    dv.dream_zoom("zoom.mp4", dv.load_config("zoom", {"zoom.seconds": 4}))

The package is built in wings, each importing only the ones below it: ``engine`` (the
DeepDream core on tensors), ``motion`` (what moves between frames), ``media`` (files and
processes), ``render`` (the renders), ``scale`` (workers and batches), and the faces on top:
``cli``, ``studio`` and this API.
"""

import os

from dreamvideo.lazy import lazy_exports


def _version() -> str:
    """The installed package's version; from ``pyproject.toml`` when run from a source tree
    that is not installed (``PYTHONPATH=.``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dreamvideo")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        try:
            project = Path(__file__).resolve().parent.parent / "pyproject.toml"
            return tomllib.loads(project.read_text(encoding="utf-8"))["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


__version__ = _version()

# OpenCV's video reader prints FFmpeg's and its own warnings straight to stderr, ahead of our
# one-line errors; errors are reported by us, so its logging stays quiet unless asked for.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

# the API loads torch: only when it is used
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "api": ("dream_image", "dream_video", "dream_zoom", "load_config", "load_dreamer"),
        "config": ("Config",),
        "engine.dreamer": ("Dreamer",),
        "errors": ("UserError",),
    },
)
