"""The web studio's page (Gradio, the optional extra ``dreamvideo[ui]``): five tabs over the
library, one render at a time through Gradio's queue (see :mod:`dreamvideo.studio.session`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from dreamvideo import names
from dreamvideo.errors import UserError
from dreamvideo.presets import load_preset, preset_names
from dreamvideo.studio.session import (
    Live,
    Session,
    clip_config,
    dream_picture,
    first_frame,
    mask_values,
    reproduction,
    run_in_thread,
    zoom_config,
)

CSS = "#status textarea {font-family: monospace}"


def _layers(model: str) -> list[str]:
    from dreamvideo.engine.models import load_backbone

    return load_backbone(model, pretrained=False).names


def _session(state: Session | None, root: Path) -> Session:
    return state if state is not None else Session.create(root)


def _upload(kind: type, label: str, elem_id: str) -> gr.components.Component:
    """An upload field (a file path reaches the handler)."""
    extra = {"type": "filepath"} if kind is gr.Image else {}
    return kind(label=label, sources=["upload"], elem_id=elem_id, **extra)


def _number(value: float | None, label: str, elem_id: str, precision: int | None = None):
    return gr.Number(value, label=label, elem_id=elem_id, precision=precision)


def _mask_fields(tab: str) -> tuple:
    """A matte upload (white dreams, black keeps the source: a picture, or a clip on the Clip
    tab), invert and feather, with ids ``TAB-mask``, ``TAB-mask-invert``, ``TAB-feather``."""
    with gr.Row():
        matte = gr.File(
            label="mask (white dreams; optional)", type="filepath", elem_id=f"{tab}-mask"
        )
        invert = gr.Checkbox(False, label="invert mask", elem_id=f"{tab}-mask-invert")
        feather = _number(0.0, "mask feather (px)", f"{tab}-feather")
    return matte, invert, feather


def _add_layer(current: str | None, layer: str | None) -> str | None:
    """The objective with the picked layer added as one more term."""
    return f"{current} + {layer}" if current and layer else layer or current


def _dream_fields(preset: str) -> tuple:
    """The picture fields as the chosen preset sets them."""
    d = load_preset(preset).dream
    return d.layers, d.octaves, d.iterations, d.step, d.seed


def _cancel(st: Session | None) -> None:
    if st is not None:
        st.cancel()


def _rendering(
    st: Session,
    output: Path,
    work: Callable[..., Any],
    done: Callable[[], tuple],
    fields: int,
    progress: gr.Progress,
) -> Iterator[tuple]:
    """The page's rows while ``work(on_frame)`` renders into ``output``: progress in the
    status, or the error, or once finished the file and ``done()``'s ``fields`` values."""
    for update in run_in_thread(st, output, work):
        if update.error:
            yield st, None, update.error, *[""] * fields
        elif update.result is None:
            progress(update.fraction, desc=update.text)
            yield st, None, update.text, *[gr.skip()] * fields
        else:
            yield st, str(output), f"wrote {output.name}", *done()


def build(root: Path) -> gr.Blocks:
    """The studio's page; every file it writes or serves lives under ``root``."""
    root = root.resolve()
    with gr.Blocks(title="dreamvideo studio") as app:
        state = gr.State(None)
        gr.Markdown("# dreamvideo studio\nDeepDream pictures, steady clips and zoom loops.")
        with gr.Tabs():
            _picture_tab(state, root)
            _clip_tab(state, root)
            _zoom_tab(state, root)
            _live_tab()
            _presets_tab(state, root, app)
    return app


