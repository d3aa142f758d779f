"""dreamvideo: temporally stable DeepDream videos and infinite zoom-dream animations.

The Python API (the same functions the command line calls)::

    import dreamvideo as dv

    cfg = dv.load_config("eyes", {"dream.step": 3.0})
    picture = dv.dream_image("cat.jpg", cfg)            # (H,W,3) uint8 array
    dv.dream_video("clip.mp4", "dream.mp4", dv.load_config("video"))
    dv.dream_zoom("zoom.mp4", dv.load_config("zoom", {"zoom.seconds": 4}))
"""

import os

__version__ = "0.1.0"

# OpenCV's video reader prints FFmpeg's and its own warnings straight to stderr, ahead of our
# one-line errors; errors are reported by us, so its logging stays quiet unless asked for.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__all__ = [
    "Config",
    "Dreamer",
    "UserError",
    "dream_image",
    "dream_video",
    "dream_zoom",
    "load_config",
    "load_dreamer",
]


def __getattr__(name: str):  # the API loads torch: only when it is used
    if name in __all__:
        from dreamvideo import api

        return getattr(api, name)
    raise AttributeError(f"module 'dreamvideo' has no attribute {name!r}")
