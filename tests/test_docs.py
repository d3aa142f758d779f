"""Every command in the README and on the documentation site (``docs/*.md``) runs, every
picture they show is made by ``samples/make_samples.py``, and the site builds.

The blocks of each page run in order, in a folder of the page's own where ``samples/`` is
the repository's, ``~`` is an empty home (torch's cache below it), and
``googlenet-1378be20.pth`` lies as the page's ``curl`` would leave it (a stand-in:
GoogLeNet's shape, random weights). A block is read as:

- ``bash``: each command runs. ``dreamvideo ...`` runs as written except for its effort
  (flags that set size or work are turned down: ``--octaves 5`` becomes ``--octaves 1``,
  ``--set`` values shrink the rest), and the file it names with ``-o`` must be there and
  readable afterwards; ``dreamvideo ui`` serves until stopped, so only its options are
  parsed (``tests/test_studio.py`` drives it in a browser). Install steps are checked, not
  run: the extras ``pip install`` names must exist (this environment was installed from
  them). A benchmark or script must exist and take the options given, ``pytest`` files must
  exist, and ``mkdocs`` is :func:`test_the_site_builds_strict`. ``mkdir``, ``cp``, ``rm``
  and ``mv`` run. Anything else fails: a block that needs what CI lacks (a GPU, a camera,
  the network, a cluster) says so in a ``<!-- not run: REASON -->`` line above it.
- ``python``: runs, with ``dv.load_config`` shrinking the work the same way.
- ``yaml`` under ``<!-- file: NAME -->``: written as NAME (a jobs file's jobs shrunk).
- ``text`` under ``<!-- output -->``: what the bash block above it printed last; each line
  must be in that output word for word, but for numbers (the tests' sizes are tiny) and
  ``...``, which stands for a path that differs between machines.

At the end of the session the count of blocks run and the blocks marked out, with why, are
printed (see ``conftest.pytest_terminal_summary``).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import cli
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# what the session ran and left out, printed at its end
TALLY: dict[str, list[str]] = {"blocks run": [], "commands run": [], "checked": [],
                               "not run": []}  # fmt: skip

# Flag -> the value it gets in the test (same meaning, least work); per command where the
# same flag means something else.
TINY_FLAGS = {"--octaves": "1", "--iterations": "1", "--width": "64", "--height": "48",
              "--seconds": "0.25", "--frames": "2"}  # fmt: skip
TINY_COMMAND_FLAGS = {"live": {"--seconds": "30", "--width": "64"}}
# Per command: what is added at the end, turning down what no flag in the docs sets.
TINY_EXTRA = {
    "image": ["--set", "dream.octaves=1", "--set", "dream.iterations=1", "--set", "dream.tile=64"],
    "gallery": ["--set", "dream.octaves=1", "--set", "dream.iterations=1"],
    "video": ["--set", "video.width=64", "--set", "video.max_frames=8", "--set",
              "dream.iterations=1", "--set", "dream.octaves=1"],
    "zoom": ["--set", "zoom.seconds=0.25", "--set", "zoom.width=48", "--set", "zoom.height=48",
             "--set", "zoom.iterations=1"],
    "live": ["--frames", "2", "--width", "64"],
    "doctor": ["--no-timing"],
}  # fmt: skip
# The same for the Python API: every dv.load_config gets these over what it asks for.
TINY_SETTINGS = {"dream.octaves": 1, "dream.iterations": 1, "video.width": 64,
                 "video.max_frames": 8, "zoom.seconds": 0.25, "zoom.width": 48,
                 "zoom.height": 48, "zoom.iterations": 1}  # fmt: skip
INSTALL = ("python3 -m venv", ". .venv/bin/activate", "source .venv/bin/activate")
PICTURES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
FILES = ("mkdir", "cp", "rm", "mv")
SERVERS = ("ui",)


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    marker: str = ""  # the HTML comment just above it, if any

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, each with the marker comment directly above it."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = re.fullmatch(r"<!-- (.*) -->", above.strip())
        name = str(page.relative_to(ROOT))
        found.append(Block(name, i + 1, m.group(1), "\n".join(lines[i + 1 : end]),
                           marker.group(1) if marker else ""))  # fmt: skip
        i = end + 1
    return found


def commands(text: str) -> list[list[str]]:
    """The commands of a shell block as argument lists: continuation lines joined, ``&&``,
    ``;`` and ``|`` split, comments dropped, quoted text kept whole."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars="&;|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        part: list[str] = []
        for token in [*lexer, "&&"]:
            if token in ("&&", ";", "|"):
                if part:
                    out.append(part)
                part = []
            else:
                part.append(token)
    return out


