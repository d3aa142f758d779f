"""dreamvideo's nodes for ComfyUI: DeepDream pictures, steady clips and music-driven zooms, each
a thin call into the API the command line calls (:mod:`dreamvideo.api`).

ComfyUI hands pictures over as IMAGE ``(B,H,W,C)`` float in [0,1] and masks as MASK ``(B,H,W)``;
they are converted here, at the edge, and nowhere else. A clip's frames are dreamed exactly as
``dreamvideo video`` dreams a clip (the same stepper, flow, occlusion check and scene cuts):
they are written losslessly to a clip, dreamed by :func:`dreamvideo.api.dream_video`, and read
back. ComfyUI runs every prompt under ``torch.inference_mode()``: the network is loaded and the
ascent runs with gradients on again. The device is ComfyUI's (``--cpu`` is obeyed), the network
is kept between prompts and handed to ComfyUI's model manager, which offloads it when it needs
the memory; every frame updates the progress bar and checks for Cancel; a bad value is the one
line the command line gives.
"""

from __future__ import annotations

import contextlib
import tempfile
import wave
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamvideo import api
from dreamvideo.config import Config
from dreamvideo.engine.dreamer import Dreamer
from dreamvideo.errors import UserError
from dreamvideo.media.codecs import video_args
from dreamvideo.media.ffmpeg import VideoWriter
from dreamvideo.media.frames import read_frames
from dreamvideo.media.images import write_image
from dreamvideo.presets import apply_sets, preset_names, set_values
from dreamvideo.render.loop import FrameReport

CATEGORY = "dreamvideo"
CONFIG = "DREAMVIDEO_CONFIG"  # the type a Dream Preset hands the other nodes
PRESERVED = -1  # an INT or FLOAT widget at this value keeps the preset's own setting


# ------------------------------------------------------------------ ComfyUI, when it is there


def _comfy() -> tuple[Any, Any, Any]:
    """ComfyUI's model manager, utils and model patcher (``None`` outside ComfyUI)."""
    try:
        import comfy.model_management as mm
        import comfy.model_patcher as patcher
        import comfy.utils as utils
    except ImportError:
        return None, None, None
    return mm, utils, patcher


def _device() -> str | None:
    """The device ComfyUI renders on, as ``dream.device`` spells it (``None``: the config's)."""
    mm, _, _ = _comfy()
    if mm is None:
        return None
    device = mm.get_torch_device()
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    return "cpu" if device.type == "cpu" else None


class _Networks:
    """The loaded network, kept between prompts. Inside ComfyUI it is handed to the model
    manager (a ModelPatcher), which moves it off the GPU when another model needs the room;
    it is loaded back before each use."""

    def __init__(self) -> None:
        self.dreamer: Dreamer | None = None
        self.patcher: Any = None

    def get(self, cfg: Config) -> Dreamer:
        from dreamvideo.render.network import dreamer_for

        before = self.dreamer
        self.dreamer = dreamer_for(cfg.dream, before)
        mm, _, patchers = _comfy()
        if mm is not None:
            if self.dreamer.full is not (before.full if before else None) or self.patcher is None:
                self.patcher = patchers.ModelPatcher(
                    self.dreamer.full, load_device=self.dreamer.device,
                    offload_device=mm.unet_offload_device(),
                )  # fmt: skip
            mm.load_models_gpu([self.patcher])
        return self.dreamer


NETWORKS = _Networks()