def _picture_tab(state: gr.State, root: Path) -> None:
    """A picture dreamed with a preset and the fields it sets, or a contact sheet of layers."""
    d = load_preset("default").dream
    with gr.Tab("Picture", id="picture"), gr.Row():
        with gr.Column():
            p_in = _upload(gr.Image, "picture", "picture-in")
            p_preset = gr.Dropdown(preset_names(), value="default", label="preset")
            p_layers = gr.Textbox(d.layers, label="objective", elem_id="picture-layers")
            p_pick = gr.Dropdown(_layers(names.DEFAULT_MODEL), value=None, label="add a layer")
            with gr.Row():
                p_oct = _number(d.octaves, "octaves", "picture-octaves", 0)
                p_it = _number(d.iterations, "iterations", "picture-iterations", 0)
                p_step = _number(d.step, "step", "picture-step")
                p_seed = _number(d.seed, "seed", "picture-seed", 0)
            p_mask, p_inv, p_feather = _mask_fields("picture")
            p_go = gr.Button("Dream", variant="primary", elem_id="picture-go")
            p_sheet = gr.Button("Layer contact sheet", elem_id="picture-sheet")
        with gr.Column():
            p_out = gr.Image(label="dream", type="filepath", elem_id="picture-out")
            p_file = gr.File(label="download", elem_id="picture-file")
            p_status = gr.Textbox(label="status", elem_id="picture-status")
            p_cmd = gr.Code(label="command", language="shell", elem_id="picture-cmd")
            p_yaml = gr.Code(label="preset YAML", language="yaml")

    def picture(sheet: bool):
        def handler(st, image, preset, layers, octaves, iterations, step, seed, *mask):
            st = _session(st, root)
            form = dict(layers=layers, octaves=octaves, iterations=iterations, step=step, seed=seed)
            form.update(zip(("mask", "invert", "feather"), mask, strict=True))
            try:
                made = dream_picture(st, image, preset, form, sheet)
            except UserError as e:
                return st, None, None, f"error: {e}", "", ""
            out = str(made.output)
            return st, out, out, f"wrote {made.output.name}", made.command, made.yaml

        return handler

    inputs = [state, p_in, p_preset, p_layers, p_oct, p_it, p_step, p_seed]
    inputs += [p_mask, p_inv, p_feather]
    outputs = [state, p_out, p_file, p_status, p_cmd, p_yaml]
    p_go.click(picture(False), inputs, outputs)
    p_sheet.click(picture(True), inputs, outputs)
    p_pick.change(_add_layer, [p_layers, p_pick], p_layers)
    p_preset.change(_dream_fields, p_preset, [p_layers, p_oct, p_it, p_step, p_seed])


def _clip_tab(state: gr.State, root: Path) -> None:
    """A clip dreamed steadily, its first frame previewed, its steadiness measured."""
    with gr.Tab("Clip", id="clip"), gr.Row():
        with gr.Column():
            c_in = _upload(gr.Video, "clip", "clip-in")
            c_preset = gr.Dropdown(preset_names(), value="video", label="preset")
            with gr.Row():
                c_width = _number(320, "width", "clip-width", 0)
                c_start = _number(0.0, "start (s)", "clip-start")
                c_end = _number(None, "end (s)", "clip-end")
            c_mask, c_inv, c_feather = _mask_fields("clip")
            with gr.Row():
                c_first = gr.Button("Preview first frame", elem_id="clip-first")
                c_go = gr.Button("Render", variant="primary", elem_id="clip-go")
                c_cancel = gr.Button("Cancel", variant="stop", elem_id="clip-cancel")
        with gr.Column():
            c_frame = gr.Image(label="first frame", elem_id="clip-frame")
            c_out = gr.Video(label="dream", elem_id="clip-out")
            c_status = gr.Textbox(label="status", elem_id="clip-status")
            c_metrics = gr.Textbox(label="metrics", elem_id="clip-metrics")
            c_cmd = gr.Code(label="command", language="shell", elem_id="clip-cmd")
            c_yaml = gr.Code(label="preset YAML", language="yaml")

    def preview_clip(st, clip, preset, width, start, end, mask, invert, feather):
        st = _session(st, root)
        try:
            masked = mask_values(st, mask, invert, feather)
            cfg = clip_config(preset, width, start, end, 1, masked)
            frame = first_frame(st, clip, cfg)
        except UserError as e:
            return st, None, f"error: {e}"
        return st, frame, "first frame dreamed"

    def render_clip(
        st, clip, preset, width, start, end, mask, invert, feather,
        progress=gr.Progress(),  # noqa: B008
    ):  # fmt: skip
        from dreamvideo.media.metrics import measure_clip
        from dreamvideo.render.clip import render_video

        st = _session(st, root)
        try:
            source = st.take(clip, "clip")
            if source is None:
                raise UserError("upload a clip first")
            cfg = clip_config(
                preset, width, start, end, mask=mask_values(st, mask, invert, feather)
            )
        except UserError as e:
            yield st, None, f"error: {e}", "", "", ""
            return
        output = st.output("clip", ".mp4")

        def work(on_frame):
            return render_video(cfg, source, output, on_frame=on_frame)

        def done():
            m = measure_clip(source, output)
            line, text, _ = reproduction(["video", str(source)], cfg, output)
            facts = (
                f"warping error {m.warp_error_output:.2f} against the source's "
                f"{m.warp_error_source:.2f} (ratio {m.warp_ratio:.2f}); strength "
                f"{m.strength:.1f}; drift {m.drift:.2f}"
            )
            return facts, line, text

        yield from _rendering(st, output, work, done, 3, progress)

    inputs = [state, c_in, c_preset, c_width, c_start, c_end, c_mask, c_inv, c_feather]
    c_first.click(preview_clip, inputs, [state, c_frame, c_status])
    c_go.click(render_clip, inputs, [state, c_out, c_status, c_metrics, c_cmd, c_yaml])
    # Cancel sets the session's flag, which stops the render at its next frame; the render's
    # own event then says "cancelled". queue=False: it must not wait in the queue behind the
    # render it cancels.
    c_cancel.click(_cancel, state, None, queue=False)