def tiny(args: list[str], port: int) -> list[str]:
    """A ``dreamvideo`` command (without the word) with its effort turned down."""
    flags = {**TINY_FLAGS, **TINY_COMMAND_FLAGS.get(args[0], {}), "--serve": str(port)}
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in flags:
            out[i + 1] = flags[arg]
    return out + TINY_EXTRA.get(args[0], [])


def extras() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(meta["project"]["optional-dependencies"])


def check_install(args: list[str]) -> None:
    """``pip install ...``: every extra it names is one of the package's."""
    named = [m for a in args for m in re.findall(r"(?:^\.|dreamvideo)\[([\w,]+)\]", a)]
    for group in named:
        assert set(group.split(",")) <= extras(), f"unknown extra in {shlex.join(args)}"


def check_script(args: list[str]) -> None:
    """``python SCRIPT --option ...``: the script exists and takes each option."""
    script = ROOT / args[1]
    assert script.is_file(), f"{args[1]} does not exist"
    source = script.read_text(encoding="utf-8")
    for option in (a.split("=")[0] for a in args[2:] if a.startswith("--")):
        assert f'"{option}"' in source, f"{args[1]} takes no {option}"


def check_output(args: list[str], cwd: Path) -> None:
    """The file a command wrote with ``-o`` is there and readable."""
    from dreamvideo.media.ffmpeg import count_frames

    if "-o" not in args:
        return
    target = cwd / args[args.index("-o") + 1]
    if "%" in target.name:
        prefix = target.name.split("%")[0]
        made = [p for p in target.parent.glob(prefix + "*") if p.suffix == target.suffix]
        assert made, f"no frames {target}"
        target = made[0]
    assert target.is_file() and target.stat().st_size > 0, f"{target} was not written"
    if target.suffix in PICTURES:
        Image.open(target).verify()
    else:
        assert count_frames(target) > 0, f"{target} holds no frames"


def expected(text: str, output: str, where: str) -> None:
    """Each line of ``text`` is in ``output``, numbers aside, ``...`` matching anything."""
    said = " ".join(output.split())
    for line in text.splitlines():
        words = re.split(r"(\.\.\.|\d+)", " ".join(line.split()))
        pattern = "".join(
            ".*?" if w == "..." else r"\d+" if w.isdigit() else re.escape(w) for w in words
        )
        assert re.search(pattern, said), f"{where}: not said any more: {line}\n{output}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_shell(block: Block, cwd: Path, home: Path, answered: bool) -> str:
    """Run (or check) every command of a bash block; returns the last one's output. Only
    the last command may fail, with a one-line error, and only where the page shows the
    error under it (``answered``)."""
    from dreamvideo.cli.entry import app

    output, todo = "", commands(block.text)
    for k, args in enumerate(todo):
        args = [home.as_posix() + a[1:] if a.startswith("~") else a for a in args]
        line = shlex.join(args)
        if args[0] == "dreamvideo" and args[1:2] == ["ui"]:
            import typer.main

            typer.main.get_command(app).commands["ui"].make_context("ui", args[2:])
            TALLY["checked"].append(f"{block.where}: {line} (options parsed: it serves)")
        elif args[0] == "dreamvideo":
            result = cli(*tiny(args[1:], free_port()))
            output = result.output
            last = output.strip().splitlines()[-1] if output.strip() else ""
            failed_as_shown = answered and k == len(todo) - 1 and last.startswith("error: ")
            assert result.code == 0 or failed_as_shown, f"{block.where}: {line}\n{output}"
            if result.code == 0:
                check_output(args[1:], cwd)
            TALLY["commands run"].append(f"{block.where}: {line}")
        elif args[0] in FILES:
            subprocess.run(args, cwd=cwd, check=True, timeout=60)
            TALLY["commands run"].append(f"{block.where}: {line}")
        elif args[:2] == ["pip", "install"] or any(line.startswith(s) for s in INSTALL):
            check_install(args)
            TALLY["checked"].append(f"{block.where}: {line} (an install step)")
        elif args[0] == "python" and args[1:3] == ["-m", "pytest"]:
            for path in (a for a in args[3:] if not a.startswith("-")):
                assert (ROOT / path.split("::")[0]).exists(), f"{block.where}: no {path}"
            TALLY["checked"].append(f"{block.where}: {line} (the tests themselves)")
        elif args[0] == "python" and args[1].endswith(".py"):
            check_script(args)
            TALLY["checked"].append(f"{block.where}: {line} (the script and its options)")
        elif args[0] == "mkdocs":
            TALLY["checked"].append(f"{block.where}: {line} (test_the_site_builds_strict)")
        else:
            raise AssertionError(
                f"{block.where}: `{line}` is neither run nor checked by the docs tests; "
                "mark its block <!-- not run: REASON --> if CI cannot run it"
            )
    TALLY["blocks run"].append(block.where)
    return output