@contextlib.contextmanager
def _dreaming() -> Iterator[None]:
    """Gradients on again (ComfyUI runs prompts under ``torch.inference_mode()``)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _progress(total: int) -> Callable[[FrameReport], None]:
    """A render's ``on_frame``: ComfyUI's progress bar, and Cancel (raised at the next frame)."""
    mm, utils, _ = _comfy()
    bar = utils.ProgressBar(total) if utils is not None else None

    def on_frame(report: FrameReport) -> None:
        if bar is not None:
            bar.update_absolute(min(report.done, total), total)
        if mm is not None:
            mm.throw_exception_if_processing_interrupted()

    return on_frame


# ------------------------------------------------------------------ IMAGE, MASK, AUDIO edges


def pictures(images: torch.Tensor) -> list[np.ndarray]:
    """IMAGE ``(B,H,W,C)`` float [0,1] -> ``(H,W,3)`` uint8 RGB pictures."""
    if images.ndim != 4 or images.shape[-1] not in (3, 4):
        raise UserError(f"images: expected an IMAGE batch (B,H,W,3), got {tuple(images.shape)}")
    rgb = images[..., :3].detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return list(rgb.cpu().numpy())


def image_batch(frames: list[np.ndarray]) -> torch.Tensor:
    """``(H,W,3)`` uint8 RGB pictures -> IMAGE ``(B,H,W,3)`` float32 [0,1]."""
    return torch.from_numpy(np.stack(frames)).float().div_(255.0)


def mattes(mask: torch.Tensor) -> list[np.ndarray]:
    """MASK ``(B,H,W)`` (or one ``(H,W)``) float [0,1] -> ``(H,W,3)`` uint8 grey mattes."""
    m = mask[None] if mask.ndim == 2 else mask
    grey = m.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return [np.repeat(g[..., None], 3, axis=2) for g in grey]


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Frames as a lossless clip (FFV1 RGB): read back, every value is the one written."""
    h, w = frames[0].shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    with VideoWriter(path, (w, h), rate, video_args("ffv1", (w, h))) as out:
        for f in frames:
            out.write(np.ascontiguousarray(f))


def write_sound(path: Path, audio: dict[str, Any]) -> None:
    """ComfyUI's AUDIO ``{"waveform": (B,C,T), "sample_rate": int}`` (its first item) as a
    16-bit WAV file."""
    samples = audio["waveform"][0].detach().float().clamp(-1, 1).cpu().numpy()  # (C,T)
    pcm = np.round(samples.T * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(audio["sample_rate"]))
        w.writeframes(pcm.tobytes())


