import dataclasses

import pytest
import yaml

from dreamvideo.config import Config, ConfigError, DreamConfig
from dreamvideo.presets import apply_sets, load_preset, preset_names, presets_dir

REQUIRED_PRESETS = {"default", "classic", "eyes", "textures", "gentle"}


def test_required_presets_exist_and_load():
    assert set(preset_names()) >= REQUIRED_PRESETS
    for name in preset_names():
        cfg = load_preset(name)
        assert isinstance(cfg.dream, DreamConfig)
    assert load_preset("classic").dream.model == "googlenet"
    assert load_preset("classic").dream.layers == "inception4c"


def test_config_is_frozen_and_round_trips():
    cfg = load_preset("eyes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dream.step = 3  # type: ignore[misc]
    assert Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"dream": {"octaves": "four"}}, r"dream\.octaves: expected an integer, got 'four'"),
        ({"dream": {"octaves": 0}}, r"dream\.octaves: must be >= 1, got 0"),
        ({"dream": {"step": True}}, r"dream\.step: expected a number, got True"),
        ({"dream": {"normalize": "l2"}}, r"dream\.normalize: must be one of mean, laplacian"),
        ({"dream": {"octave": 3}}, r"dream\.octave: unknown key; valid keys: model, weights"),
        ({"dreams": {}}, r"dreams: unknown section; valid sections: dream"),
        ({"dream": {"device": "gpu"}}, r"dream\.device: must be auto, cpu, cuda, cuda:N or mps"),
        ({"dream": {"tile": 32}}, r"dream\.tile: must be 0 \(no tiling\) or >= 64"),
        ({"dream": [1, 2]}, r"dream: expected a mapping"),
    ],
)
def test_bad_values_name_the_key_and_what_is_accepted(data, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(data)


def test_overrides_are_validated_too():
    cfg = load_preset("default")
    assert cfg.override("dream", octaves=2, step=None).dream.octaves == 2
    assert cfg.override("dream", step=None) is cfg
    with pytest.raises(ConfigError, match="dream.octave_scale: must be > 1.0"):
        cfg.override("dream", octave_scale=1.0)


def test_set_assignments_parse_yaml_scalars():
    cfg = apply_sets(load_preset("default"), ["dream.jitter=7", "dream.normalize=mean"])
    assert (cfg.dream.jitter, cfg.dream.normalize) == (7, "mean")
    with pytest.raises(ConfigError, match="expected section.key=value"):
        apply_sets(cfg, ["jitter=7"])
    with pytest.raises(ConfigError, match=r"dream\.jiter: unknown key"):
        apply_sets(cfg, ["dream.jiter=7"])


def test_preset_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dream:\n  octaves: [\n")
    with pytest.raises(ValueError, match=rf"{bad}: invalid YAML at line"):
        load_preset(str(bad))
    typo = tmp_path / "typo.yaml"
    typo.write_text("dream:\n  stepp: 3\n")
    with pytest.raises(ConfigError, match=rf"{typo}: dream\.stepp: unknown key"):
        load_preset(str(typo))
    with pytest.raises(ValueError, match="unknown preset 'nope'; available: classic"):
        load_preset("nope")


def test_every_preset_file_is_plain_yaml_with_a_description():
    for path in presets_dir().glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        assert isinstance(data.get("description"), str) and data["description"], path
