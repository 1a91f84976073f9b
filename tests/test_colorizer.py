"""The Iizuka et al. colorizer: shapes, global branch, BN folding, I/O contract, config."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from fst.color import rgb_to_gray_l, rgb_to_gray_l_np
from fst.colorizer import (AB_RANGE, GLOBAL_INPUT_SIZE, Colorizer, ColorizerConfig, ColorizerNet, config_for_arch,
                           denormalize_ab, normalize_ab)
from fst.errors import ConfigError, ModelLoadError

TINY = dict(width=0.1, num_classes=5)


@pytest.fixture(scope="module")
def tiny() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(**TINY).eval()


def _saturated(model: Colorizer) -> Colorizer:
    """Push the output towards a* = b* = +AB_RANGE so many colours leave the sRGB gamut."""
    with torch.no_grad():
        model.net.colorization.output.bias.fill_(4.0)
    return model


@pytest.mark.parametrize("size", [(37, 301), (300, 37), (1, 1), (8, 8), (224, 224)])
def test_output_shapes_any_size(tiny, size):
    with torch.inference_mode():
        ab, logits = tiny.net(torch.rand(2, 1, *size))
    assert ab.shape == (2, 2, *size)
    assert logits.shape == (2, 5)
    assert 0.0 <= ab.min() and ab.max() <= 1.0


@pytest.mark.slow
def test_global_branch_always_sees_224(tiny):
    seen: list[tuple[int, ...]] = []
    handle = tiny.net.low_level.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    try:
        with torch.inference_mode():
            tiny.net(torch.rand(1, 1, 37, 301))
            assert seen == [(1, 1, 40, 304), (1, 1, GLOBAL_INPUT_SIZE, GLOBAL_INPUT_SIZE)]
            seen.clear()
            tiny.net(torch.rand(1, 1, 224, 224))  # the training size: one shared low-level pass
            assert seen == [(1, 1, 224, 224)]
    finally:
        handle.remove()


def test_no_classifier_when_num_classes_is_zero():
    net = ColorizerNet(ColorizerConfig(width=0.1, num_classes=0)).eval()
    _, logits = net(torch.rand(1, 1, 16, 16))
    assert logits is None and net.classifier is None


@pytest.mark.slow
def test_batchnorm_folding_preserves_outputs():
    torch.manual_seed(1)
    net = ColorizerNet(ColorizerConfig(**TINY))
    for module in net.modules():  # non-trivial statistics, as after training
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    net.eval()
    x = torch.rand(2, 1, 37, 45)
    with torch.inference_mode():
        ab, logits = net(x)
        net.fold_batchnorm()
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
        folded_ab, folded_logits = net(x)
    torch.testing.assert_close(folded_ab, ab, atol=1e-5, rtol=0)
    torch.testing.assert_close(folded_logits, logits, atol=1e-5, rtol=1e-5)


def test_folded_model_refuses_to_save(tmp_path):
    model = Colorizer(**TINY).fold_batchnorm()
    with pytest.raises(RuntimeError, match="folded"):
        model.save_pretrained(tmp_path)


def test_width_multiplier_changes_parameter_count():
    counts = [sum(p.numel() for p in ColorizerNet(ColorizerConfig(width=w, num_classes=10)).parameters())
              for w in (0.1, 0.25)]
    assert counts[0] < counts[1]
    with torch.device("meta"):
        paper = ColorizerNet(ColorizerConfig(width=1.0, num_classes=1000))
    assert sum(p.numel() for p in paper.parameters()) == 42_564_906
    assert paper.low_level[0].conv.out_channels == 64 and paper.mid_level[1].conv.out_channels == 256
    assert config_for_arch("iizuka-slim").width == 0.25


def test_an_arch_name_builds_that_variant_and_refuses_a_contradicting_width():
    assert ColorizerConfig(arch="iizuka-slim", num_classes=0).width == 0.25
    assert ColorizerConfig.from_dict({"arch": "iizuka-slim", "width": 0.25}).width == 0.25
    assert ColorizerConfig(num_classes=0).width == 1.0 and ColorizerConfig(width=0.1).arch is None
    with pytest.raises(ConfigError, match=r"width=1.0 \(iizuka-slim has 0.25\); drop these fields"):
        ColorizerConfig(arch="iizuka-slim", width=1.0)
    with pytest.raises(ConfigError, match="unknown architecture 'iizuka-tiny'; choose one of iizuka, iizuka-slim"):
        ColorizerConfig(arch="iizuka-tiny")


def test_normalisation_round_trip():
    ab = torch.tensor([-AB_RANGE, 0.0, AB_RANGE])
    torch.testing.assert_close(normalize_ab(ab), torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(denormalize_ab(normalize_ab(ab)), ab)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(width=0.01), r"width=0.01 is out of range \(0.05..2.0\)"),
        (dict(width="wide"), "width must be a number"),
        (dict(width=float("nan")), "width=nan is out of range"),
        (dict(num_classes=-1), r"num_classes=-1 is out of range \(0..10000\)"),
        (dict(num_classes=2.5), "num_classes must be a positive integer"),
        (dict(max_side=16), r"max_side=16 is out of range \(64..4096\)"),
        (dict(training=[1, 2]), "training must be a JSON object"),
        (dict(model_type="transformer_net"), "model_type must be one of iizuka_colorizer"),
    ],
)
def test_config_validation_errors_are_clear(fields, message):
    with pytest.raises(ConfigError, match=message):
        ColorizerConfig(**fields)


def test_config_json_round_trip_ignores_unknown_keys(caplog):
    config = ColorizerConfig(width=1, num_classes=3, dataset="imagenet_sample", training={"steps": 5})
    assert config.width == 1.0 and isinstance(config.width, float)
    with caplog.at_level(logging.WARNING):
        again = ColorizerConfig.from_dict({**config.to_dict(), "dropout": 0.5})
    assert again == config
    assert "dropout" in caplog.text
    with pytest.raises(ConfigError, match="this class loads 'iizuka_colorizer'"):
        ColorizerConfig.from_dict({"model_type": "transformer_net"})


@pytest.mark.slow
def test_save_and_load_round_trip(tmp_path, tiny):
    tiny.save_pretrained(tmp_path / "model")
    loaded = Colorizer.from_pretrained(tmp_path / "model", device="cpu")
    assert loaded.config == tiny.config and not loaded.training
    image = torch.rand(3, 20, 30)
    torch.testing.assert_close(loaded.colorize(image), tiny.colorize(image))
    with pytest.raises(ModelLoadError, match="width=0.2 in config.json"):
        (tmp_path / "model" / "config.json").write_text('{"model_type": "iizuka_colorizer", "width": 0.2, '
                                                        '"num_classes": 5}')
        Colorizer.from_pretrained(tmp_path / "model")


@pytest.mark.slow
def test_same_kind_out_at_original_size(tiny):
    rgb = np.random.default_rng(0).integers(0, 256, size=(21, 34, 3), dtype=np.uint8)
    out_array = tiny(rgb)
    assert isinstance(out_array, np.ndarray) and out_array.shape == (21, 34, 3) and out_array.dtype == np.uint8
    out_gray = tiny(rgb[..., 0])
    assert isinstance(out_gray, np.ndarray) and out_gray.shape == (21, 34, 3)
    out_pil = tiny(Image.fromarray(rgb))
    assert isinstance(out_pil, Image.Image) and out_pil.size == (34, 21) and out_pil.mode == "RGB"
    out_tensor = tiny(torch.rand(3, 21, 34))
    assert isinstance(out_tensor, torch.Tensor) and out_tensor.shape == (3, 21, 34)
    assert tiny(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5, 6)
    gray = tiny(torch.rand(1, 1, 16, 16))   # a 1-channel tensor is a gray photo: colorized, 3 channels out
    assert isinstance(gray, torch.Tensor) and gray.shape == (1, 3, 16, 16)
    assert tiny(torch.rand(1, 16, 16, dtype=torch.float64)).dtype == torch.float64
    ab, _ = tiny.forward(torch.rand(2, 1, 16, 16))   # the network itself, on a batch of normalised L
    assert ab.shape == (2, 2, 16, 16)


@pytest.mark.slow
def test_output_lightness_is_the_input_lightness():
    model = _saturated(Colorizer(**TINY).eval())
    rgb = np.random.default_rng(2).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    out = model(rgb)
    assert rgb_to_gray_l_np(out).std() > 0  # sanity: not all black/white
    assert np.abs(rgb_to_gray_l_np(out) - rgb_to_gray_l_np(rgb)).max() < 0.5  # uint8 quantisation
    assert np.abs(out.astype(int) - rgb.astype(int)).max() > 20  # colours were re-predicted
    image = torch.rand(3, 40, 50, dtype=torch.float64)
    out_tensor = model(image)
    assert out_tensor.dtype == torch.float64
    torch.testing.assert_close(rgb_to_gray_l(out_tensor), rgb_to_gray_l(image), atol=1e-3, rtol=0)


@pytest.mark.slow
def test_large_inputs_are_predicted_at_max_side(tiny):
    seen: list[tuple[int, ...]] = []
    handle = tiny.net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    try:
        out = tiny.colorize(torch.rand(3, 200, 100), max_side=64)
        default = tiny.colorize(torch.rand(3, 30, 20))
    finally:
        handle.remove()
    assert out.shape == (3, 200, 100) and default.shape == (3, 30, 20)
    assert seen == [(1, 1, 64, 32), (1, 1, 30, 20)]
    with pytest.raises(ValueError, match="max_side"):
        tiny.colorize(torch.rand(3, 8, 8), max_side=0)


@pytest.mark.slow
def test_concurrent_calls_give_the_sequential_result(tiny):
    images = [torch.rand(3, 24, 24) for _ in range(4)]
    expected = [tiny(image) for image in images]
    results: list = [None] * 4

    def work(index: int) -> None:
        results[index] = tiny(images[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected):
        torch.testing.assert_close(got, want)


def test_training_mode_model_is_switched_to_eval_for_inference():
    model = Colorizer(**TINY)
    assert model.training
    model.colorize(torch.rand(3, 8, 8))
    assert not model.training
