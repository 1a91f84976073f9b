"""FastStyle: call API, kinds in/out, strength, colour preservation, tiling, round trips."""
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from fst import FastStyle, ModelLoadError, NonFiniteOutputError, config_for_arch
from fst.color import rgb_to_lab


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FastStyle(config_for_arch("johnson-lite")).eval()


@pytest.mark.slow
def test_same_kind_out_as_in(model):
    array = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    out = model(array)
    assert isinstance(out, np.ndarray) and out.shape == (37, 53, 3) and out.dtype == np.uint8
    pil = model(Image.fromarray(array))
    assert isinstance(pil, Image.Image) and pil.size == (53, 37) and pil.mode == "RGB"
    assert np.array_equal(np.asarray(pil), out)
    tensor = model(torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (3, 37, 53)
    batch = model.stylize(torch.rand(1, 3, 20, 30))
    assert batch.shape == (1, 3, 20, 30)


@pytest.mark.parametrize("size", [(1, 1), (1, 80), (80, 1), (3, 7), (15, 15)])
def test_tiny_and_extreme_sizes_are_processed(model, size):
    out = model.stylize(torch.rand(1, 3, *size))
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all()


def test_non_finite_output_raises_an_fst_error():
    model = FastStyle(channels=4, num_res_blocks=1).eval()
    with torch.no_grad():
        model.net.in1.weight.fill_(float("inf"))   # inf and -inf after the first norm: NaN downstream
    with pytest.raises(NonFiniteOutputError, match=r"non-finite output \(NaN/Inf\): its weights are damaged"):
        model.stylize(torch.rand(1, 3, 24, 24))


def test_strength_zero_returns_the_content_and_strength_blends(model):
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(model.stylize(x, strength=0.0), x)
    full = model.stylize(x)
    half = model.stylize(x, strength=0.5)
    assert torch.allclose(half, 0.5 * x + 0.5 * full, atol=1e-5)


def test_preserve_color_keeps_the_content_ab_channels(model):
    x = torch.rand(1, 3, 48, 48) * 0.6 + 0.2
    out = model.stylize(x, preserve_color=True)
    lab_in, lab_out, lab_styled = rgb_to_lab(x), rgb_to_lab(out), rgb_to_lab(model.stylize(x))
    assert (lab_out[:, 1:] - lab_in[:, 1:]).abs().mean() < 1.0       # content colours kept
    assert (lab_out[:, 0] - lab_styled[:, 0]).abs().mean() < 1.0     # styled lightness taken


def test_max_side_downscales(model):
    out = model.stylize(torch.rand(1, 3, 100, 200), max_side=50)
    assert out.shape == (1, 3, 25, 50)


@pytest.mark.slow
def test_tiled_output_equals_untiled_output(model):
    torch.manual_seed(1)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 20, 24), size=(300, 360), mode="bilinear")
    whole = model.stylize(x)
    tiled = model.stylize(x, tile=128)
    assert (whole - tiled).abs().max() < 2e-3


def test_bad_arguments_are_clear_errors(model):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="strength must be a number in"):
        model.stylize(x, strength=1.5)
    with pytest.raises(ValueError, match="max_side must be an integer"):
        model.stylize(x, max_side=0)
    with pytest.raises(ValueError, match="tile must be an integer"):
        model.stylize(x, tile=3)


def test_concurrent_callers_get_the_same_result(model):
    x = torch.rand(1, 3, 64, 64)
    expected = model.stylize(x)
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(model.stylize(x))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 12
    assert all(torch.equal(r, expected) for r in results)


def test_save_and_load_round_trip_is_bit_identical(model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = FastStyle.from_pretrained(tmp_path / "m")
    x = torch.rand(1, 3, 40, 40)
    assert torch.equal(loaded.stylize(x), model.stylize(x))
    assert loaded.config == model.config


def test_half_precision_storage_stays_within_tolerance(model, tmp_path):
    model.save_pretrained(tmp_path / "h", half_precision=True)
    loaded = FastStyle.from_pretrained(tmp_path / "h")
    x = torch.rand(1, 3, 40, 40)
    assert (loaded.stylize(x) - model.stylize(x)).abs().max() < 2e-2


def test_not_a_folder_nor_repo_id(tmp_path):
    with pytest.raises(ModelLoadError, match="neither a model folder nor a valid Hub repo id"):
        FastStyle.from_pretrained("no such thing!")
    with pytest.raises(ModelLoadError, match="no model folder 'no such/thing/here'"):
        FastStyle.from_pretrained("no such/thing/here")
