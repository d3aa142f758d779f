"""Device paths: the CPU no-op versions always, the CUDA ones where a GPU is present."""

import numpy as np
import pytest
import torch
from conftest import interrupted_then_resumed, pan_frames, photo, write_clip

from dreamvideo.config import Config
from dreamvideo.engine.ascent import AscentParams, dream
from dreamvideo.engine.device import (
    DeviceIO,
    autocast_dtype,
    pick_device,
    to_tensor,
    to_uint8_device,
)
from dreamvideo.engine.objectives import layer
from dreamvideo.motion.flow import carry_residual

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def devices():
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices(), ids=str)
def test_device_io_round_trip(device):
    io = DeviceIO(device)
    frame = photo("coffee", 40)
    flow = np.random.default_rng(0).random((frame.shape[0], 40, 2), dtype=np.float32)
    t = io.ready(io.upload({"frame": frame, "flow": flow}))
    assert t["frame"].device.type == device.type and t["frame"].dtype == torch.uint8
    assert np.array_equal(t["flow"].cpu().numpy(), flow)
    img = t["frame"].permute(2, 0, 1)[None].float() / 255
    assert np.array_equal(io.download(to_uint8_device(img)).numpy(), frame)


def test_cpu_uses_no_streams_and_fp32():
    assert DeviceIO(torch.device("cpu")).stream is None
    assert autocast_dtype(torch.device("cpu"), "auto") is None
    assert autocast_dtype(torch.device("cpu"), "bf16") == torch.bfloat16


@cuda
@pytest.mark.gpu
def test_cuda_dream_raises_the_objective_with_autocast():
    from dreamvideo.engine.models import load_backbone

    device = pick_device("cuda")
    net = load_backbone(device=device).use_channels_last().truncated(["blocks.4"])
    obj = layer("blocks.4")
    x = to_tensor(photo("chelsea", 128), device)
    params = AscentParams(
        octaves=2, octave_scale=1.4, iterations=4, step=2.0, jitter=8, normalize="laplacian", tile=0
    )
    out = dream(
        x,
        net,
        obj,
        params,
        torch.Generator().manual_seed(0),
        autocast=autocast_dtype(device, "auto"),
    )
    assert out.dtype == torch.float32 and out.device.type == "cuda"
    with torch.no_grad():
        assert obj(net(out, obj.layers)) > 1.3 * obj(net(x, obj.layers))


@cuda
@pytest.mark.gpu
def test_cuda_residual_carry_matches_cpu():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(1, 3, 24, 32, generator=g) for _ in range(3))
    flow, mask = torch.randn(24, 32, 2, generator=g), torch.rand(24, 32, generator=g)
    want = carry_residual(a, b, c, flow, mask, 0.9)
    got = carry_residual(a.cuda(), b.cuda(), c.cuda(), flow.cuda(), mask.cuda(), 0.9)
    torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=1e-4)


@cuda
@pytest.mark.gpu
def test_cuda_video_render_and_resume(tmp_path):
    from dreamvideo.media.frames import read_frames
    from dreamvideo.render.clip import render_video

    clip = write_clip(tmp_path / "c.mp4", pan_frames(10, (96, 64)), audio=True)
    cfg = Config.from_dict(
        {
            "dream": {"layers": "blocks.4", "octaves": 1, "iterations": 3, "device": "cuda"},
            "video": {"next_octaves": 1, "next_iterations": 2, "checkpoint_every": 4},
        }
    )
    ref = tmp_path / "ref.mp4"
    render_video(cfg, clip, ref)
    out = tmp_path / "out.mp4"
    r = interrupted_then_resumed(lambda **k: render_video(cfg, clip, out, **k), 6)
    assert r.resumed_from == 4 and r.frames == 10
    got = [f.astype(int) for _, f in read_frames(out)]
    want = [f.astype(int) for _, f in read_frames(ref)]
    # cuDNN may pick other kernels between runs: frames agree up to rounding, not bit for bit
    assert all(np.abs(a - b).mean() < 2.0 for a, b in zip(got, want, strict=True))


def test_devices_that_are_not_there_are_one_line():
    from dreamvideo.errors import UserError

    assert pick_device("cpu") == torch.device("cpu")
    if not torch.backends.mps.is_available():
        with pytest.raises(UserError, match="device 'mps': no Apple GPU"):
            pick_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="device 'cuda:1': CUDA is not available"):
            pick_device("cuda:1")
    assert Config.from_dict({"dream": {"device": "mps"}}).dream.device == "mps"
