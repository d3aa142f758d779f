import pytest
import torch

from dreamvideo.engine.objectives import (
    Objective,
    ObjectiveError,
    Window,
    channel,
    layer,
    neuron,
    parse_objective,
)

CHANNELS = {"blocks.3": 40, "blocks.8": 112, "blocks.10": 112}


def feats(seed=0, h=6, w=8):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(1, c, h, w, generator=g) for name, c in CHANNELS.items()}


def test_layer_is_mean_squared_activation():
    f = feats()
    assert torch.allclose(layer("blocks.10")(f), f["blocks.10"].square().mean().view(1))


def test_channel_and_neuron_read_what_they_name():
    f = feats()
    assert torch.allclose(channel("blocks.10", [42])(f), f["blocks.10"][:, 42].mean().view(1))
    assert torch.allclose(neuron("blocks.10", 7, 0.0, 1.0)(f), f["blocks.10"][:, 7, 5, 0])


def test_algebra_combines_values_and_layers():
    f = feats()
    a, b = layer("blocks.8"), channel("blocks.3", [1, 2])
    combo = 0.5 * a + b - 2 * a
    assert combo.layers == {"blocks.8", "blocks.3"}
    assert torch.allclose(combo(f), -1.5 * a(f) + b(f))
    assert torch.allclose(Objective.sum([a, b, a])(f), 2 * a(f) + b(f))


@pytest.mark.parametrize(
    "text, name",
    [
        ("blocks.10", "blocks.10"),
        ("blocks.10:42", "blocks.10:42"),
        ("blocks.10:1,5,9", "blocks.10:1,5,9"),
        ("blocks.10:42@0.25,0.75", "blocks.10:42@0.25,0.75"),
        ("0.5*blocks.8 + blocks.10:7", "0.5*blocks.8 + blocks.10:7"),
        ("  blocks.8-0.2*blocks.3 ", "blocks.8 - 0.2*blocks.3"),
    ],
)
def test_parse_round_trips_to_a_readable_name(text, name):
    assert parse_objective(text, CHANNELS).name == name


def test_parsed_weighted_sum_equals_the_algebra():
    f = feats(1)
    parsed = parse_objective("0.5*blocks.8 + blocks.10:7 - 0.2*blocks.3", CHANNELS)
    built = 0.5 * layer("blocks.8") + channel("blocks.10", [7]) - 0.2 * layer("blocks.3")
    assert torch.allclose(parsed(f), built(f))


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "blocks.99",
            r"unknown layer 'blocks\.99'; valid layers: blocks\.3, blocks\.8, blocks\.10",
        ),
        ("blocks.10:112", r"channel 112 out of range for blocks\.10 \(0\.\.111\)"),
        ("blocks.10:1.5", "whole channel number"),
        ("2*", "expected a layer name"),
        ("blocks.8 blocks.10", r"expected \+, - or the end"),
        ("__import__('os')", "unexpected"),
        ("", "empty"),
        ("guide(blocks.10)", "no guide picture"),
        ("blocks.10:1@2,0", "position must be in 0..1"),
    ],
)
def test_bad_objectives_give_one_clear_line(text, message):
    with pytest.raises(ObjectiveError, match=message) as e:
        parse_objective(text, CHANNELS)
    assert "\n" not in str(e.value)


def test_guide_pulls_each_cell_towards_its_best_matching_guide_vector():
    g = torch.randn(112, 5)
    obj = parse_objective("guide(blocks.10)", CHANNELS, guide_features=lambda name: g)
    x = torch.randn(1, 112, 2, 2, requires_grad=True)
    obj({"blocks.10": x}).sum().backward()
    for i in range(2):
        for j in range(2):
            best = int((x[0, :, i, j] @ g).argmax())
            torch.testing.assert_close(x.grad[0, :, i, j] * 112 * 4, g[:, best])


def test_crops_with_windows_add_up_to_the_whole_map():
    f = feats(2, h=6, w=8)
    for obj in [
        layer("blocks.10"),
        channel("blocks.8", [3, 4]),
        neuron("blocks.3", 2, 0.9, 0.1),
        parse_objective("0.3*blocks.10 + blocks.3:5", CHANNELS),
    ]:
        whole = obj(f)
        parts = torch.zeros(1)
        for top, bottom in [(0, 2), (2, 6)]:
            for left, right in [(0, 5), (5, 8)]:
                crop = {k: v[:, :, top:bottom, left:right] for k, v in f.items()}
                wins = {k: Window(top, left, 6, 8) for k in f}
                parts = parts + obj(crop, wins)
        assert torch.allclose(parts, whole, atol=1e-5), obj.name
