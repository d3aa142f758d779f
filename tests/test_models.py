import pytest
import torch
import torch.nn.functional as F
from conftest import photo

from dreamvideo.engine.models import MODELS, load_backbone
from dreamvideo.engine.weights import ModelError, hub_weights_file


def classify(net, rgb):
    """Top-1 ImageNet class of the full EfficientNet-Lite0 (stages + pooled classifier)."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    from dreamvideo.engine.efficientnet import EfficientNetLite0, bundled_weights_path

    clf = EfficientNetLite0().eval()
    clf.load_state_dict(torch.load(bundled_weights_path(), weights_only=True), strict=True)
    with torch.no_grad():
        feats = net(x, ["head"])["head"]
        logits = clf._fc(feats.mean((2, 3)))
    return int(logits.argmax())


def test_bundled_weights_are_real_imagenet_weights(lite0):
    assert 281 <= classify(lite0, photo("chelsea", 224)) <= 285  # a cat
    assert classify(lite0, photo("coffee", 224)) == 967  # espresso


def test_layer_names_are_stable_and_probed(lite0):
    table = {i.name: i for i in lite0.layer_table()}
    assert list(table)[:3] == ["stem", "blocks.0", "blocks.1"]
    assert list(table)[-1] == "head"
    assert (table["blocks.10"].channels, table["blocks.10"].stride) == (112, 16)
    assert (table["blocks.4"].channels, table["blocks.4"].stride) == (40, 8)


def test_truncation_keeps_activations_and_drops_the_tail(lite0):
    x = torch.rand(1, 3, 64, 80)
    cut = lite0.truncated(["blocks.4"])
    assert cut.names[-1] == "blocks.4" and len(cut.names) == 6
    with torch.no_grad():
        torch.testing.assert_close(
            cut(x, ["blocks.4"])["blocks.4"], lite0(x, ["blocks.4"])["blocks.4"]
        )


def test_backbone_is_frozen_and_in_eval_mode(lite0):
    assert not any(p.requires_grad for p in lite0.parameters())
    assert not lite0.training


def test_unknown_layer_lists_valid_names(lite0):
    with pytest.raises(ModelError, match=r"unknown layer 'blocks\.99'.*blocks\.10"):
        lite0.truncated(["blocks.99"])


@pytest.mark.parametrize("name", ["googlenet", "resnet50"])
def test_torchvision_weights_from_a_local_file(tmp_path, name):
    import torchvision.models as tvm

    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    torch.manual_seed(0)
    ref = getattr(tvm, name)(weights=None, **kwargs).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(ref.state_dict(), path)
    net = load_backbone(name, weights=path)
    x = torch.rand(1, 3, 96, 96)
    first = net.names[0]  # googlenet: conv1, resnet50: conv1 + bn1 + relu + maxpool
    stem = (
        ref.conv1
        if name == "googlenet"
        else torch.nn.Sequential(ref.conv1, ref.bn1, ref.relu, ref.maxpool)
    )
    with torch.no_grad():
        want = stem((x - net.mean) / net.std)
        torch.testing.assert_close(net(x, [first])[first], want, rtol=1e-4, atol=1e-4)


def test_missing_torchvision_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError) as e:
        load_backbone("googlenet")
    msg = str(e.value)
    assert hub_weights_file("googlenet").name in msg  # googlenet-1378be20.pth
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "--weights" in msg and "\n" not in msg


def test_wrong_weights_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ModelError, match="do not fit model resnet50"):
        load_backbone("resnet50", weights=bad)
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(ModelError, match="not a PyTorch state dict"):
        load_backbone("resnet50", weights=junk)


def test_every_model_lists_layers_without_weights():
    for name in MODELS:
        net = load_backbone(name, pretrained=False)
        info = net.layer_table(299 if name == "inception_v3" else 128)
        assert len(info) >= 10 and all(i.channels > 0 for i in info)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "googlenet", "resnet50", "inception_v3"])
def test_batchnorm_folding_keeps_every_layer_output(name):
    """Fold BN into convs on a network with non-trivial BN statistics: same activations."""
    from dreamvideo.engine.models import _SPECS, Backbone

    torch.manual_seed(0)
    spec = _SPECS[name]
    net = spec.build()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    plain = Backbone(name, spec.stages(net), spec.mean, spec.std)
    x = torch.rand(1, 3, 97, 83 if name != "inception_v3" else 101)
    with torch.no_grad():
        before = {k: v.clone() for k, v in plain(x, plain.names).items()}
        fused = plain.fuse_batchnorm()
        after = fused(x, fused.names)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=1e-3, atol=1e-3)
