"""Named YAML presets from ``configs/``: plain overrides of the config defaults.

Preset files and ``--set`` values are read with :class:`PresetLoader`: safe YAML without
anchors and aliases (``&a``/``*a``; a few hundred bytes of them expand to gigabytes once the
config is copied into plain dicts) and without deep nesting, from files of at most 1 MB.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dreamvideo.config import SECTIONS, Config, ConfigError
from dreamvideo.errors import UserError
from dreamvideo.media.paths import write_atomic
from dreamvideo.motion.schedule import MAX_SCHEDULE_CHARS
from dreamvideo.text import excerpt, path_text

# A preset is a few dozen lines; 1 MB is far above any real one and still parses in a moment.
MAX_PRESET_BYTES = 1 << 20
# Presets are section -> key -> value; a schedule or list adds a level or two at most. The
# YAML composer recurses once per level, so thousands of "[" would end in a RecursionError.
MAX_YAML_DEPTH = 20
# A --set value is one scalar or schedule: the longest schedule text, with room for quotes.
MAX_SET_CHARS = MAX_SCHEDULE_CHARS + 100


class YamlRefused(yaml.YAMLError):
    """YAML that :class:`PresetLoader` will not build; the message says why and where."""


class PresetLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors, aliases, nesting deeper than 20 levels and
    a key given twice in one mapping (plain YAML keeps the last silently: a preset whose
    second ``dream:`` drops the first is a mistake to point at, not a setting).

    Anchors and depth are checked as each node is composed, before anything is built, so a
    billion-laughs file fails at its first anchor in microseconds.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefused(
                "YAML anchors and aliases (&, *) are not allowed in presets "
                f"(line {event.start_mark.line + 1})"
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlRefused(
                    f"YAML nested deeper than {MAX_YAML_DEPTH} levels "
                    f"(line {event.start_mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = lines.setdefault(key, line)
            except TypeError:  # an unhashable key: the constructor below names it
                continue
            if first != line:
                raise YamlRefused(
                    f"key {excerpt(key, quote=False)} is given twice, on lines {first} and "
                    f"{line}; keep one"
                )
        return super().construct_mapping(node, deep)


def _load_yaml(text: str) -> Any:
    """``text`` parsed by :class:`PresetLoader`."""
    return yaml.load(text, Loader=PresetLoader)  # a SafeLoader: plain data only


def presets_dir() -> Path:
    """``configs/`` of a source tree, else the copy installed as ``dreamvideo.configs``."""
    tree = Path(__file__).resolve().parent.parent / "configs"
    if tree.is_dir():
        return tree
    return Path(str(importlib.resources.files("dreamvideo.configs")))


def user_presets_dir() -> Path:
    """Where the user's own presets live: ``$DREAMVIDEO_PRESETS``, else
    ``$XDG_CONFIG_HOME/dreamvideo/presets`` (``~/.config/dreamvideo/presets``)."""
    if os.environ.get("DREAMVIDEO_PRESETS"):
        return Path(os.environ["DREAMVIDEO_PRESETS"])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "dreamvideo" / "presets"


def preset_names() -> list[str]:
    """The bundled presets, then the user's own (which may not reuse a bundled name)."""
    bundled = sorted(p.stem for p in presets_dir().glob("*.yaml"))
    user = user_presets_dir()
    own = sorted(p.stem for p in user.glob("*.yaml")) if user.is_dir() else []
    return bundled + [name for name in own if name not in bundled]


PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def save_user_preset(name: str, text: str) -> Path:
    """Check ``text`` as a preset (YAML, keys, values) and save it as the user's preset
    ``name``; one-line errors say what is wrong. Returns the file."""
    if not PRESET_NAME.fullmatch(name):
        raise UserError(
            f"preset name {excerpt(name)}: use 1-64 lower-case letters, digits, - and _"
        )
    if (presets_dir() / f"{name}.yaml").is_file():
        raise UserError(f"preset name {name!r} is a bundled preset; choose another name")
    if len(text.encode()) > MAX_PRESET_BYTES:
        raise UserError(f"preset {name}: over {MAX_PRESET_BYTES:,} bytes; at most 1 MB")
    try:
        data = _load_yaml(text)
    except YamlRefused as e:
        raise UserError(f"preset {name}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"preset {name}: invalid YAML{where}: {excerpt(problem, 120)}") from None
    if not isinstance(data, dict):
        raise UserError(f"preset {name}: a preset must be a mapping of sections")
    try:
        Config.from_dict({k: v for k, v in data.items() if k != "description"})
    except ConfigError as e:
        raise ConfigError(f"preset {name}: {e}") from None
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{name}.yaml", text.encode())
    return folder / f"{name}.yaml"


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system raises instead of saying False
        return False


def _preset_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        path = Path(text)
        if not _is_file(path):
            raise UserError(f"preset file {path_text(path)} does not exist")
        return path
    path = presets_dir() / f"{text}.yaml"
    if not _is_file(path):
        path = user_presets_dir() / f"{text}.yaml"
    if not _is_file(path):
        raise UserError(
            f"unknown preset {excerpt(text)}; available: "
            f"{', '.join(preset_names())} (or a path to a .yaml file)"
        )
    return path


def read_yaml_file(path: Path, what: str = "preset") -> Any:
    """A YAML file read with :class:`PresetLoader` (at most 1 MB); one-line errors name the
    file, what it is, and for bad YAML the line."""
    name = path_text(path)
    try:
        size = path.stat().st_size
        if size > MAX_PRESET_BYTES:
            raise UserError(f"{name}: {what} is {size:,} bytes; at most 1 MB")
        with path.open("rb") as f:  # one byte past the cap: a file may grow or lie (/proc)
            raw = f.read(MAX_PRESET_BYTES + 1)
        if len(raw) > MAX_PRESET_BYTES:
            raise UserError(f"{name}: {what} is over {MAX_PRESET_BYTES:,} bytes; at most 1 MB")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(
            f"{name}: cannot read {what} ({excerpt(str(e), 200, quote=False)})"
        ) from None
    try:
        return _load_yaml(text)
    except YamlRefused as e:
        raise UserError(f"{name}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(
            f"{name}: invalid YAML{where}: {excerpt(problem, 120, quote=False)}"
        ) from None
    except ValueError as e:  # e.g. an integer of over 4,300 digits, which Python refuses
        raise UserError(f"{name}: invalid YAML: {excerpt(str(e), 120, quote=False)}") from None


def read_preset(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The preset's file and its parsed mapping (``description`` included)."""
    path = _preset_path(name_or_path)
    data = read_yaml_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(
            f"{path_text(path)}: a preset must be a mapping of sections, got {type(data).__name__}"
        )
    return path, data


def load_preset(name_or_path: str | Path = "default") -> Config:
    """The config a preset describes: defaults overridden by the file's values."""
    path, data = read_preset(name_or_path)
    data = {k: v for k, v in data.items() if k != "description"}
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path_text(path)}: {e}") from None


def describe(name_or_path: str | Path) -> str:
    """The preset's one-line ``description``."""
    return str(read_preset(name_or_path)[1].get("description", "")).strip()


def apply_sets(cfg: Config, assignments: list[str]) -> Config:
    """Apply ``section.key=value`` overrides; values are read as YAML scalars (``3``, ``true``)."""
    for item in assignments:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"--set {excerpt(item)}: expected section.key=value, e.g. dream.step=3"
            )
        if len(raw) > MAX_SET_CHARS:
            raise ConfigError(
                f"--set {excerpt(item)}: the value is {len(raw):,} characters; "
                f"at most {MAX_SET_CHARS:,}"
            )
        try:
            value = _load_yaml(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError):  # not YAML (or refused, e.g. "*x"): keep the text
            value = raw
        if section not in SECTIONS:
            raise ConfigError(
                f"--set {excerpt(item)}: unknown section {excerpt(section)}; "
                f"valid sections: {', '.join(SECTIONS)}"
            )
        cfg = set_values(cfg, {key.strip(): value})
    return cfg


def set_values(cfg: Config, values: Mapping[str, Any]) -> Config:
    """``{"section.key": value}`` overrides (the Python API's form of ``--set``), validated."""
    data = cfg.to_dict()
    for key, value in values.items():
        section, dot, name = str(key).partition(".")
        if not dot or section not in data:
            raise ConfigError(
                f"override {excerpt(str(key))}: expected section.key with a "
                f"section of {', '.join(data)}"
            )
        data[section][name] = value
    return Config.from_dict(data)
