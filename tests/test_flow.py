import numpy as np
import pytest
from conftest import pan_frames, photo

from dreamvideo.motion.flow import (
    carry_residual,
    dis_flow,
    farneback_flow,
    occlusion_mask,
    track,
    warp,
)


def test_zero_flow_warp_is_identity():
    img = photo("coffee", 64).astype(np.float32)
    assert np.allclose(warp(img, np.zeros((*img.shape[:2], 2), np.float32)), img)


def test_warp_samples_at_x_plus_flow():
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 0] = 1.0  # read one pixel to the right
    assert np.allclose(warp(img, flow)[:, :4], img[:, 1:])


def test_warp_rejects_mismatched_flow():
    with pytest.raises(ValueError, match="does not fit"):
        warp(np.zeros((4, 5, 3), np.float32), np.zeros((4, 6, 2), np.float32))


@pytest.mark.parametrize(
    "flow_fn", [dis_flow("medium"), farneback_flow()], ids=["dis", "farneback"]
)
def test_known_pan_is_recovered_and_warps_with_near_zero_error(flow_fn):
    prev, cur = pan_frames(2, (128, 96), step=(3.0, 2.0))
    tr = track(prev, cur, flow_fn)
    inner = (slice(12, -12), slice(12, -12))
    # content moved by (3, 2) pixels, so cur(x) = prev(x - (3, 2)): backward flow (-3, -2)
    assert np.median(tr.flow[inner][..., 0]) == pytest.approx(-3.0, abs=0.25)
    assert np.median(tr.flow[inner][..., 1]) == pytest.approx(-2.0, abs=0.25)
    err = np.abs(warp(prev.astype(np.float32), tr.flow) - cur)[inner].mean()
    still = np.abs(prev.astype(np.float32) - cur)[inner].mean()
    assert err < 3.0 and err < 0.25 * still
    assert tr.coverage > 0.85


def test_half_size_flow_is_scaled_back_to_full_size_vectors():
    prev, cur = pan_frames(2, (256, 192), step=(6.0, 4.0))
    tr = track(prev, cur, dis_flow(), scale=0.5)
    assert tr.flow.shape == (192, 256, 2) and tr.mask.shape == (192, 256)
    inner = (slice(24, -24), slice(24, -24))
    assert np.median(tr.flow[inner][..., 0]) == pytest.approx(-6.0, abs=0.5)
    assert np.median(tr.flow[inner][..., 1]) == pytest.approx(-4.0, abs=0.5)
    err = np.abs(warp(prev.astype(np.float32), tr.flow) - cur)[inner].mean()
    still = np.abs(prev.astype(np.float32) - cur)[inner].mean()
    assert err < 0.35 * still and tr.coverage > 0.85


def test_occlusion_mask_flags_uncovered_background():
    background = photo("coffee", 128)[:80]
    patch = photo("chelsea", 96)[10:34, 30:54]  # a textured square the flow can follow
    prev, cur = background.copy(), background.copy()
    prev[28:52, 30:54] = patch
    cur[28:52, 38:62] = patch  # moved 8 px right
    tr = track(prev, cur, dis_flow("medium"))
    uncovered = tr.mask[30:50, 30:38].mean()  # visible now, behind the square before
    assert tr.mask[5:20, 80:120].mean() > 0.95  # static background far away
    assert tr.mask[30:50, 44:50].mean() > 0.8  # the moving square itself is tracked
    assert uncovered < 0.6
    assert np.median(tr.flow[32:48, 44:50, 0]) == pytest.approx(-8, abs=1)


def test_forward_backward_check_on_consistent_and_inconsistent_flows():
    h, w = 32, 40
    b = np.zeros((h, w, 2), np.float32)
    b[..., 0] = -2.0
    f = -b  # a consistent pair: everything tracked (but the strip entering from the left)
    m = occlusion_mask(b, f, blur=1)
    assert m[:, 3:].min() == 1.0 and m[:, :1].max() == 0.0
    assert occlusion_mask(b, np.full_like(b, 5.0), blur=1).mean() == 0.0


def test_unrelated_frames_look_like_a_scene_cut():
    a = photo("coffee", 96)[:60]
    b = photo("astronaut", 96)[:60]
    assert track(a, b, dis_flow("medium")).coverage < 0.2


def test_carry_residual_blends_the_warped_residual_where_tracked():
    import torch

    g = torch.Generator().manual_seed(1)
    cur = torch.rand(1, 3, 8, 10, generator=g) * 0.5
    prev_source = torch.rand(1, 3, 8, 10, generator=g) * 0.5
    prev_dream = prev_source + 0.2
    zero = torch.zeros(8, 10, 2)
    ones, none = torch.ones(8, 10), torch.zeros(8, 10)
    torch.testing.assert_close(
        carry_residual(cur, prev_dream, prev_source, zero, ones, 0.5), cur + 0.1
    )
    torch.testing.assert_close(carry_residual(cur, prev_dream, prev_source, zero, none, 0.5), cur)


def test_carry_residual_warps_like_opencv_cubic():
    import cv2
    import torch

    residual = photo("coffee", 96)[:48, :64].astype(np.float32) / 255 - 0.5
    flow = np.zeros((48, 64, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.3, -0.6
    want = warp(residual, flow, cv2.INTER_CUBIC)
    t = torch.from_numpy(residual).permute(2, 0, 1)[None]
    zeros = torch.zeros_like(t)
    got = (
        carry_residual(
            zeros + 0.5, t + 0.5, zeros + 0.5, torch.from_numpy(flow), torch.ones(48, 64), 1.0
        )[0]
        .permute(1, 2, 0)
        .numpy()
        - 0.5
    )
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(got[inner] - np.clip(want, -0.5, 0.5)[inner]).max() < 0.02


def test_carry_residual_checks_shapes():
    import torch

    x = torch.zeros(1, 3, 8, 10)
    with pytest.raises(ValueError, match="do not fit"):
        carry_residual(x, x, x, torch.zeros(8, 11, 2), torch.zeros(8, 10), 1.0)


def test_carry_residual_cap_limits_the_carried_strength():
    import torch

    cur = torch.full((1, 3, 8, 10), 0.5)
    prev_source = torch.full((1, 3, 8, 10), 0.4)
    prev_dream = prev_source + 0.2
    zero, ones = torch.zeros(8, 10, 2), torch.ones(8, 10)
    capped = carry_residual(cur, prev_dream, prev_source, zero, ones, 1.0, torch.tensor(0.05))
    torch.testing.assert_close(capped, cur + 0.05)
    loose = carry_residual(cur, prev_dream, prev_source, zero, ones, 1.0, torch.tensor(0.5))
    torch.testing.assert_close(loose, cur + 0.2)
