"""MkDocs hook: the reference pages, made from the code at every build so they cannot drift.

- ``reference/settings.md``: every config setting (section, key, type, default, range or
  choices, and the comment written above it in ``dreamvideo/config.py``);
- ``reference/cli.md``: every command and option of the typer app, with its help;
- ``reference/presets.md``: every bundled preset and what it changes from the defaults;
- ``reference/api.md``: the Python API, from its docstrings;
- ``results.md``: ``benchmarks/RESULTS.md``, where every figure of the site comes from.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def _comments(source: str) -> dict[tuple[str, str], str]:
    """(class, field) -> the comment lines written just above the field, joined."""
    found, cls, above = {}, None, []
    for line in source.splitlines():
        if m := re.match(r"class (\w+)\(", line):
            cls, above = m.group(1), []
        elif m := re.match(r"    # ?(.*)", line):
            above.append(m.group(1))
        elif cls and (m := re.match(r"    (\w+): ", line)):
            found[(cls, m.group(1))] = " ".join(above)
            above = []
        else:
            above = []
    return found


def _type(tp: object) -> str:
    text = str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("NoneType", "null").replace("|", "or")


def _rules(meta: typing.Mapping[str, object]) -> str:
    parts = []
    if "choices" in meta:
        parts.append(", ".join(f"`{c}`" for c in meta["choices"]))  # type: ignore[union-attr]
    if "words" in meta:
        parts.append(str(meta["words"]))
    else:
        if "min" in meta:
            parts.append(f">= {meta['min']}")
        if "above" in meta:
            parts.append(f"> {meta['above']}")
        if "max" in meta:
            parts.append(f"<= {meta['max']}")
    if "pattern" in meta:
        parts.append(str(meta["pattern"][1]))  # type: ignore[index]
    if meta.get("schedule"):
        parts.append("or keyframes / an expression")
    return "; ".join(parts).replace("|", "\\|")


def settings_page() -> str:
    from dreamvideo.config import SECTIONS

    comments = _comments((ROOT / "dreamvideo" / "config.py").read_text(encoding="utf-8"))
    out = ["# Settings\n",
           "Every setting a preset, `--set section.key=value` or `dv.load_config` can give, "
           "made from `dreamvideo/config.py` at every build of this site.\n"]  # fmt: skip
    for name, section in SECTIONS.items():
        out += [
            f"\n## `{name}`\n",
            f"{inspect.getdoc(section)}\n",
            "| key | type | default | accepted | what it does |",
            "|---|---|---|---|---|",
        ]
        hints = typing.get_type_hints(section)
        for f in dataclasses.fields(section):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            what = comments.get((section.__name__, f.name), "").replace("|", "\\|")
            out.append(f"| `{name}.{f.name}` | {_type(hints[f.name])} | `{default!r}` | "
                       f"{_rules(f.metadata)} | {what} |")  # fmt: skip
    return "\n".join(out) + "\n"


def cli_page() -> str:
    import typer.main

    from dreamvideo.cli.entry import app

    root = typer.main.get_command(app)
    out: list[str] = ["# Commands\n",
           "Every command and option of `dreamvideo`, made from the command line itself at "
           "every build of this site (`dreamvideo COMMAND --help` says the same).\n"]  # fmt: skip

    def command(path: str, cmd) -> None:
        if hasattr(cmd, "commands"):
            for sub in cmd.commands.values():
                command(f"{path} {sub.name}", sub)
            return
        out.append(f"\n## `{path}`\n")
        out.append(inspect.cleandoc(cmd.help or "") + "\n")
        out.extend(["| argument or option | default | what it does |", "|---|---|---|"])
        for p in cmd.params:
            if p.name == "help":
                continue
            spelled = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts]) or f"`{p.name}`"
            if p.param_type_name == "argument":
                spelled = f"`{(p.metavar or p.name).upper()}`"
            default = "" if p.default in (None, False) or p.required else f"`{p.default}`"
            helps = (getattr(p, "help", None) or "").replace("|", "\\|")
            out.append(f"| {spelled} | {default} | {helps} |")

    for sub in root.commands.values():
        command(f"dreamvideo {sub.name}", sub)
    return "\n".join(out) + "\n"


def presets_page() -> str:
    from dreamvideo.config import Config
    from dreamvideo.presets import load_preset, preset_names, read_preset

    defaults = Config().to_dict()
    out = ["# Presets\n",
           "Every bundled preset (`configs/`), what it is for and what it changes from the "
           "defaults, made from the files at every build of this site. `dreamvideo presets "
           "NAME` prints one; a YAML file of your own works wherever a name does.\n"]  # fmt: skip
    for name in preset_names():
        path, raw = read_preset(name)
        cfg = load_preset(name).to_dict()
        changed = [f"`{s}.{k}: {v!r}`" for s, values in cfg.items() for k, v in values.items()
                   if defaults[s][k] != v]  # fmt: skip
        what = raw.get("description", "") if isinstance(raw, dict) else ""
        out += [f"\n## `{name}`\n", f"{what}\n", "Changes: " + (", ".join(changed) or "none")]
    return "\n".join(out) + "\n"


def api_page() -> str:
    import dreamvideo as dv

    out = ["# Python API\n", inspect.getdoc(dv) + "\n"]
    for name in ("load_config", "load_dreamer", "dream_image", "dream_video", "dream_zoom"):
        fn = getattr(dv, name)
        out += [f"\n## `dv.{name}{inspect.signature(fn)}`\n", inspect.getdoc(fn) + "\n"]
    out += ["\n## `dv.UserError`\n", inspect.getdoc(dv.UserError) + "\n"]
    return "\n".join(out) + "\n"


PAGES = {
    "reference/settings.md": settings_page,
    "reference/cli.md": cli_page,
    "reference/presets.md": presets_page,
    "reference/api.md": api_page,
    "results.md": lambda: (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8"),
}


def on_files(files, config):  # noqa: ANN001, ANN201 (MkDocs' hook signature)
    for path, make in PAGES.items():
        files.append(File.generated(config, path, content=make()))
    return files