def run_python(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    import dreamvideo
    from dreamvideo import api

    real = api.load_config

    def load_config(preset="default", overrides=None):  # noqa: ANN001, ANN202
        return real(preset, {**(overrides or {}), **TINY_SETTINGS})

    monkeypatch.setattr(dreamvideo, "load_config", load_config)
    exec(compile(block.text, block.where, "exec"), {"__name__": "__docs__"})  # noqa: S102
    TALLY["blocks run"].append(block.where)


def write_file(block: Block, name: str, cwd: Path) -> None:
    """A yaml block the page names as a file; a jobs file's jobs shrunk like the commands."""
    data = yaml.safe_load(block.text)
    if isinstance(data, list):
        for job in data:
            sets = TINY_EXTRA[job["kind"]][1::2]
            for key, _, value in (s.partition("=") for s in sets):
                job.setdefault("set", {})[key] = float(value) if "." in value else int(value)
    (cwd / name).write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture(scope="session")
def googlenet_file(tmp_path_factory) -> Path:
    """What ``curl -LO .../googlenet-1378be20.pth`` leaves: GoogLeNet's state dict, here
    with random weights (nothing is downloaded in tests)."""
    import torch

    from dreamvideo.engine.models import _SPECS

    path = tmp_path_factory.mktemp("weights") / "googlenet-1378be20.pth"
    torch.save(_SPECS["googlenet"].build().state_dict(), path)
    return path


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_block_runs(page, tmp_path, monkeypatch, googlenet_file) -> None:
    cwd, home = tmp_path / "work", tmp_path / "home"
    cwd.mkdir()
    (home / "ComfyUI" / "custom_nodes").mkdir(parents=True)  # a ComfyUI folder's skeleton
    (home / "ComfyUI" / "main.py").write_text("")
    (cwd / "samples").symlink_to(ROOT / "samples")
    (cwd / googlenet_file.name).symlink_to(googlenet_file)
    monkeypatch.chdir(cwd)
    # ``~`` in a command is the empty home, and torch's cache is the one below it; HOME itself
    # stays: a Ray started again in this process after HOME changed never comes up
    monkeypatch.setenv("TORCH_HOME", str(home / ".cache" / "torch"))
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "IMAGEIO_FFMPEG_EXE"):
        monkeypatch.delenv(name, raising=False)
    output, found = "", blocks(page)
    for block, after in zip(found, [*found[1:], None][: len(found)], strict=True):
        answered = after is not None and after.marker == "output"
        if block.marker.startswith("not run:"):
            TALLY["not run"].append(f"{block.where}: {block.marker[8:].strip()}")
        elif block.lang == "bash":
            output = run_shell(block, cwd, home, answered)
        elif block.lang == "python":
            run_python(block, monkeypatch)
        elif block.lang == "yaml" and block.marker.startswith("file:"):
            write_file(block, block.marker[5:].strip(), cwd)
        elif block.lang == "text" and block.marker == "output":
            expected(block.text, output, block.where)


def test_blocks_marked_out_say_why() -> None:
    """Markers are spelled as the runner reads them, and a block is left out only with a
    reason: what it needs that CI lacks."""
    for page in PAGES:
        for block in blocks(page):
            if block.marker:
                assert re.fullmatch(r"not run: \w.{10,}|file: [\w.-]+|output", block.marker), (
                    f"{block.where}: unknown marker <!-- {block.marker} -->"
                )
            if block.marker == "output":
                assert block.lang == "text", f"{block.where}: output markers go on text blocks"
            assert block.lang in ("bash", "python", "yaml", "text", ""), block.where


