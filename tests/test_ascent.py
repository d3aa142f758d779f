import pytest
import torch
from conftest import photo

from dreamvideo.engine.ascent import (
    AscentParams,
    dream,
    gradient,
    laplacian_normalize,
    normalize_gradient,
    octave_sizes,
    steps_for,
    tile_spans,
)
from dreamvideo.engine.objectives import layer, parse_objective

FAST = AscentParams(
    octaves=2, octave_scale=1.4, iterations=3, step=2.0, jitter=8, normalize="mean", tile=0
)


def image(width=96, name="chelsea"):
    return torch.from_numpy(photo(name, width)).permute(2, 0, 1)[None].float() / 255


def test_octave_sizes_end_at_full_size_and_skip_tiny_ones():
    assert octave_sizes(512, 512, 4, 1.4) == [(187, 187), (261, 261), (366, 366), (512, 512)]
    assert octave_sizes(100, 120, 4, 2.0) == [(100, 120)]
    assert steps_for(512, 512, FAST) == 6


def test_dream_keeps_shape_and_range_and_raises_the_objective(lite0):
    obj = layer("blocks.4")
    net = lite0.truncated(obj.layers)
    x = image()
    out = dream(x, net, obj, FAST, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    with torch.no_grad():
        before, after = obj(net(x, obj.layers)), obj(net(out, obj.layers))
    assert after > 1.3 * before


def test_same_seed_same_output_other_seed_differs(lite0):
    obj = layer("blocks.3")
    net = lite0.truncated(obj.layers)
    x = image(64)
    a = dream(x, net, obj, FAST, torch.Generator().manual_seed(3))
    b = dream(x, net, obj, FAST, torch.Generator().manual_seed(3))
    c = dream(x, net, obj, FAST, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_non_contiguous_input_gives_the_same_dream(lite0):
    obj = layer("blocks.3")
    net = lite0.truncated(obj.layers)
    x = image(64)
    flipped = x.flip(3).contiguous().flip(3)  # same values, negative stride view
    xt = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)  # transposed memory layout
    assert not xt.is_contiguous()
    ref = dream(x, net, obj, FAST, torch.Generator().manual_seed(0))
    for variant in (flipped, xt):
        torch.testing.assert_close(
            dream(variant, net, obj, FAST, torch.Generator().manual_seed(0)), ref
        )


def test_bad_shape_is_rejected(lite0):
    with pytest.raises(ValueError, match=r"\(1,3,H,W\)"):
        dream(torch.rand(3, 32, 32), lite0, layer("stem"), FAST, torch.Generator())


def input_shapes(net):
    """A forward pre-hook on ``net`` that records the shape of every input it sees (after the
    one-off probe that measures the layers' strides)."""
    net.strides()
    seen = []
    handle = net.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    return seen, handle


@pytest.mark.parametrize("objective, tile", [("blocks.4", 32), ("blocks.10", 64)])
def test_tiled_gradient_agrees_with_whole_image_gradient(lite0, objective, tile):
    obj = parse_objective(objective)
    net = lite0.truncated(obj.layers)
    x = image(320, "astronaut")
    whole, v_whole = gradient(net, obj, x)
    seen, handle = input_shapes(net)
    tiled, v_tiled = gradient(net, obj, x, tile=tile, generator=torch.Generator().manual_seed(1))
    handle.remove()
    assert len(seen) >= 4 and len(set(seen)) == 1  # tiled, every window of one shape
    cos = torch.nn.functional.cosine_similarity(whole.flatten(), tiled.flatten(), dim=0)
    assert cos > 0.995
    assert (whole - tiled).abs().mean() < 0.05 * whole.abs().mean()
    assert torch.isclose(v_whole, v_tiled, rtol=1e-3)


def test_tiling_without_halo_would_disagree(lite0):
    """The halo is what makes tiles agree: without it the deep layer's gradient is far off."""
    obj = parse_objective("blocks.10")
    net = lite0.truncated(obj.layers)
    x = image(256, "astronaut")
    whole, _ = gradient(net, obj, x)
    bare, _ = gradient(net, obj, x, tile=96, halo=0, generator=torch.Generator().manual_seed(1))
    assert torch.nn.functional.cosine_similarity(whole.flatten(), bare.flatten(), dim=0) < 0.9


SIDES = [(1920, 1024, 96, 16), (1000, 64, 192, 32), (777, 100, 60, 4), (5000, 512, 96, 16)]


@pytest.mark.parametrize("n, tile, halo, align", SIDES)
def test_tile_windows_are_one_size_inside_the_picture_and_the_seams_move(n, tile, halo, align):
    firsts = set()
    for u in (0.0, 0.3, 0.7, 0.999):
        size, spans = tile_spans(n, tile, halo, align, u)
        assert size <= tile + 2 * halo + align
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(b == a for (_, b, _), (a, _, _) in zip(spans, spans[1:], strict=False))
        for a, b, w in spans:
            # a whole feature cell owned, the window on cells, inside, with the halo around
            assert a < b and a % align == 0 and w % align == 0 and 0 <= w <= n - size
            assert w <= max(0, a - halo) and min(n, b + halo) <= w + size
        firsts.add(spans[0][1])
    assert len(firsts) > 1


def test_a_side_that_fits_the_tile_and_its_halo_is_one_window():
    assert tile_spans(1080, 1024, 96, 16, 0.5) == (1080, [(0, 1080, 0)])


def test_a_tiled_dream_sees_one_shape_per_octave(lite0):
    """Octave after octave and step after step, the network sees one input shape per
    octave, whatever the seams' random positions: on a GPU each is tuned once."""
    obj = layer("blocks.4")
    net = lite0.truncated(obj.layers)
    x = image(320, "astronaut")
    params = AscentParams(3, 1.4, 3, 2.0, 8, "laplacian", 48)
    seen, handle = input_shapes(net)
    dream(x, net, obj, params, torch.Generator().manual_seed(0))
    handle.remove()
    octaves = octave_sizes(*x.shape[-2:], 3, 1.4)
    assert len(seen) > 3 * len(octaves)  # tiled
    assert len(set(seen)) == len(octaves)


def test_normalizations_give_unit_mean_step():
    g = torch.randn(1, 3, 64, 48) * 1e-4
    for method in ("mean", "laplacian"):
        n = normalize_gradient(g, method)
        assert n.shape == g.shape
        assert n.abs().mean() == pytest.approx(1.0, rel=1e-3)


def test_laplacian_normalization_boosts_weak_low_frequencies():
    """A tiny smooth ramp plus strong fine noise: after per-band scaling the ramp counts."""
    torch.manual_seed(0)
    ramp = torch.linspace(-1, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64) * 1e-3
    noise = torch.randn(1, 3, 64, 64)
    g = ramp + noise
    out = laplacian_normalize(g, 4)
    low = torch.nn.functional.avg_pool2d(out, 16)
    low_in = torch.nn.functional.avg_pool2d(g, 16)
    assert low.std() / out.std() > 3 * (low_in.std() / g.std())


def test_step_map_scales_the_step_per_pixel(lite0):
    obj = layer("blocks.3")
    net = lite0.truncated(obj.layers)
    x = image(64)
    step_map = torch.ones(1, 1, *x.shape[-2:])
    step_map[..., :, :32] = 0.0  # leave the left half alone
    one = AscentParams(
        octaves=1, octave_scale=1.4, iterations=3, step=3.0, jitter=4, normalize="mean", tile=0
    )
    out = dream(x, net, obj, one, torch.Generator().manual_seed(0), step_map=step_map)
    assert torch.equal(out[..., :32], x[..., :32])
    assert (out[..., 32:] - x[..., 32:]).abs().mean() > 0.01


def test_a_full_temporal_pull_keeps_the_picture_and_none_lets_it_dream(lite0):
    import torch

    img = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    obj = parse_objective("blocks.3")
    params = AscentParams(
        octaves=1, octave_scale=1.4, iterations=3, step=4.0, jitter=0, normalize="mean", tile=0
    )

    def run(weight: float) -> torch.Tensor:
        pull = (img, torch.full((1, 1, 48, 64), weight))
        return dream(img, lite0, obj, params, torch.Generator().manual_seed(0), pull=pull)

    assert torch.allclose(run(1.0), img, atol=1e-6)  # pulled all the way back every step
    free, half = ((run(w) - img).abs().mean() for w in (0.0, 0.5))
    assert free > 2 * half > 0
