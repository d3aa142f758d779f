"""Masks, keys and regional objectives: where the mask is black the source stays, inside the
dream keeps its strength, and every bad mask is one line."""

import numpy as np
import pytest
import torch
from conftest import (
    assert_one_line_error,
    cli,
    interrupted_then_resumed,
    pan_frames,
    photo,
    write_clip,
)
from PIL import Image

from dreamvideo.config import Config
from dreamvideo.engine.masks import color_key, feather, luma_key
from dreamvideo.errors import UserError
from dreamvideo.masks import parse_matte, parse_regions
from dreamvideo.media.frames import read_frames
from dreamvideo.render.clip import render_video
from dreamvideo.render.image import render_image
from dreamvideo.render.zoom import render_zoom

FAST = {
    "dream": {"layers": "blocks.4", "octaves": 1, "iterations": 4, "jitter": 4},
    "video": {"next_octaves": 1, "next_iterations": 2, "checkpoint_every": 3},
    "encode": {"preset": "ultrafast", "lossless": True},
}


def fast(**dream) -> Config:
    data = {k: dict(v) for k, v in FAST.items()}
    data["dream"].update(dream)
    return Config.from_dict(data)


def frames_of(path) -> np.ndarray:
    return np.stack([f for _, f in read_frames(path)]).astype(int)


def test_mask_syntax_and_its_mistakes():
    assert parse_matte("luma:0.6-1").kind == "luma"
    key = parse_matte("key:#20A040/60")
    assert (key.kind, key.color, key.tolerance) == ("key", (0x20, 0xA0, 0x40), 60.0)
    assert parse_matte("key:#ffffff").tolerance == 40.0
    assert parse_matte("matte.png").kind == "picture"
    assert parse_matte("matte.mp4").kind == "clip" and parse_matte("alpha").kind == "alpha"
    assert list(parse_regions("sky=luma:0.6-1; ground = luma:0-0.6")) == ["sky", "ground"]
    for text, message in [
        ("luma:0.8-0.2", "0 <= LOW < HIGH <= 1"),
        ("luma:bright", "luma:LOW-HIGH"),
        ("key:#12345", "key:#RRGGBB"),
        ("key:#123456/0", "tolerance 0"),
        ("depth:near", "unknown kind of mask"),
    ]:
        with pytest.raises(UserError, match=message):
            Config.from_dict({"dream": {"mask": text}})
    with pytest.raises(UserError, match="NAME=SOURCE"):
        Config.from_dict({"dream": {"regions": "luma:0-1"}})
    with pytest.raises(UserError, match="given twice"):
        parse_regions("a=luma:0-1; a=luma:0-0.5")


