"""Serving the studio: Gradio (the optional extra ``dreamvideo[ui]``) is imported only here
and in :mod:`dreamvideo.studio.page`, which draws the page over :mod:`dreamvideo.studio.session`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dreamvideo.errors import UserError

MAX_UPLOAD = "200mb"  # per file; a 1080p clip of a few minutes


def serve(root: Path, host: str, port: int, block: bool = True) -> Any:
    """Serve the studio on ``host:port`` and return the Gradio app. Only ``root`` (the
    sessions, and Gradio's own copies of uploads) is readable through the page."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")  # read when gradio is imported
    try:
        from dreamvideo.studio.page import CSS, build
    except ImportError as e:
        if "gradio" not in str(e):
            raise
        raise UserError("the studio needs Gradio: pip install 'dreamvideo[ui]'") from None
    app = build(root)
    app.queue(default_concurrency_limit=1)  # one render at a time
    app.launch(
        server_name=host,
        server_port=port,
        allowed_paths=[str(root)],
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        quiet=not block,
        css=CSS,
    )
    return app
