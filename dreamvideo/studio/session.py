"""What the web studio does, without the web page (:mod:`dreamvideo.studio.page` draws it).

Every render goes through the same library functions as the command line, into the
browser session's own folder, and comes back with the exact command and preset YAML that
reproduce it in a terminal. A render runs on a thread of its own; Cancel sets a flag that
the render checks after each frame, so it stops within a frame, and its unfinished files are
removed (nothing half-written stays behind).
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dreamvideo.config import Config
from dreamvideo.errors import UserError
from dreamvideo.media.checkpoint import SEGMENT_PARTS, parts_dir
from dreamvideo.media.owned import clear_parts
from dreamvideo.media.paths import write_atomic
from dreamvideo.presets import load_preset, set_values
from dreamvideo.scale.store import CHUNK_PARTS

# what a studio render in one process or in lanes leaves in its parts (dreamvideo.media.owned)
RENDER_PARTS = re.compile(f"{SEGMENT_PARTS.pattern}|{CHUNK_PARTS.pattern}")


class Cancelled(Exception):
    """The user pressed Cancel; raised inside the render at its next frame."""


@dataclass
class Session:
    """One browser session: its folder (nothing outside it is served) and its render."""

    folder: Path
    stop: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    dreamed: int = 0  # frames the running (or last) render has finished

    def cancel(self) -> None:
        """Stop the running render at its next frame (the Cancel button)."""
        self.stop.set()

    @classmethod
    def create(cls, root: Path) -> Session:
        folder = root / "sessions" / secrets.token_hex(8)
        folder.mkdir(parents=True)
        return cls(folder.resolve())

    def take(self, upload: str | Path | None, what: str) -> Path | None:
        """Copy an uploaded file into the session folder (uploads land in Gradio's cache)."""
        if not upload:
            return None
        source = Path(upload)
        if not source.is_file():
            raise UserError(f"the uploaded {what} is gone; upload it again")
        target = self.folder / f"input-{self.count:03d}-{source.name}"
        shutil.copyfile(source, target)
        return target

    def output(self, stem: str, suffix: str) -> Path:
        self.count += 1
        return self.folder / f"{stem}-{self.count:03d}{suffix}"


def configure(preset: str, values: dict[str, Any]) -> Config:
    """The preset with the page's values (``{"section.key": value}``; empty ones left out)."""
    return set_values(load_preset(preset), {k: v for k, v in values.items() if v not in (None, "")})


def reproduction(command: list[str], cfg: Config, output: Path) -> tuple[str, str, Path]:
    """The terminal command that makes ``output`` again, the full settings as preset YAML, and
    that YAML saved beside the output (the command names it, so the two agree exactly)."""
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    preset = output.with_suffix(".yaml")
    write_atomic(preset, text.encode())
    line = shlex.join(["dreamvideo", *command, "-o", str(output), "--preset", str(preset), "-y"])
    return line, text, preset


def mask_values(session: Session, mask: str | None, invert: Any, feather: Any) -> dict[str, Any]:
    """The page's mask fields as config values: the uploaded matte (a picture or a clip,
    copied into the session so the command shown reads it), invert and feather."""
    source = session.take(mask, "mask")
    if source is None:
        return {}
    return {
        "dream.mask": str(source),
        "dream.mask_invert": bool(invert),
        "dream.mask_feather": float(feather or 0.0),
    }


def _whole(value: Any) -> int | None:
    """A whole number from a form field (Gradio sends floats), or ``None`` when empty."""
    return None if value in (None, "") else int(value)


@dataclass(frozen=True)
class Made:
    """A finished render: the file, the command and preset YAML that make it again."""

    output: Path
    command: str
    yaml: str


def dream_picture(
    session: Session, image: str | None, preset: str, form: dict[str, Any], sheet: bool
) -> Made:
    """Dream an uploaded picture, or a contact sheet of its layers (``sheet``). ``form``:
    layers, octaves, iterations, step, seed (empty ones come from the preset) and the
    mask fields (:func:`mask_values`)."""
    from dreamvideo.render.image import render_gallery, render_image

    source = session.take(image, "picture")
    if source is None:
        raise UserError("upload a picture first")
    cfg = configure(
        preset,
        {
            "dream.layers": form.get("layers"),
            "dream.octaves": _whole(form.get("octaves")),
            "dream.iterations": _whole(form.get("iterations")),
            "dream.step": form.get("step"),
            "dream.seed": _whole(form.get("seed")),
            **mask_values(session, form.get("mask"), form.get("invert"), form.get("feather")),
        },
    )
    output = session.output("sheet" if sheet else "dream", ".png")
    if sheet:
        render_gallery(cfg, source, output, size=160)
    else:
        render_image(cfg, source, output)
    line, text, _ = reproduction(["gallery" if sheet else "image", str(source)], cfg, output)
    return Made(output, line, text)


def clip_config(
    preset: str,
    width: Any,
    start: Any,
    end: Any,
    frames: int | None = None,
    mask: dict[str, Any] | None = None,
) -> Config:
    """The Clip tab's settings; ``mask``: :func:`mask_values`."""
    return configure(
        preset,
        {
            "video.width": _whole(width),
            "video.start": start or 0.0,
            "video.end": end or None,
            "video.max_frames": frames,
            **(mask or {}),
        },
    )


def first_frame(session: Session, clip: str | None, cfg: Config) -> Any:
    """The clip's first frame in the range, dreamed as the render would: ``(H,W,3)`` uint8."""
    from dreamvideo.media.frames import probe_video, read_frames
    from dreamvideo.render.clip import plan_clip
    from dreamvideo.render.image import render_image

    source = session.take(clip, "clip")
    if source is None:
        raise UserError("upload a clip first")
    plan = plan_clip(probe_video(source), cfg.video)
    for _, frame in read_frames(source, plan.first, plan.first + 1, plan.size):
        return render_image(cfg, frame).image
    raise UserError(f"{source.name} has no frame at {cfg.video.start} s")


def zoom_config(form: dict[str, Any], preview: bool) -> Config:
    """The zoom settings of the page; ``preview``: four frames only, no loop."""
    fps = form.get("fps") or 24.0
    start = form.get("start")
    return configure(
        form["preset"],
        {
            "zoom.seconds": 4 / fps if preview else form.get("seconds"),
            "zoom.fps": fps,
            "zoom.width": _whole(form.get("width")),
            "zoom.height": _whole(form.get("height")),
            **{f"zoom.{k}": form.get(k) for k in ("zoom", "rotate", "pan_x", "pan_y", "layers")},
            "zoom.loop": bool(form.get("loop")) and not preview,
            "zoom.start": start if start in ("noise", "color") else None,
            "zoom.color": form.get("color"),
        },
    )


@dataclass(frozen=True)
class Update:
    """What a running render tells the page: progress text, and the result once done."""

    text: str
    fraction: float
    result: Any = None
    error: str | None = None


def run_in_thread(
    session: Session, output: Path, work: Callable[[Callable[..., None]], Any]
) -> Iterator[Update]:
    """Run ``work(on_frame)`` on a thread and yield progress about twice a second.

    Cancel (``session.stop``) makes ``on_frame`` raise :class:`Cancelled`; the render's own
    clean-up runs, then its resumable parts and any output are removed, so nothing
    half-written stays behind. A user mistake ends as an ``Update`` with ``error``.
    """
    session.stop.clear()
    session.dreamed = 0
    state: dict[str, Any] = {"text": "starting", "fraction": 0.0}

    def on_frame(report: Any) -> None:
        session.dreamed = report.done
        if session.stop.is_set():
            raise Cancelled
        state["text"] = f"frame {report.done} of {report.expected}"
        state["fraction"] = report.done / max(report.expected, 1)

    def target() -> None:
        try:
            state["result"] = work(on_frame)
        except Cancelled:
            state["error"] = "cancelled; nothing was kept"
        except UserError as e:
            state["error"] = f"error: {e}"
        except Exception as e:  # shown in the page rather than lost in a log
            state["error"] = f"error: {type(e).__name__}: {e}"
        finally:
            if "result" not in state:  # the studio's own file: its render's parts go too
                clear_parts(parts_dir(output), RENDER_PARTS)
                output.unlink(missing_ok=True)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
            yield Update(state["text"], state["fraction"])
    finally:  # the page went away or the event was cancelled: stop the render too
        if thread.is_alive():
            session.cancel()
            thread.join()
    if "error" in state:
        yield Update(state["error"], state["fraction"], error=state["error"])
    else:
        yield Update("done", 1.0, result=state["result"])


LIVE_WIDTH = 256  # pixels: the Live tab dreams the camera this wide


@dataclass
class Live:
    """The Live tab of one browser session: the camera's frames dreamed one after the other
    (:class:`dreamvideo.render.live.LiveStepper`), with the preset, objective and strength
    the page shows at each frame; a new preset or objective starts from a full dream."""

    settings: tuple[str, str] = ("", "")  # preset, objective
    stepper: Any = None
    steps: Any = None
    dreamer: Any = None
    times: list[float] = field(default_factory=list)

    def dream(self, frame: Any, preset: str, layers: str, strength: float) -> tuple[Any, str]:
        """The dream of ``frame`` (``(H,W,3)`` uint8 from the browser) and a status line."""
        import time

        import cv2
        import numpy as np

        from dreamvideo.render.live import LiveStepper, live_size, live_steps
        from dreamvideo.render.network import dreamer_for

        cfg = load_preset(preset)
        layers = (layers or "").strip() or cfg.dream.layers
        if (preset, layers) != self.settings:
            cfg = set_values(cfg, {"dream.layers": layers})
            self.dreamer = dreamer_for(cfg.dream, self.dreamer)
            self.steps = live_steps(cfg.video, self.dreamer.params, cfg.dream.color_match)
            if self.stepper is None:
                self.stepper = LiveStepper(self.dreamer, cfg.video)
            self.stepper.restart(self.dreamer)
            self.settings, self.times = (preset, layers), []
        rgb = np.ascontiguousarray(np.asarray(frame, np.uint8)[..., :3])
        rgb = cv2.resize(rgb, live_size(rgb, LIVE_WIDTH), interpolation=cv2.INTER_AREA)
        picture, _ = self.stepper.dream(rgb, self.steps.with_step(float(strength)))
        self.times = [*self.times[-11:], time.monotonic()]
        span = self.times[-1] - self.times[0]
        fps = (len(self.times) - 1) / span if span > 0 else 0.0
        return picture, f"dreaming {rgb.shape[1]}x{rgb.shape[0]} live: {fps:.1f} frames/s"
