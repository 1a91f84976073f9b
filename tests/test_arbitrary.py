"""Any painting as the style: the WCT maths, the model class, its files, bad style images, CLI."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from fst import ArbitraryStyle, ConfigError, InvalidImageError, ModelLoadError
from fst.arbitrary import ArbitraryConfig
from fst.cli import main as cli_main
from fst.wct import FeatureStats, mean_and_covariance, wct_map

TINY = dict(levels=["relu2_1", "relu1_1"], decoder_width=0.125)


@pytest.fixture(scope="module")
def tiny() -> ArbitraryStyle:
    torch.manual_seed(0)
    return ArbitraryStyle(**TINY).eval()


@pytest.fixture(scope="module")
def painting() -> Image.Image:
    rng = np.random.default_rng(1)
    stripes = np.zeros((96, 80, 3), np.uint8)
    stripes[::4] = (230, 180, 40)
    stripes[1::4] = (20, 40, 160)
    return Image.fromarray(np.clip(stripes + rng.integers(0, 30, stripes.shape), 0, 255).astype(np.uint8))


def photo(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], -1).astype(np.uint8)


# ---------------------------------------------------------------------------- maths
def test_wct_gives_the_style_statistics():
    torch.manual_seed(0)
    content = torch.randn(1, 6, 20, 20) * torch.arange(1, 7).view(1, 6, 1, 1)
    style = torch.randn(1, 6, 30, 30) @ torch.randn(30, 30) + 3.0
    target_mean, target_cov = mean_and_covariance(style)
    out = wct_map(content, FeatureStats.of(style))(content)
    mean, cov = mean_and_covariance(out)
    assert torch.allclose(mean, target_mean, atol=1e-3)
    assert torch.allclose(cov, target_cov, rtol=1e-3, atol=1e-3)


def test_wct_strength_zero_is_the_identity_and_half_is_between():
    torch.manual_seed(0)
    content, style = torch.randn(1, 4, 10, 10), torch.randn(1, 4, 12, 12) * 5 + 2
    stats = FeatureStats.of(style)
    assert torch.allclose(wct_map(content, stats, 0.0)(content), content, atol=1e-5)
    full, half = wct_map(content, stats, 1.0)(content), wct_map(content, stats, 0.5)(content)
    assert torch.allclose(half, (full + content) / 2, atol=1e-4)


def test_flat_style_gives_its_colour_without_nan():
    content = torch.randn(1, 3, 8, 8)
    flat = torch.full((1, 3, 8, 8), 0.25)
    out = wct_map(content, FeatureStats.of(flat))(content)
    assert torch.isfinite(out).all() and torch.allclose(out, torch.full_like(out, 0.25), atol=1e-4)


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize("fields, message", [
    (dict(levels=["relu1_1", "relu2_1"]), "coarse to fine"),
    (dict(levels=["relu5_1"]), "levels"),
    (dict(levels=[]), "levels"),
    (dict(arch="wct", decoder_width=0.25), "contradict"),
    (dict(levels=["relu1_1"], decoder_width=3.0), "decoder_width"),
    (dict(style_size=10), "style_size"),
    (dict(arch="adain"), "unknown architecture"),
])
def test_bad_configs_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        ArbitraryConfig(**fields)


def test_the_named_variant_builds_its_structure():
    config = ArbitraryConfig(arch="wct")
    assert config.levels == ["relu4_1", "relu3_1", "relu2_1", "relu1_1"] and config.decoder_width == 0.5


# ---------------------------------------------------------------------------- the model
@pytest.mark.slow
@pytest.mark.parametrize("size", [(48, 64), (37, 53), (1, 1), (5, 300)])
def test_stylize_keeps_size_and_kind(tiny, painting, size):
    image = photo(*size)
    out = tiny(image, style=painting)
    assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == np.uint8
    pil = tiny(Image.fromarray(image), style=painting)
    assert isinstance(pil, Image.Image) and pil.size == (size[1], size[0])
    tensor = tiny(torch.from_numpy(image).permute(2, 0, 1).float() / 255, style=painting)
    assert tensor.shape == (3, *size) and tensor.dtype == torch.float32


@pytest.mark.slow
def test_strength_zero_returns_the_photo_and_options_work(tiny, painting):
    image = photo()
    assert np.array_equal(tiny(image, style=painting, strength=0.0), image)
    small = tiny(image, style=painting, max_side=32)
    assert max(small.shape[:2]) == 32
    assert tiny(image, style=painting, style_scale=2.0, preserve_color=True).shape == image.shape


@pytest.mark.slow
def test_changing_the_painting_changes_the_result(tiny, painting):
    image = photo()
    other = Image.fromarray(np.full((64, 64, 3), (200, 30, 30), np.uint8))
    assert not np.array_equal(tiny(image, style=painting), tiny(image, style=other))


@pytest.mark.slow
def test_style_statistics_are_cached(tiny, painting):
    first = tiny.style_statistics(painting)
    assert tiny.style_statistics(painting.copy()) is first            # same pixels: one computation
    assert tiny.style_statistics(first) is first
    assert tiny.style_statistics(painting, style_size=128) is not first
    out_a = tiny(photo(), style=first)
    out_b = tiny(photo(), style=painting)
    assert np.array_equal(out_a, out_b)


@pytest.mark.slow
def test_tiles_share_the_whole_photos_transforms(painting, data_dir):
    model = ArbitraryStyle.from_pretrained("arbitrary")   # trained decoders: a well-conditioned network
    image = np.asarray(Image.open(sorted((data_dir / "photos" / "bsds500" / "val").glob("*.jpg"))[0]))[:200, :264]
    whole = model(image, style=painting).astype(np.int16)
    tiled = model(image, style=painting, tile=96).astype(np.int16)
    assert np.abs(whole - tiled).max() <= 3


@pytest.mark.slow
def test_fewer_levels_run_only_the_finest(tiny, painting):
    image = photo()
    assert np.array_equal(tiny(image, style=painting, levels=2), tiny(image, style=painting))
    assert not np.array_equal(tiny(image, style=painting, levels=1), tiny(image, style=painting))
    for bad in (0, 3, 1.5, True):
        with pytest.raises(ValueError, match="levels must be a whole number from 1 to 2"):
            tiny(image, style=painting, levels=bad)


@pytest.mark.parametrize("value, option", [(-0.1, "strength"), (float("nan"), "strength"), (0, "style_scale")])
def test_bad_options_are_clear_errors(tiny, painting, value, option):
    with pytest.raises(ValueError, match=option):
        tiny(photo(), style=painting, **{option: value})


# ---------------------------------------------------------------------------- bad style images
@pytest.mark.parametrize("name", ["truncated.jpg", "zero_byte.jpg", "text_renamed.jpg", "script.svg",
                                  "decompression_bomb_40000x40000.png"])
def test_bad_style_images_get_the_photo_errors(tiny, bad_inputs, name):
    with pytest.raises(InvalidImageError):
        tiny(photo(), style=bad_inputs / "images" / name)


def test_a_style_too_small_to_hold_a_style_is_refused(tiny, bad_inputs):
    with pytest.raises(InvalidImageError, match="too small"):
        tiny(photo(), style=bad_inputs / "images" / "pixel_1x1.png")


@pytest.mark.parametrize("name", ["animated.gif", "rgba_transparent_hidden_green.png", "gray_L.jpg", "gray16.png",
                                  "cmyk.jpg", "palette_P_transparency.png"])
@pytest.mark.slow
def test_unusual_but_valid_style_images_work(tiny, bad_inputs, name):
    assert tiny(photo(), style=bad_inputs / "images" / name).shape == (48, 64, 3)


# ---------------------------------------------------------------------------- files
@pytest.mark.slow
def test_save_and_load_round_trip(tiny, painting, tmp_path):
    tiny.save_pretrained(tmp_path / "m")
    loaded = ArbitraryStyle.from_pretrained(tmp_path / "m")
    assert np.array_equal(loaded(photo(), style=painting), tiny(photo(), style=painting))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "fst_arbitrary"


def test_weights_of_another_structure_are_named(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["levels"] = ["relu3_1", "relu2_1", "relu1_1"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="levels"):
        ArbitraryStyle.from_pretrained(tmp_path / "m")


def test_a_style_network_folder_is_not_an_arbitrary_one(tmp_path):
    from fst import FastStyle

    FastStyle(arch="johnson-rt").save_pretrained(tmp_path / "style")
    with pytest.raises(ConfigError, match="model_type"):
        ArbitraryStyle.from_pretrained(tmp_path / "style")


# ---------------------------------------------------------------------------- command line
@pytest.mark.slow
def test_cli_stylizes_with_a_painting(tiny, painting, tmp_path, capsys):
    tiny.save_pretrained(tmp_path / "m")
    Image.fromarray(photo()).save(tmp_path / "photo.png")
    painting.save(tmp_path / "painting.png")
    code = cli_main(["stylize", str(tmp_path / "photo.png"), "--style-image", str(tmp_path / "painting.png"),
                     "--model", str(tmp_path / "m"), "--strength", "0.8", "--max-side", "32",
                     "-o", str(tmp_path / "out.png")])
    assert code == 0
    assert max(Image.open(tmp_path / "out.png").size) == 32


@pytest.mark.parametrize("extra, message", [
    ([], "--model"),
    (["--style-image", "missing.png"], "--style-image"),
    (["--style-image", "STYLE", "--style", "the_scream"], "--style"),
    (["--style-image", "STYLE", "--detail", "0.5"], "--detail"),
])
def test_cli_usage_errors(tmp_path, painting, capsys, extra, message):
    Image.fromarray(photo()).save(tmp_path / "photo.png")
    painting.save(tmp_path / "painting.png")
    extra = [str(tmp_path / "painting.png") if arg == "STYLE" else arg for arg in extra]
    code = cli_main(["stylize", str(tmp_path / "photo.png"), *extra, "-o", str(tmp_path / "out.png")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_cli_reports_a_corrupt_painting(tmp_path, capsys):
    Image.fromarray(photo()).save(tmp_path / "photo.png")
    (tmp_path / "painting.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code = cli_main(["stylize", str(tmp_path / "photo.png"), "--style-image", str(tmp_path / "painting.jpg"),
                     "-o", str(tmp_path / "out.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--style-image" in err and "Traceback" not in err


@pytest.mark.slow
def test_bytes_and_paths_are_accepted_as_styles(tiny, painting, tmp_path):
    buffer = io.BytesIO()
    painting.save(buffer, format="PNG")
    painting.save(tmp_path / "p.png")
    from_bytes = tiny(photo(), style=buffer.getvalue())
    assert np.array_equal(from_bytes, tiny(photo(), style=tmp_path / "p.png"))
