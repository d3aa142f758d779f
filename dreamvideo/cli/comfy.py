"""``dreamvideo comfy install COMFYUI``: the node pack for ComfyUI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dreamvideo.cli.common import app, out

comfy = typer.Typer(
    no_args_is_help=True, help="DeepDream nodes for ComfyUI: put the pack into a ComfyUI folder."
)
app.add_typer(comfy, name="comfy")


@comfy.command("install")
def install(
    comfyui: Annotated[
        Path, typer.Argument(help="the ComfyUI folder (where its main.py is)", metavar="COMFYUI")
    ],
) -> None:
    """Put the dreamvideo node pack into COMFYUI/custom_nodes and the example workflows into
    its workflow library.

    dreamvideo itself must be installed in ComfyUI's Python too (the one running main.py):
    PYTHON -m pip install 'dreamvideo[audio]' (audio: for music-driven zooms). Then restart
    ComfyUI: the nodes are under "dreamvideo".

    Example: dreamvideo comfy install ~/ComfyUI
    """
    from dreamvideo.comfy import install_pack

    for path in install_pack(comfyui):
        out.print(f"wrote {path}", markup=False, highlight=False)
    out.print("restart ComfyUI; the nodes are in the dreamvideo category", markup=False)
