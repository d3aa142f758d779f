"""The ComfyUI node pack without ComfyUI: installed into a ComfyUI-shaped folder, loaded by file
path as ComfyUI's loader does, every node's contract checked, every node run on tiny tensors
under ``torch.inference_mode()`` (as ComfyUI runs prompts), and Dream Video against
``dreamvideo video`` on the same frames. A real ComfyUI runs them in tests/test_comfy_host.py."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest
import torch
from conftest import cli, pan_frames

from dreamvideo.comfy import install_pack, workflows
from dreamvideo.comfy.nodes import write_clip
from dreamvideo.errors import UserError
from dreamvideo.media.frames import read_frames

TINY = {"layers": "blocks.3", "octaves": 1, "iterations": 2, "step": 2.0, "seed": 3}


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    """The installed pack, loaded as ComfyUI loads one: by its file path, not from sys.path."""
    comfyui = tmp_path_factory.mktemp("ComfyUI")
    (comfyui / "main.py").write_text("# ComfyUI's entry point\n")
    (comfyui / "custom_nodes").mkdir()
    written = install_pack(comfyui)
    init = comfyui / "custom_nodes" / "dreamvideo" / "__init__.py"
    assert init in written
    spec = importlib.util.spec_from_file_location("custom_nodes.dreamvideo", init)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module, comfyui


def node(pack, name: str):
    return pack[0].NODE_CLASS_MAPPINGS[name]()


def test_the_pack_installs_and_registers_four_nodes_with_their_contract(pack):
    module, comfyui = pack
    names = module.NODE_CLASS_MAPPINGS
    assert set(names) == {"DreamvideoPreset", "DreamvideoImage", "DreamvideoVideo",
                          "DreamvideoZoom"}  # fmt: skip
    assert set(module.NODE_DISPLAY_NAME_MAPPINGS.values()) == {
        "Dream Preset", "Dream Image", "Dream Video", "Dream Zoom"}  # fmt: skip
    for cls in names.values():
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional"} and spec["required"]
        for inputs in spec.values():
            for key, value in inputs.items():
                assert isinstance(value, tuple) and 1 <= len(value) <= 2, key
                assert isinstance(value[0], str | list), key  # a type, or a combo's choices
                assert len(value) == 1 or isinstance(value[1], dict), key
        assert isinstance(cls.RETURN_TYPES, tuple) and all(isinstance(t, str) for t in
                                                            cls.RETURN_TYPES)  # fmt: skip
        assert callable(getattr(cls, cls.FUNCTION)) and cls.CATEGORY == "dreamvideo"
    pyproject = (comfyui / "custom_nodes" / "dreamvideo" / "pyproject.toml").read_text()
    assert "[tool.comfy]" in pyproject and "PublisherId" in pyproject
    library = comfyui / "user" / "default" / "workflows"
    assert {p.name for p in library.iterdir()} == {f"dreamvideo-{n}" for n in workflows()}


def test_install_is_one_line_for_a_folder_that_is_not_comfyui(tmp_path):
    r = cli("comfy", "install", tmp_path)
    assert r.code == 2 and "is not a ComfyUI folder" in r.err


def test_dream_image_dreams_each_picture_and_keeps_the_masked_source(pack):
    frames = np.stack(pan_frames(2, (64, 48)))
    images = torch.from_numpy(frames).float() / 255
    mask = torch.zeros(1, 48, 64)
    mask[:, :, 32:] = 1.0
    with torch.inference_mode():
        (out,) = node(pack, "DreamvideoImage").dream(images, "default", mask=mask, **TINY)
    assert out.shape == images.shape and out.dtype == torch.float32
    got = (out * 255).round()
    assert torch.equal(got[..., :32, :], images[..., :32, :] * 255)  # black: the source
    assert (got[..., 36:, :] - images[..., 36:, :] * 255).abs().mean() > 2  # white: dreamed


def test_dream_video_gives_what_dreamvideo_video_gives_on_the_same_frames(pack, tmp_path):
    frames = pan_frames(8, (64, 48))
    images = torch.from_numpy(np.stack(frames)).float() / 255
    with torch.inference_mode():
        (out,) = node(pack, "DreamvideoVideo").dream(images, 24.0, "video", **TINY)
    assert out.shape == images.shape
    source = tmp_path / "frames.mkv"
    write_clip(source, frames, 24.0)
    r = cli("video", source, "-o", tmp_path / "cli.mkv", "--codec", "ffv1", "--no-audio",
            "--layers", "blocks.3", "--octaves", "1", "--iterations", "2", "--step", "2",
            "--seed", "3")  # fmt: skip
    assert r.code == 0, r.output
    expected = np.stack([f for _, f in read_frames(tmp_path / "cli.mkv")])
    got = (out * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(got, expected)  # the same stepper: exactly the same frames


def test_dream_zoom_follows_the_music_and_hands_the_sound_on(pack):
    rate = 8000
    t = torch.arange(rate * 2) / rate
    beeps = (torch.sin(2 * math.pi * 440 * t) * ((t * 4) % 1 < 0.1)).reshape(1, 1, -1)
    audio = {"waveform": beeps, "sample_rate": rate}
    with torch.inference_mode():
        images, sound = node(pack, "DreamvideoZoom").dream(
            1.0, 12.0, 48, 48, "1.1 + 0.5*beat", "", "", "", "zoom", audio=audio, **TINY
        )
    assert images.shape == (12, 48, 48, 3)
    assert sound["sample_rate"] == rate and sound["waveform"].shape[-1] == rate  # 1 s of it


def test_a_preset_node_feeds_the_others_and_a_bad_value_is_the_clis_line(pack):
    with torch.inference_mode():
        (cfg,) = node(pack, "DreamvideoPreset").make("eyes", overrides="dream.iterations=2")
    assert cfg.dream.iterations == 2 and cfg.dream.layers == "blocks.9"  # the eyes preset
    images = torch.rand(1, 40, 48, 3)
    with pytest.raises(UserError, match="dream.octaves: must be"):
        node(pack, "DreamvideoImage").dream(images, "default", **{**TINY, "octaves": 99})
    with pytest.raises(UserError, match="unknown layer 'blocks.99'"):
        node(pack, "DreamvideoImage").dream(images, "default", **{**TINY, "layers": "blocks.99"})
    with pytest.raises(UserError, match="dream.nope: unknown key"):
        node(pack, "DreamvideoPreset").make("eyes", overrides="dream.nope=2")


def test_the_example_workflows_agree_in_their_two_formats():
    """Each example comes as ComfyUI's API format (what /prompt takes) and its UI format
    (what the page loads): the same nodes, inputs and links."""
    shipped = workflows()
    for name in ("picture", "clip-with-mask", "music-zoom"):
        api = json.loads(shipped[f"{name}.api.json"])
        ui = json.loads(shipped[f"{name}.json"])
        assert {n["class_type"] for n in api.values()} == {n["type"] for n in ui["nodes"]}
        links = {(str(a), int(b), str(c), d) for a, b, c, d, *_ in
                 ([lk[1], lk[2], lk[3], lk[4]] for lk in ui["links"])}  # fmt: skip
        wired = {(src, slot, dst, k) for dst, n in api.items() for k, v in n["inputs"].items()
                 if isinstance(v, list) for src, slot in [v]}  # fmt: skip
        slots = {(str(n["id"]), i["name"]): k for n in ui["nodes"]
                 for k, i in enumerate(n.get("inputs", []))}  # fmt: skip
        assert {(s, b, d, slots[(d, k)]) for s, b, d, k in wired} == links