def _zoom_tab(state: gr.State, root: Path) -> None:
    """A zoom loop from a picture, noise or a colour; four frames to preview it."""
    with gr.Tab("Zoom", id="zoom"), gr.Row():
        with gr.Column():
            z_start = gr.Radio(["picture", "noise", "color"], value="noise", label="start from")
            z_in = _upload(gr.Image, "picture", "zoom-in")
            z_color = gr.ColorPicker("#808080", label="colour")
            z_preset = gr.Dropdown(preset_names(), value="zoom", label="preset")
            with gr.Row():
                z_secs = _number(4.0, "seconds", "zoom-seconds")
                z_fps = _number(24.0, "fps", "zoom-fps")
                z_w = _number(256, "width", "zoom-width", 0)
                z_h = _number(256, "height", "zoom-height", 0)
            z_zoom = gr.Textbox(
                label="zoom per second, or keyframes", placeholder="1.15  or  0: 1.05, 5s: 1.3"
            )
            z_rot = gr.Textbox(label="rotate (degrees per second)")
            z_px = gr.Textbox(label="pan x (pixels per second)")
            z_py = gr.Textbox(label="pan y (pixels per second)")
            z_layers = gr.Textbox(label="layers (keyframes cross-fade)")
            z_loop = gr.Checkbox(False, label="loop")
            with gr.Row():
                z_prev = gr.Button("Preview 4 frames", elem_id="zoom-preview")
                z_go = gr.Button("Render", variant="primary", elem_id="zoom-go")
                z_cancel = gr.Button("Cancel", variant="stop", elem_id="zoom-cancel")
        with gr.Column():
            z_out = gr.Video(label="zoom", elem_id="zoom-out")
            z_status = gr.Textbox(label="status", elem_id="zoom-status")
            z_cmd = gr.Code(label="command", language="shell", elem_id="zoom-cmd")
            z_yaml = gr.Code(label="preset YAML", language="yaml")
    form_fields = {
        "start": z_start, "image": z_in, "color": z_color, "preset": z_preset,
        "seconds": z_secs, "fps": z_fps, "width": z_w, "height": z_h, "zoom": z_zoom,
        "rotate": z_rot, "pan_x": z_px, "pan_y": z_py, "layers": z_layers, "loop": z_loop,
    }  # fmt: skip
    fields, inputs = list(form_fields), list(form_fields.values())

    def zoom(preview: bool):
        def handler(st, *values, progress=gr.Progress()):  # noqa: B008
            from dreamvideo.render.zoom import render_zoom

            st = _session(st, root)
            form = dict(zip(fields, values, strict=True))
            try:
                cfg = zoom_config(form, preview)
                source = st.take(form["image"], "picture") if form["start"] == "picture" else None
                if form["start"] == "picture" and source is None:
                    raise UserError("upload a picture, or start from noise or a colour")
            except UserError as e:
                yield st, None, f"error: {e}", "", ""
                return
            output = st.output("zoom", ".mp4")

            def work(on_frame):
                return render_zoom(cfg, source, output, on_frame=on_frame)

            def done():
                command = ["zoom", *([str(source)] if source else [])]
                line, text, _ = reproduction(command, cfg, output)
                return line, text

            yield from _rendering(st, output, work, done, 2, progress)

        return handler

    outputs = [state, z_out, z_status, z_cmd, z_yaml]
    z_go.click(zoom(False), [state, *inputs], outputs)
    z_prev.click(zoom(True), [state, *inputs], outputs)
    z_cancel.click(_cancel, state, None, queue=False)