def cut_sound(audio: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``audio`` cut to its first ``seconds`` (the zoom's length)."""
    rate = int(audio["sample_rate"])
    return {**audio, "waveform": audio["waveform"][..., : round(seconds * rate)]}


# ------------------------------------------------------------------ settings


def settings_for(preset: str, settings: Config | None, overrides: dict[str, Any]) -> Config:
    """The settings a node dreams with: a Dream Preset's, or a preset's by name, with the
    widgets' ``{"section.key": value}`` set over them (validated as ``--set``: one line
    naming the key when wrong); ComfyUI's device."""
    cfg = settings if settings is not None else api.load_config(preset)
    kept = {k: v for k, v in overrides.items() if v not in (None, "", PRESERVED)}
    cfg = set_values(cfg, kept)
    device = _device()
    return cfg.override("dream", device=device) if device else cfg


# ------------------------------------------------------------------ the nodes


class DreamPreset:
    """A preset (by name, or a YAML file) with ``section.key=value`` lines set over it: one
    look shared by several nodes."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (CONFIG,)
    RETURN_NAMES = ("config",)
    FUNCTION = "make"
    DESCRIPTION = "A preset of dreamvideo with --set style overrides, for the other nodes."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 (ComfyUI's name)
        return {
            "required": {"preset": (preset_names(), {"default": "default"})},
            "optional": {
                "yaml_file": ("STRING", {"default": "", "tooltip": "a preset file instead"}),
                "overrides": ("STRING", {"default": "", "multiline": True,
                                         "tooltip": "section.key=value, one per line"}),
            },
        }  # fmt: skip

    def make(self, preset: str, yaml_file: str = "", overrides: str = "") -> tuple[Config]:
        cfg = api.load_config(yaml_file.strip() or preset)
        lines = [line.strip() for line in overrides.splitlines() if line.strip()]
        return (apply_sets(cfg, lines),)


def _dream_inputs(default_preset: str) -> dict[str, Any]:
    """The widgets every dreaming node shares: a preset and the usual overrides, each at a
    value that keeps the preset's own setting."""
    return {
        "preset": (preset_names(), {"default": default_preset}),
        "layers": ("STRING", {"default": "", "tooltip": "objective; empty: the preset's"}),
        "octaves": ("INT", {"default": PRESERVED, "min": PRESERVED, "max": 12}),
        "iterations": ("INT", {"default": PRESERVED, "min": PRESERVED, "max": 500}),
        "step": ("FLOAT", {"default": PRESERVED, "min": PRESERVED, "max": 50.0, "step": 0.1}),
        "seed": ("INT", {"default": PRESERVED, "min": PRESERVED, "max": 2**31 - 1}),
    }


def _overrides(layers: str, octaves: int, iterations: int, step: float, seed: int) -> dict:
    return {"dream.layers": layers.strip(), "dream.octaves": octaves,
            "dream.iterations": iterations, "dream.step": step, "dream.seed": seed}  # fmt: skip


class DreamImage:
    """Each picture of an IMAGE batch dreamed alone; a MASK keeps the source where black."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "dream"
    DESCRIPTION = "DeepDream each picture of the batch (dreamvideo image)."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 (ComfyUI's name)
        return {
            "required": {"image": ("IMAGE",), **_dream_inputs("default")},
            "optional": {"mask": ("MASK",), "config": (CONFIG,)},
        }

    def dream(
        self, image: torch.Tensor, preset: str, layers: str, octaves: int, iterations: int,
        step: float, seed: int, mask: torch.Tensor | None = None, config: Config | None = None,
    ) -> tuple[torch.Tensor]:  # fmt: skip
        cfg = settings_for(preset, config, _overrides(layers, octaves, iterations, step, seed))
        pics = pictures(image)
        masks = mattes(mask) if mask is not None else []
        on_frame = _progress(len(pics))
        out = []
        with tempfile.TemporaryDirectory(prefix="dreamvideo-comfy-") as tmp, _dreaming():
            for k, pic in enumerate(pics):
                here = cfg
                if masks:
                    matte = Path(tmp) / f"mask-{k}.png"
                    write_image(matte, masks[min(k, len(masks) - 1)])
                    here = set_values(cfg, {"dream.mask": str(matte)})
                out.append(api.dream_image(pic, here, dreamer=NETWORKS.get(here)))
                on_frame(FrameReport(k, k + 1, len(pics), True, 1.0))
        return (image_batch(out),)


class DreamVideo:
    """The frames of a clip dreamed steadily, as ``dreamvideo video`` dreams a clip: the
    previous dream carried along the optical flow, occlusions and scene cuts dreamed
    afresh. A MASK batch (one per frame, or one for all) keeps the source where black."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "dream"
    DESCRIPTION = "Steady DeepDream of a clip's frames (dreamvideo video)."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 (ComfyUI's name)
        return {
            "required": {
                "images": ("IMAGE",),
                "fps": ("FLOAT", {"default": 24.0, "min": 0.1, "max": 240.0, "step": 0.001}),
                **_dream_inputs("video"),
            },
            "optional": {"mask": ("MASK",), "config": (CONFIG,)},
        }

    def dream(
        self, images: torch.Tensor, fps: float, preset: str, layers: str, octaves: int,
        iterations: int, step: float, seed: int, mask: torch.Tensor | None = None,
        config: Config | None = None,
    ) -> tuple[torch.Tensor]:  # fmt: skip
        cfg = settings_for(preset, config, _overrides(layers, octaves, iterations, step, seed))
        frames = pictures(images)
        with tempfile.TemporaryDirectory(prefix="dreamvideo-comfy-") as tmp, _dreaming():
            source, out = Path(tmp) / "frames.mkv", Path(tmp) / "dream.mkv"
            write_clip(source, frames, fps)
            if mask is not None:
                cfg = set_values(cfg, {"dream.mask": str(_matte_file(Path(tmp), mask, fps))})
            cfg = cfg.override("encode", codec="ffv1", audio=False)
            api.dream_video(source, out, cfg, dreamer=NETWORKS.get(cfg),
                            on_frame=_progress(len(frames)))  # fmt: skip
            dreamed = [f for _, f in read_frames(out)]
        return (image_batch(dreamed),)


def _matte_file(folder: Path, mask: torch.Tensor, fps: float) -> Path:
    """A clip's mask as a file: one matte picture for all frames, or a matte clip."""
    grey = mattes(mask)
    if len(grey) == 1:
        path = folder / "mask.png"
        write_image(path, grey[0])
    else:
        path = folder / "mask.mkv"
        write_clip(path, grey, fps)
    return path


class DreamZoom:
    """An infinite zoom-dream animation from a picture (or noise), its zoom, turn and pan
    set per second or as expressions of time and of the music's envelopes (an AUDIO input
    drives them; it comes out again, cut to the zoom's length, for the video saver)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "AUDIO")
    RETURN_NAMES = ("images", "audio")
    FUNCTION = "dream"
    DESCRIPTION = "An infinite zoom-dream animation, music-driven with an AUDIO (dreamvideo zoom)."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 (ComfyUI's name)
        text = {"default": "", "tooltip": "a number, keyframes or an expression; empty: the "
                "preset's"}  # fmt: skip
        return {
            "required": {
                "seconds": ("FLOAT", {"default": 4.0, "min": 0.1, "max": 3600.0, "step": 0.1}),
                "fps": ("FLOAT", {"default": 24.0, "min": 0.1, "max": 240.0, "step": 0.001}),
                "width": ("INT", {"default": 512, "min": 16, "max": 8192}),
                "height": ("INT", {"default": 512, "min": 16, "max": 8192}),
                "zoom": ("STRING", {**text, "tooltip": "zoom per second, e.g. 1.15 or "
                                    "(1.1 + 0.3*beat); empty: the preset's"}),
                "rotate": ("STRING", text),
                "pan_x": ("STRING", text),
                "pan_y": ("STRING", text),
                **_dream_inputs("zoom"),
            },
            "optional": {"image": ("IMAGE",), "audio": ("AUDIO",), "config": (CONFIG,)},
        }  # fmt: skip

    def dream(
        self, seconds: float, fps: float, width: int, height: int, zoom: str, rotate: str,
        pan_x: str, pan_y: str, preset: str, layers: str, octaves: int, iterations: int,
        step: float, seed: int, image: torch.Tensor | None = None,
        audio: dict[str, Any] | None = None, config: Config | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any] | None]:  # fmt: skip
        motion = {"zoom.zoom": zoom, "zoom.rotate": rotate, "zoom.pan_x": pan_x,
                  "zoom.pan_y": pan_y}  # fmt: skip
        sizes = {"zoom.seconds": seconds, "zoom.fps": fps, "zoom.width": width,
                 "zoom.height": height}  # fmt: skip
        overrides = {**_overrides(layers, octaves, iterations, step, seed), **sizes}
        overrides.update({k: _number_or_text(v) for k, v in motion.items()})
        cfg = settings_for(preset, config, overrides)
        total = max(1, round(seconds * fps))
        with tempfile.TemporaryDirectory(prefix="dreamvideo-comfy-") as tmp, _dreaming():
            start = None
            if image is not None:
                start = Path(tmp) / "start.png"
                write_image(start, pictures(image)[0])
            if audio is not None:
                song = Path(tmp) / "song.wav"
                write_sound(song, audio)
                cfg = set_values(cfg, {"zoom.audio": str(song)})
            out = Path(tmp) / "zoom.mkv"
            cfg = cfg.override("encode", codec="ffv1")
            api.dream_zoom(out, cfg, start, dreamer=NETWORKS.get(cfg),
                           on_frame=_progress(total))  # fmt: skip
            frames = [f for _, f in read_frames(out)]
        return image_batch(frames), (cut_sound(audio, seconds) if audio is not None else None)


def _number_or_text(value: str) -> float | str:
    """A schedule widget's text as the config takes it: a number, or keyframes/expression."""
    text = (value or "").strip()
    try:
        return float(text) if text else ""
    except ValueError:
        return text


NODE_CLASS_MAPPINGS = {
    "DreamvideoPreset": DreamPreset,
    "DreamvideoImage": DreamImage,
    "DreamvideoVideo": DreamVideo,
    "DreamvideoZoom": DreamZoom,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DreamvideoPreset": "Dream Preset",
    "DreamvideoImage": "Dream Image",
    "DreamvideoVideo": "Dream Video",
    "DreamvideoZoom": "Dream Zoom",
}
