"""What real-time rendering on a GPU rests on, checked on the CPU: the network sees a small
fixed set of input shapes over a whole render (a GPU tunes each shape once), and the step
loop never waits for the device (that test needs CUDA)."""

from __future__ import annotations

import pytest
import torch
from conftest import pan_frames, photo, write_clip
from PIL import Image

from dreamvideo.engine.ascent import octave_sizes
from dreamvideo.engine.models import Backbone
from dreamvideo.presets import load_preset
from dreamvideo.render import dreamer_for, render_image, render_video


@pytest.fixture()
def shapes(monkeypatch):
    """Every input shape the network sees from now on (the dreamer is loaded first: its
    one-off probe of the layers is not part of a render)."""
    seen: list[tuple[int, ...]] = []
    forward = Backbone.forward

    def spy(self, x, layers):
        seen.append(tuple(x.shape))
        return forward(self, x, layers)

    def start():
        monkeypatch.setattr(Backbone, "forward", spy)
        return seen

    return start


def test_a_tiled_clip_shows_the_network_one_shape_per_octave_over_30_frames(tmp_path, shapes):
    """30 frames of 320x192 dreamed with tiles of 64 (windows of 64 plus two halos): the
    first frame's octaves are the only sizes, each cut into windows of one shape, and the
    touch-ups (the finest octave) reuse the finest one. Bound: the first frame's octaves."""
    src = write_clip(tmp_path / "pan.mp4", pan_frames(30, (320, 192)))
    cfg = load_preset("video").override(
        "dream", layers="blocks.4", octaves=3, iterations=2, tile=64
    )
    dreamer = dreamer_for(cfg.dream)
    seen = shapes()
    r = render_video(cfg, src, tmp_path / "out.mp4", dreamer=dreamer)
    assert r.frames == 30
    octaves = octave_sizes(192, 320, 3, cfg.dream.octave_scale)
    assert len(seen) > 30 * 2  # tiled: several windows per step
    assert len(set(seen)) == len(octaves) == 3, sorted(set(seen))


def test_a_tiled_1080p_picture_shows_the_network_one_shape_per_octave(tmp_path, shapes):
    """A 1920x1080 picture with the default tile (1024): the finest octave is cut into two
    windows of one shape across, the coarser ones fit whole; one shape per octave."""
    path = tmp_path / "big.png"
    Image.fromarray(photo("astronaut", 1080)).resize((1920, 1080)).save(path)
    cfg = load_preset("default").override("dream", layers="blocks.4", octaves=3, iterations=1)
    assert cfg.dream.tile == 1024
    dreamer = dreamer_for(cfg.dream)
    seen = shapes()
    render_image(cfg, path, tmp_path / "out.png", dreamer=dreamer)
    octaves = octave_sizes(1080, 1920, 3, cfg.dream.octave_scale)
    assert len(set(seen)) == len(octaves) == 3, sorted(set(seen))
    finest = [s for s in seen if s[2] == 1080]
    assert finest and all(s[3] < 1920 for s in finest)  # the finest octave was tiled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_step_loop_never_waits_for_the_gpu():
    """On CUDA under the sync debug mode "error" (any wait for the device raises): a picture's
    ascent whole and tiled, and a clip's first frame and touch-up. Each runs once before, so
    that the one-off uploads of constants are not counted."""
    from dataclasses import replace

    from dreamvideo.engine.device import to_tensor
    from dreamvideo.motion.clip import Tracked, step_clip
    from dreamvideo.render.clip import clip_steps

    cfg = load_preset("video").override(
        "dream", layers="blocks.4", octaves=2, iterations=3, device="cuda"
    )
    dreamer = dreamer_for(cfg.dream)
    rgb = photo("astronaut", 512)
    x = to_tensor(rgb, dreamer.device)
    h, w = x.shape[-2:]
    still = Tracked(torch.zeros(h, w, 2, device=x.device), torch.ones(h, w, device=x.device), 1.0)
    steps = replace(clip_steps(cfg.video, dreamer.params), stride=1)

    def clip():
        _, carry, _ = step_clip(dreamer, steps, rgb, x, None, None)
        step_clip(dreamer, steps, rgb, x, still, carry)

    runs = [lambda: dreamer(x), lambda: dreamer(x, replace(dreamer.params, tile=128)), clip]
    for run in runs:
        run()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()


def test_flow_workers_find_the_motion_of_one_reader_in_order(tmp_path):
    """Three threads finding the flows ahead (each with its own estimator) hand over the
    same frames and flows, in the same order, as one reader that finds them in turn."""
    import numpy as np

    from dreamvideo.media.frames import probe_video
    from dreamvideo.render.clip import flow_function, plan_clip, tracked_frames

    src = write_clip(tmp_path / "pan.mp4", pan_frames(12, (96, 64)))
    cfg = load_preset("video")
    plan = plan_clip(probe_video(src), cfg.video)
    flow = flow_function(cfg.video, torch.device("cpu"))
    one, three = (list(tracked_frames(plan, 0, flow, True, None, workers=n)) for n in (1, 3))
    assert [f[0] for f in three] == list(range(12)) == [f[0] for f in one]
    assert one[0][3] is None and three[0][3] is None
    for a, b in zip(one[1:], three[1:], strict=True):
        assert np.array_equal(a[1], b[1]) and np.array_equal(a[3].flow, b[3].flow)
        assert np.array_equal(a[3].mask, b[3].mask)


def test_the_step_loop_reads_nothing_back_from_the_image(monkeypatch):
    """The CPU's counterpart of the CUDA check above: during a picture's ascent (whole and
    tiled) and a clip's first frame and touch-up, no value computed from the picture is read
    back to Python (``.item()``, ``float()``, ``bool()``, ``.tolist()``, ``.numpy()``): on a
    GPU each such read waits for the device. Integers drawn from the CPU's random generator
    (the jitter) are not the picture's and may be read."""
    from dataclasses import replace

    from dreamvideo.engine.device import to_tensor
    from dreamvideo.motion.clip import Tracked, step_clip
    from dreamvideo.render.clip import clip_steps

    cfg = load_preset("video").override("dream", layers="blocks.4", octaves=2, iterations=3)
    dreamer = dreamer_for(cfg.dream)
    rgb = photo("astronaut", 160)
    x = to_tensor(rgb, dreamer.device)
    h, w = x.shape[-2:]
    still = Tracked(torch.zeros(h, w, 2), torch.ones(h, w), 1.0)
    steps = replace(clip_steps(cfg.video, dreamer.params), stride=1)
    reads: list[str] = []
    for name in ("item", "tolist", "numpy", "__float__", "__bool__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *a, _real=real, _name=name, **kw):
            if self.is_floating_point():
                reads.append(_name)
            return _real(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    dreamer(x)
    dreamer(x, replace(dreamer.params, tile=64))
    _, carry, _ = step_clip(dreamer, steps, rgb, x, None, None)
    step_clip(dreamer, steps, rgb, x, still, carry)
    assert reads == [], reads
