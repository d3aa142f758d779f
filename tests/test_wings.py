"""The package's shape: wings import only the wings below them, every wing is installed, the
names each wing offers exist, and benchmarks use only public or wing-level names."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dreamvideo"

# Each room may import its own modules and those of lower ranks, never a higher or an equal
# one: the ground imports nothing of the package; the engine knows tensors only; motion and
# media (what moves, what touches files) sit on it; the config reads schedules (motion); the
# renders use them all; scale runs renders on workers; the faces (API, studio, CLI) are on top.
RANKS = {
    "ground": 0,  # names, errors, text, lazy, masks (syntax), the package root (__version__)
    "engine": 1,
    "motion": 2,
    "media": 3,
    "config": 4,  # config and the field rules it is made of
    "presets": 5,
    "render": 6,
    "scale": 7,
    "api": 8,
    "studio": 8,
    "comfy": 9,  # the ComfyUI pack stands on the API; the CLI installs it
    "cli": 10,
    "__main__": 11,
}
GROUND = {"names", "errors", "text", "lazy", "masks", "stops"}
CONFIG = {"config", "fields"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """``dreamvideo.engine.ascent`` -> ``engine``; ``dreamvideo.fields`` -> ``config``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "ground"
    top = parts[1]
    if top in GROUND:
        return "ground"
    return "config" if top in CONFIG else top


def exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported(path: Path) -> set[str]:
    """Every dreamvideo module ``path`` imports, at any depth (functions and TYPE_CHECKING
    blocks included): ``from dreamvideo.x import y`` counts as ``dreamvideo.x.y`` when ``y``
    is a module, else as ``dreamvideo.x``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "dreamvideo"}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level or node.module.split(".")[0] != "dreamvideo":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if exists(sub) else node.module)
    return found


def upward_imports(files: list[Path], name=module_name) -> list[str]:
    """``importer (room) imports imported (room)`` for every import that goes up or sideways;
    ``name(path)``: the module a file is."""
    wrong = []
    for path in files:
        me = name(path)
        if me == "dreamvideo":  # the root only offers names lazily; its __version__ is ground
            continue
        for other in sorted(imported(path)):
            mine, theirs = room(me), room(other)
            if mine != theirs and RANKS[theirs] >= RANKS[mine]:
                wrong.append(f"{me} ({mine}) imports {other} ({theirs})")
    return wrong


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_ranked_room():
    for path in package_files():
        assert room(module_name(path)) in RANKS, path


def test_wings_import_only_the_wings_below_them():
    assert upward_imports(package_files()) == []


def test_the_import_check_sees_an_upward_import_hidden_in_a_function(tmp_path):
    """The walker must find imports inside functions, so a lazy import cannot sneak past."""
    text = (PACKAGE / "engine" / "ascent.py").read_text(encoding="utf-8") + (
        "\n\ndef _sneaky():\n    from dreamvideo.render.clip import render_video  # noqa\n"
    )
    copy = tmp_path / "ascent.py"
    copy.write_text(text, encoding="utf-8")
    assert upward_imports([copy], lambda path: "dreamvideo.engine.ascent") == [
        "dreamvideo.engine.ascent (engine) imports dreamvideo.render.clip (render)"
    ]


def test_every_package_folder_is_installed():
    """A folder missing from pyproject's package list works in the source tree and is missing
    from a real (non-editable) install."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert on_disk <= listed, on_disk - listed


@pytest.mark.parametrize(
    "wing",
    ["dreamvideo", *sorted(f"dreamvideo.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py"))],
)
def test_every_name_a_wing_offers_exists(wing):
    import importlib

    package = importlib.import_module(wing)
    assert package.__all__
    for name in package.__all__:
        assert getattr(package, name) is not None, f"{wing}.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        package.nonexistent  # noqa: B018


def test_the_command_line_and_the_wings_start_without_torch():
    """Importing a wing's package must not import its modules: the CLI prints its first line
    before torch is loaded."""
    code = (
        "import sys, dreamvideo, dreamvideo.cli, dreamvideo.engine, dreamvideo.media.paths, "
        "dreamvideo.render, dreamvideo.scale, dreamvideo.studio; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


WING_MODULE = re.compile(r"\bdreamvideo\.(engine|motion|media|render|scale|cli|studio)\.\w+")


def test_benchmarks_use_only_public_or_wing_level_names():
    """``from dreamvideo.render import render_video``, not ``dreamvideo.render.clip``, and no
    private names: the benchmarks measure what users can reach, and survive reshuffles."""
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not WING_MODULE.search(text), f"{path.name}: {WING_MODULE.search(text).group()}"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dreamvideo"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