def _live_tab() -> None:
    """The browser's camera dreamed as it comes (:class:`Live`), preset, objective and
    strength changeable while it runs."""
    live = load_preset("video-fast")
    with gr.Tab("Live", id="live"), gr.Row():
        with gr.Column():
            l_cam = gr.Image(
                label="camera", sources=["webcam"], streaming=True, type="numpy",
                elem_id="live-in",
            )  # fmt: skip
            l_preset = gr.Dropdown(
                [p for p in preset_names() if p.startswith("video")],
                value="video-fast",
                label="preset",
                elem_id="live-preset",
            )
            l_layers = gr.Textbox(live.dream.layers, label="objective", elem_id="live-layers")
            l_step = gr.Slider(
                0.5, 8.0, value=live.dream.step, step=0.5, label="strength (step)",
                elem_id="live-step",
            )  # fmt: skip
        with gr.Column():
            l_out = gr.Image(label="dream", type="numpy", elem_id="live-out")
            l_status = gr.Textbox(label="status", elem_id="live-status")
    live_state = gr.State(None)

    def live_frame(lv, frame, preset, layers, strength):
        lv = lv if lv is not None else Live()
        if frame is None:
            return lv, gr.skip(), gr.skip()
        try:
            picture, line = lv.dream(frame, preset, layers, strength)
        except UserError as e:
            return lv, gr.skip(), f"error: {e}"
        return lv, picture, line

    l_cam.stream(
        live_frame,
        [live_state, l_cam, l_preset, l_layers, l_step],
        [live_state, l_out, l_status],
        stream_every=0.2,
    )


def _presets_tab(state: gr.State, root: Path, app: gr.Blocks) -> None:
    """Every preset's YAML, editable, checked and saved as a user preset."""
    with gr.Tab("Presets", id="presets"):
        s_pick = gr.Dropdown(preset_names(), value="default", label="preset")
        s_text = gr.Code(label="YAML", language="yaml", interactive=True, elem_id="preset-yaml")
        with gr.Row():
            s_name = gr.Textbox(label="save as", placeholder="my-look", elem_id="preset-name")
            s_save = gr.Button("Check and save", variant="primary", elem_id="preset-save")
        s_status = gr.Textbox(label="status", elem_id="preset-status")
        s_file = gr.File(label="download", elem_id="preset-file")

    def show_preset(name):
        from dreamvideo.presets import read_preset

        path, _ = read_preset(name)
        return path.read_text(encoding="utf-8")

    def save_preset(st, name, text):
        from dreamvideo.presets import save_user_preset

        st = _session(st, root)
        try:
            path = save_user_preset((name or "").strip(), text or "")
        except UserError as e:
            return st, f"error: {e}", None, gr.skip()
        copy = st.folder / path.name
        copy.write_text(text, encoding="utf-8")
        return st, f"saved {path}", str(copy), gr.update(choices=preset_names())

    s_pick.change(show_preset, s_pick, s_text)
    s_save.click(save_preset, [state, s_name, s_text], [state, s_status, s_file, s_pick])
    app.load(show_preset, s_pick, s_text)
