"""The local web studio: :mod:`dreamvideo.studio.session` does the work of a browser session
(no web code), :mod:`dreamvideo.studio.page` draws the Gradio page over it, and
:mod:`dreamvideo.studio.server` serves it."""

from dreamvideo.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {"server": ("serve",)})