def test_keys_and_feather():
    grey = np.array([[[0, 0, 0], [128, 128, 128], [255, 255, 255]]], np.uint8)
    np.testing.assert_allclose(luma_key(grey, 0.4, 1.0)[0], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(luma_key(grey, 0.0, 0.4)[0], [1.0, 0.0, 0.0])
    green = np.array([[[30, 200, 40], [60, 200, 40], [30, 200, 110]]], np.uint8)
    # within the tolerance 1, over half as much again it fades, beyond it 0
    np.testing.assert_allclose(color_key(green, (30, 200, 40), 40.0)[0], [1.0, 1.0, 0.0])
    step = np.zeros((1, 40), np.float32)
    step[:, 20:] = 1
    soft = feather(step, 8.0)[0]
    assert 0.4 < soft[20] < 0.6 and soft[14] > 0.01 and soft[5] < 0.01 and soft[35] > 0.99


def test_picture_mask_keeps_the_source_exactly_where_black(tmp_path):
    rgb = photo("chelsea", 128)
    h, w = rgb.shape[:2]
    matte = np.zeros((h, w), np.uint8)
    matte[:, w // 2 :] = 255
    Image.fromarray(matte).save(tmp_path / "m.png")
    full = render_image(fast(), rgb).image.astype(int)
    half = render_image(fast(mask=str(tmp_path / "m.png")), rgb).image.astype(int)
    assert np.array_equal(half[:, : w // 2], rgb[:, : w // 2])
    inside = np.abs(half[:, w // 2 + 8 :] - rgb[:, w // 2 + 8 :]).mean()
    assert inside >= 0.8 * np.abs(full[:, w // 2 + 8 :] - rgb[:, w // 2 + 8 :]).mean()
    inverted = render_image(fast(mask=str(tmp_path / "m.png"), mask_invert=True), rgb).image
    assert np.array_equal(inverted[:, w // 2 :], rgb[:, w // 2 :])


@pytest.fixture()
def pan(tmp_path):
    return write_clip(tmp_path / "pan.mp4", pan_frames(9, (96, 64)), lossless=True)


def test_clip_luma_key_keeps_the_dark_source_and_dreams_the_bright(pan, tmp_path):
    source = frames_of(pan)
    plain, masked = tmp_path / "plain.mp4", tmp_path / "masked.mp4"
    render_video(fast(), pan, plain)
    render_video(fast(mask="luma:0.45-1"), pan, masked)
    dream, full = frames_of(masked), frames_of(plain)
    keyed = np.stack([luma_key(f.astype(np.uint8), 0.45, 1.0) for f in source])
    out, inside = keyed == 0, keyed == 1
    assert out.mean() > 0.2 and inside.mean() > 0.2
    # masked out: the source to one level on every frame, nothing leaks in along the motion
    assert np.abs(dream - source).max(-1)[out].max() <= 1
    change = np.abs(dream - source).mean(-1)[inside].mean()
    assert change >= 0.8 * np.abs(full - source).mean(-1)[inside].mean()


def test_feathered_edge_shows_no_seam(pan, tmp_path):
    out = tmp_path / "soft.mp4"
    cfg = fast(mask="luma:0.45-1", mask_feather=6.0)
    render_video(cfg, pan, out)
    source, dream = frames_of(pan), frames_of(out)
    residual = np.abs(dream - source).mean(-1)  # (T,H,W)
    # the residual's step between neighbouring pixels is no larger at the mask's edge than
    # inside the dream's own texture
    steps = np.abs(np.diff(residual, axis=2))
    keyed = np.stack([luma_key(f.astype(np.uint8), 0.45, 1.0) for f in source])
    soft = np.stack([feather(k, 6.0) for k in keyed])[..., 1:]
    edge, inside = (soft > 0.2) & (soft < 0.8), soft > 0.99
    assert np.percentile(steps[edge], 95) <= np.percentile(steps[inside], 95)


def test_resume_with_a_mask_gives_the_same_clip(pan, tmp_path):
    cfg = fast(mask="luma:0.45-1")
    ref, out = tmp_path / "ref.mp4", tmp_path / "out.mp4"
    render_video(cfg, pan, ref)
    interrupted_then_resumed(lambda **kw: render_video(cfg, pan, out, **kw), 4)
    assert np.array_equal(frames_of(ref), frames_of(out))


def test_matte_clip_follows_each_frame_and_must_be_long_enough(pan, tmp_path):
    frames = pan_frames(9, (96, 64))
    mattes = [
        np.repeat(((f.mean(-1) > 110) * 255).astype(np.uint8)[..., None], 3, 2) for f in frames
    ]
    matte = write_clip(tmp_path / "matte.mp4", mattes, lossless=True)
    out = tmp_path / "o.mp4"
    render_video(fast(mask=matte), pan, out)
    source, dream = frames_of(pan), frames_of(out)
    black = np.stack([m[..., 0] == 0 for m in mattes])
    assert np.abs(dream - source).max(-1)[black].max() <= 1
    short = write_clip(tmp_path / "short.mp4", mattes[:4], lossless=True)
    r = cli("video", pan, "-o", tmp_path / "x.mp4", "--mask", short)
    assert_one_line_error(r, "has 4 frames but the render needs 9")


def test_zoom_mask_stays_fixed_and_keeps_the_moving_picture(tmp_path):
    Image.fromarray(photo("coffee", 96)).save(tmp_path / "start.png")
    yy, xx = np.mgrid[:96, :96]
    r2 = (yy - 48) ** 2 + (xx - 48) ** 2
    Image.fromarray(((r2 < 30**2) * 255).astype(np.uint8)).save(tmp_path / "circle.png")

    def zoom(name: str, steps: int = 4, **dream) -> np.ndarray:
        data = {k: dict(v) for k, v in FAST.items()}
        data["dream"].update(dream)
        data["zoom"] = {"seconds": 0.5, "fps": 12, "width": 96, "height": 96, "zoom": 2.0}
        data["zoom"]["iterations"] = steps
        render_zoom(Config.from_dict(data), tmp_path / "start.png", tmp_path / name)
        return frames_of(tmp_path / name)[-1]

    masked = zoom("m.mp4", mask=str(tmp_path / "circle.png"))
    plain, still = zoom("p.mp4"), zoom("s.mp4", iterations=0, step=0.01)
    outside, inside = r2 > 36**2, r2 < 24**2
    # outside the circle: the start picture zoomed, undreamed; inside: dreamed as without it
    off = np.abs(masked - still).mean(-1)
    assert off[outside].mean() < 0.25 * np.abs(plain - still).mean(-1)[outside].mean()
    assert off[inside].mean() > 0.5 * np.abs(plain - still).mean(-1)[inside].mean()


def test_regional_objective_grows_each_layer_in_its_own_region(tmp_path):
    rgb = photo("astronaut", 128)
    h, w = rgb.shape[:2]
    left = np.zeros((h, w), np.uint8)
    left[:, : w // 2] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    cfg = fast(
        layers="region(left, blocks.4) + region(right, blocks.9)",
        regions=f"left={tmp_path / 'left.png'}; right={tmp_path / 'right.png'}",
        iterations=8,
    )
    out = render_image(cfg, rgb).image
    from dreamvideo.engine.device import to_tensor
    from dreamvideo.engine.models import load_backbone

    net = load_backbone()
    with torch.no_grad():
        before = net(to_tensor(rgb, torch.device("cpu")), ["blocks.4", "blocks.9"])
        after = net(to_tensor(out, torch.device("cpu")), ["blocks.4", "blocks.9"])

    def gain(layer: str, half: str) -> float:
        a, b = after[layer].square().mean(1)[0], before[layer].square().mean(1)[0]
        cut = a.shape[1] // 2
        sl = slice(None, cut) if half == "left" else slice(cut, None)
        return float(a[:, sl].mean() / b[:, sl].mean())

    assert gain("blocks.4", "left") > gain("blocks.4", "right")
    assert gain("blocks.9", "right") > gain("blocks.9", "left")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--mask", "alpha"), "has no alpha channel"),
        (("--mask", "missing.png"), "no such file"),
        (("--mask", "luma:0.9-0.1"), "0 <= LOW < HIGH <= 1"),
        (("--mask", "key:#0000ff/5"), "black everywhere in the first frame"),
        (("--layers", "region(sky, blocks.4)"), "no such region was given"),
    ],
)
def test_bad_masks_are_one_line(pan, tmp_path, args, message):
    assert_one_line_error(cli("video", pan, "-o", tmp_path / "x.mp4", *args), message)


def test_a_matte_of_another_shape_is_one_line(tmp_path, cat_png):
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(tmp_path / "square.png")
    r = cli("image", cat_png, "-o", tmp_path / "o.png", "--mask", tmp_path / "square.png")
    assert_one_line_error(r, "is 50x50 but the frames are")


def test_regions_are_cut_with_the_tiles(lite0):
    from dreamvideo.engine.ascent import gradient
    from dreamvideo.engine.device import to_tensor
    from dreamvideo.engine.objectives import parse_objective

    x = to_tensor(photo("astronaut", 352), torch.device("cpu"))  # over 64 + 2 halos of 96
    net = lite0.truncated(frozenset({"blocks.4", "blocks.9"}))
    obj = parse_objective("region(a, blocks.4) + region(b, blocks.9)", regions=["a", "b"])
    left = torch.zeros(1, 1, *x.shape[-2:])
    left[..., : x.shape[-1] // 2] = 1.0
    regions = {"a": left, "b": 1.0 - left}
    whole, v_whole = gradient(net, obj, x, regions=regions)
    gen = torch.Generator().manual_seed(1)
    tiled, v_tiled = gradient(net, obj, x, tile=64, generator=gen, regions=regions)
    assert torch.isclose(v_whole, v_tiled, rtol=1e-3)
    assert (whole - tiled).abs().mean() < 0.05 * whole.abs().mean()
    # the region term's gradient lives in its region: blocks.4 pulls on the left half only
    only_a, _ = gradient(net, parse_objective("region(a, blocks.4)", regions=["a"]), x,
                         regions=regions)  # fmt: skip
    w = x.shape[-1]
    assert only_a[..., 3 * w // 4 :].abs().mean() < 0.05 * only_a[..., : w // 4].abs().mean()


def test_a_pictures_own_alpha_is_its_mask(tmp_path):
    rgb = photo("chelsea", 96)
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, 48:] = 255
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "cut.png")
    out = render_image(fast(mask="alpha"), tmp_path / "cut.png").image.astype(int)
    assert np.array_equal(out[:, :48], rgb[:, :48])
    assert np.abs(out[:, 56:] - rgb[:, 56:]).mean() > 1
    Image.fromarray(rgb).save(tmp_path / "opaque.jpg")
    with pytest.raises(UserError, match="has no alpha channel"):
        render_image(fast(mask="alpha"), tmp_path / "opaque.jpg")


def test_a_looping_matte_clip_starts_again_at_its_end(tmp_path):
    from dreamvideo.media.mattes import Mattes

    levels = (0, 120, 255)  # one grey per frame, so each frame of the matte is told apart
    mattes = [np.full((32, 48, 3), v, np.uint8) for v in levels]
    matte = write_clip(tmp_path / "loop.mp4", mattes, lossless=True)
    m = Mattes(matte, None, (48, 32), loop=True)
    rgb = np.zeros((32, 48, 3), np.uint8)
    seen = [round(float(m.at(k, rgb, None)["mask"].mean()) * 255) for k in (0, 1, 2, 3, 4, 7, 2)]
    assert seen == [0, 120, 255, 0, 120, 120, 255]
    with pytest.raises(UserError, match="ends before source frame 3"):
        Mattes(matte, None, (48, 32)).at(3, rgb, None)


def test_a_clips_mask_keeps_the_source_where_black_with_octaves_and_jitter(tmp_path):
    """Two octaves on 224 px frames with 8 px of jitter: the coarser octave's change, scaled
    up, and the jitter reach over the matte's edge; only the composite through the matte
    keeps the black half exactly the source, frame after frame."""
    clip = write_clip(tmp_path / "wide.mp4", pan_frames(6, (224, 150)), lossless=True)
    matte = np.zeros((150, 224), np.uint8)
    matte[:, 112:] = 255
    Image.fromarray(matte).save(tmp_path / "half.png")
    out = tmp_path / "o.mp4"
    cfg = fast(octaves=2, jitter=8, mask=str(tmp_path / "half.png"))
    render_video(cfg.override("video", next_octaves=2), clip, out)  # touch-ups of 2 octaves
    source, dream = frames_of(clip), frames_of(out)
    assert np.abs(dream - source)[:, :, :112].max() <= 1
    assert np.abs(dream - source)[:, :, 120:].mean() > 2  # dreamed where white


def test_mask_invert_on_the_command_line_dreams_the_black_part(tmp_path):
    rgb = photo("chelsea", 128)
    h, w = rgb.shape[:2]
    Image.fromarray(rgb).save(tmp_path / "cat.png")
    matte = np.zeros((h, w), np.uint8)
    matte[:, w // 2 :] = 255
    Image.fromarray(matte).save(tmp_path / "m.png")
    out = tmp_path / "o.png"
    r = cli("image", tmp_path / "cat.png", "-o", out, "--mask", tmp_path / "m.png",
            "--mask-invert", "--octaves", "1", "--iterations", "4",
            "--set", "dream.layers=blocks.4")  # fmt: skip
    assert r.code == 0, r.output
    got = np.asarray(Image.open(out)).astype(int)
    assert np.array_equal(got[:, w // 2 :], rgb[:, w // 2 :])  # white: kept, inverted
    assert np.abs(got[:, : w // 2 - 8] - rgb[:, : w // 2 - 8]).mean() > 2  # black: dreamed


def test_a_region_stays_on_its_pixels_through_the_octaves_and_the_jitter(lite0):
    """A 16 px stripe as the region of region(a, blocks.3), dreamed (not one gradient) with
    two octaves a factor 2 apart and 32 px of jitter: the matte must be resized with each
    octave and rolled with the picture, or the dream wanders off the stripe (measured: 0.85
    of the change within 12 px of it and nothing far from it; 0.39 with the matte not
    rolled, 0.68 with it not resized)."""
    from dreamvideo.engine.ascent import AscentParams, dream
    from dreamvideo.engine.device import to_tensor
    from dreamvideo.engine.objectives import parse_objective

    channels = {i.name: i.channels for i in lite0.layer_table()}
    objective = parse_objective("region(a, blocks.3)", channels, None, ("a",))
    img = to_tensor(photo("astronaut", 224)[:224], torch.device("cpu"))
    stripe = torch.zeros(1, 1, 224, 224)
    stripe[..., 104:120] = 1
    params = AscentParams(octaves=2, octave_scale=2.0, iterations=10, step=3.0, jitter=32,
                          normalize="mean", tile=0)  # fmt: skip
    out = dream(img, lite0.truncated(objective.layers), objective, params,
                torch.Generator().manual_seed(0), regions={"a": stripe})  # fmt: skip
    change = (out - img).abs().mean(dim=(0, 1)).mean(dim=0).numpy()
    assert change[92:132].sum() / change.sum() > 0.78
    assert np.r_[change[:64], change[160:]].mean() < 5e-4


def test_a_luma_key_weighs_green_most_as_bt709_does():
    """Pure red, green and blue at full level have BT.709 lumas 0.2126, 0.7152 and 0.0722
    (the standard's weights, written here): a key of 0.5-1 takes green only, 0.1-0.3 red
    only, 0-0.1 blue and black."""
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0]]], np.uint8)
    assert luma_key(rgb, 0.5, 1.0)[0].round(3).tolist() == [0.0, 1.0, 0.0, 0.0]
    assert luma_key(rgb, 0.1, 0.3)[0].round(3).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert luma_key(rgb, 0.0, 0.1)[0].round(3).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_a_masked_clip_keeps_its_strength_inside_a_matte_that_grows(tmp_path):
    """A matte clip whose white part grows from a quarter of the frame to all of it: the
    dream's strength is measured inside the matte, so it stays that of the first frame
    there; measured over the whole frame it would fall as the area grows."""
    frames = pan_frames(12, (128, 96))
    mattes = []
    for k in range(12):
        m = np.zeros((96, 128, 3), np.uint8)
        m[:, : 32 + round(96 * k / 11)] = 255
        mattes.append(m)
    clip = write_clip(tmp_path / "pan.mp4", frames, lossless=True)
    matte = write_clip(tmp_path / "grow.mp4", mattes, lossless=True)
    out = tmp_path / "o.mp4"
    render_video(fast(mask=matte), clip, out)
    source, dream = frames_of(clip), frames_of(out)
    inside = [np.abs(dream[k] - source[k])[:, : 32 + round(96 * k / 11) - 4].mean()
              for k in range(12)]  # fmt: skip
    assert min(inside[6:]) > 0.6 * inside[0], inside
