"""Putting the node pack into a ComfyUI folder (``dreamvideo comfy install COMFYUI``): a small
``custom_nodes/dreamvideo`` folder whose ``__init__.py`` imports the nodes from the dreamvideo
package installed in ComfyUI's Python (ComfyUI loads a pack by its file path, without putting
it on ``sys.path``), with the registry's ``pyproject.toml`` fields, and the example workflows
in ComfyUI's workflow library (``user/default/workflows``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dreamvideo import __version__
from dreamvideo.errors import UserError
from dreamvideo.media.paths import write_atomic
from dreamvideo.text import path_text

MARK = "# installed by dreamvideo comfy install"  # a pack folder of ours says so
PACK_INIT = f'''"""dreamvideo's DeepDream nodes for ComfyUI: pictures, clips and zoom loops."""
{MARK}
import sys

try:
    from dreamvideo.comfy.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
except ImportError as e:  # ComfyUI only logs this: say what to do
    raise ImportError(
        "the dreamvideo nodes need the dreamvideo package in ComfyUI's Python: "
        f"{{sys.executable}} -m pip install 'dreamvideo[audio]' ({{e}})"
    ) from e

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
'''
PACK_PYPROJECT = f"""{MARK}
[project]
name = "comfyui-dreamvideo"
description = "Steady DeepDream: pictures, clips that follow the motion, music-driven zooms"
version = "{__version__}"
license = {{ text = "MIT" }}
dependencies = ["dreamvideo[audio]"]

[tool.comfy]
PublisherId = "dreamvideo"
DisplayName = "dreamvideo: steady DeepDream"
Icon = ""
"""
WORKFLOWS = "workflows"  # package data: the example workflows, in ComfyUI's two formats


def workflows() -> dict[str, str]:
    """The example workflows shipped with the package: file name -> JSON text."""
    folder = resources.files("dreamvideo.comfy") / WORKFLOWS
    return {f.name: f.read_text(encoding="utf-8") for f in folder.iterdir()
            if f.name.endswith(".json")}  # fmt: skip


def install_pack(comfyui: Path) -> list[Path]:
    """Write the pack and the example workflows into the ComfyUI folder ``comfyui``; an
    earlier install is brought up to date. Returns the files written."""
    comfyui = Path(comfyui)
    if not (comfyui / "main.py").is_file() or not (comfyui / "custom_nodes").is_dir():
        raise UserError(
            f"{path_text(comfyui)} is not a ComfyUI folder (it has no main.py and "
            "custom_nodes/); give the folder ComfyUI runs from"
        )
    pack = comfyui / "custom_nodes" / "dreamvideo"
    init = pack / "__init__.py"
    if pack.is_symlink() or (pack.exists() and not pack.is_dir()):
        raise UserError(f"{path_text(pack)} is in the way; move it away first")
    if init.exists() and MARK not in init.read_text(encoding="utf-8", errors="replace"):
        raise UserError(
            f"{path_text(pack)} holds another pack named dreamvideo; move it away first"
        )
    pack.mkdir(exist_ok=True)
    written = [init, pack / "pyproject.toml"]
    write_atomic(init, PACK_INIT.encode())
    write_atomic(pack / "pyproject.toml", PACK_PYPROJECT.encode())
    library = comfyui / "user" / "default" / "workflows"
    library.mkdir(parents=True, exist_ok=True)
    for name, text in workflows().items():
        target = library / f"dreamvideo-{name}"
        write_atomic(target, text.encode())
        written.append(target)
    return written
