"""``dreamvideo ui``: the local web studio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dreamvideo.cli.common import app, err


@app.command()
def ui(
    host: Annotated[
        str, typer.Option("--host", help="address to listen on (127.0.0.1: this machine only)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port", min=1, max=65535)] = 7860,
    share_folder: Annotated[
        Path,
        typer.Option(
            "--share-folder", help="folder for sessions and uploads; nothing else is served"
        ),
    ] = Path("dreamvideo-studio"),
) -> None:
    """Open the web studio: pictures, clips, zooms and presets in the browser.

    Example: dreamvideo ui --port 7860, then open http://127.0.0.1:7860
    """
    from dreamvideo.studio.server import serve

    err.print(f"studio on http://{host}:{port} (files in {share_folder}); Ctrl-C stops it")
    serve(share_folder, host, port)
