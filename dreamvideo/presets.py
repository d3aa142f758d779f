"""Named YAML presets from ``configs/``: plain overrides of the config defaults."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from dreamvideo.config import Config, ConfigError
from dreamvideo.errors import UserError


def presets_dir() -> Path:
    """``configs/`` of a source tree, else the copy installed as ``dreamvideo.configs``."""
    tree = Path(__file__).resolve().parent.parent / "configs"
    if tree.is_dir():
        return tree
    return Path(str(importlib.resources.files("dreamvideo.configs")))


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def _preset_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        path = Path(text)
        if not path.is_file():
            raise UserError(f"preset file {path} does not exist")
        return path
    path = presets_dir() / f"{text}.yaml"
    if not path.is_file():
        raise UserError(f"unknown preset {text!r}; available: {', '.join(preset_names())} "
                        "(or a path to a .yaml file)")
    return path


def read_preset(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The preset's file and its parsed mapping (``description`` included)."""
    path = _preset_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read preset ({e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset must be a mapping of sections, got "
                        f"{type(data).__name__}")
    return path, data


def load_preset(name_or_path: str | Path = "default") -> Config:
    """The config a preset describes: defaults overridden by the file's values."""
    path, data = read_preset(name_or_path)
    data = {k: v for k, v in data.items() if k != "description"}
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def describe(name_or_path: str | Path) -> str:
    """The preset's one-line ``description``."""
    return str(read_preset(name_or_path)[1].get("description", "")).strip()


def apply_sets(cfg: Config, assignments: list[str]) -> Config:
    """Apply ``section.key=value`` overrides; values are read as YAML scalars (``3``, ``true``)."""
    for item in assignments:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. dream.step=3")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        data = cfg.to_dict()
        if section not in data:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; valid sections: "
                              f"{', '.join(data)}")
        data[section][name] = value
        cfg = Config.from_dict(data)
    return cfg