def test_the_docs_use_every_command() -> None:
    used = {args[1] for page in PAGES for b in blocks(page) if b.lang == "bash"
            for args in commands(b.text) if args[0] == "dreamvideo" and len(args) > 1}  # fmt: skip
    assert {"image", "video", "zoom", "live", "gallery", "layers", "presets", "metrics",
            "audio", "batch", "ui", "doctor", "comfy"} <= used  # fmt: skip


def test_the_readmes_two_commands_are_the_ones_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    main = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
            "dreamvideo video samples/astronaut-pan.mp4 -o astronaut-dream.mp4")  # fmt: skip
    tests = 'pip install -e ".[test]" && python -m pytest'
    assert f"```bash\n{main}\n```" in readme and f"```bash\n{tests}\n```" in readme
    assert f"\n{tests}\n" in ci


def test_every_picture_shown_is_made_by_the_samples_script() -> None:
    script = (ROOT / "samples" / "make_samples.py").read_text(encoding="utf-8")
    shown = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:jpg|png|gif))\)", text):
            file = (page.parent / path).resolve()
            assert file.is_file(), f"{page.name} shows {path}, which is not there"
            shown.add(file)
    samples = {f for f in shown if f.parent == ROOT / "samples"}
    assert len(samples) >= 8
    for file in samples:
        assert file.name in script, f"{file.name} is not made by samples/make_samples.py"


def test_every_benchmark_named_exists() -> None:
    for page in PAGES:
        for name in re.findall(r"\b(?:bench_|profile_)\w+\.py|gpu\.sh", page.read_text()):
            assert (ROOT / "benchmarks" / name).is_file(), f"{page.name} names {name}"


def test_a_sample_made_again_matches_the_committed_one(tmp_path, monkeypatch) -> None:
    """The samples are what the current code makes: one is made again by its own command and
    its dreamed detail (dream minus picture) compared with the committed one's. Not to the
    bit: CPUs round convolutions differently and the ascent amplifies it (the detail of one
    dream made on an AMD EPYC and on an Intel Xeon correlates 0.83; with the neighbouring
    layer, blocks.9 for blocks.10, 0.56)."""
    monkeypatch.syspath_prepend(str(ROOT / "samples"))
    import make_samples

    args = shlex.split(make_samples.RENDERS["gentle"])
    at = args.index("-o") + 1
    committed, args[at] = ROOT / args[at], str(tmp_path / Path(args[at]).name)
    monkeypatch.chdir(ROOT)  # the commands name samples/ from the repository root
    assert cli(*args).code == 0
    made = np.asarray(Image.open(args[at]), np.float32)
    kept = np.asarray(Image.open(committed), np.float32)
    assert made.shape == kept.shape
    source = Image.open(ROOT / args[args.index("image") + 1]).convert("RGB")
    picture = np.asarray(source.resize(made.shape[1::-1], Image.LANCZOS), np.float32)
    a, b = (x - picture for x in (made, kept))
    a, b = a - a.mean(), b - b.mean()
    assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.75


def test_every_preset_is_listed_in_the_readme() -> None:
    from dreamvideo.presets import presets_dir

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", readme, re.M))
    bundled = {p.stem for p in presets_dir().glob("*.yaml")}
    assert bundled <= listed, bundled - listed


def test_the_site_builds_strict(tmp_path) -> None:
    """``mkdocs build --strict`` (a broken link or a page missing from the navigation fails
    it); the reference pages hold every setting, command and preset."""
    from dreamvideo.config import SECTIONS
    from dreamvideo.presets import preset_names

    site = tmp_path / "site"
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    r = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = set(re.findall(r"'([\w/-]+\.md)'", str(nav)))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= listed, f"pages not in mkdocs.yml's nav: {pages - listed}"
    settings = (site / "reference" / "settings" / "index.html").read_text()
    for name, section in SECTIONS.items():
        for field in (f.name for f in dataclasses.fields(section)):
            assert f"{name}.{field}" in settings, f"{name}.{field} missing from the reference"
    commands_page = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("image", "video", "zoom", "live", "batch", "ui", "doctor", "comfy install"):
        assert f"dreamvideo {command}" in commands_page, command
    presets_page = (site / "reference" / "presets" / "index.html").read_text()
    assert all(f"<code>{name}</code>" in presets_page for name in preset_names())
    assert (site / "index.html").is_file() and (site / "troubleshooting" / "index.html").is_file()
