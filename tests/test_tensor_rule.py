"""One rule for tensors and arrays, for FastStyle and Colorizer alike: values checked, the dtype,
layout and device given back, gray inputs accepted, and one meaning of ``model(x)``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fst import FastStyle, InvalidImageError
from fst.colorizer import Colorizer


@pytest.fixture(scope="module", params=["FastStyle", "Colorizer"])
def model(request):
    torch.manual_seed(0)
    if request.param == "FastStyle":
        return FastStyle(channels=4, num_res_blocks=1).eval()
    return Colorizer(width=0.05, num_classes=0, max_side=64).eval()


@pytest.mark.parametrize("image", [torch.rand(3, 12, 10) * 255, torch.rand(1, 3, 12, 10) - 0.5,
                                   np.random.default_rng(0).random((12, 10, 3)) * 255])
def test_float_values_outside_the_unit_interval_are_an_error(model, image):
    with pytest.raises(InvalidImageError, match=r"float image values must lie in \[0, 1\], this (tensor|array) "
                                                r"spans \[-?[\d.]+, [\d.]+\]"):
        model(image)


def test_a_small_overshoot_is_tolerated_and_a_255_image_gets_a_hint(model):
    assert model(torch.full((3, 8, 8), 1.005)).shape == (3, 8, 8)
    with pytest.raises(InvalidImageError, match="divide by 255 if it holds 0..255 pixel values"):
        model(torch.full((3, 8, 8), 200.0))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_arrays_come_back_with_their_dtype(model, dtype):
    rng = np.random.default_rng(1)
    image = rng.integers(0, np.iinfo(dtype).max, (12, 10, 3)).astype(dtype) if np.dtype(dtype).kind == "u" \
        else rng.random((12, 10, 3)).astype(dtype)
    out = model(image)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (12, 10, 3)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64])
@pytest.mark.slow
def test_tensors_come_back_with_their_dtype_and_layout(model, dtype):
    image = torch.rand(3, 12, 10).mul(255 if dtype == torch.uint8 else 65535 if dtype == torch.uint16 else 1)
    image = image.to(dtype)
    out = model(image)
    assert out.dtype == dtype and out.shape == (3, 12, 10) and out.device == image.device
    assert model(image[None]).shape == (1, 3, 12, 10)


@pytest.mark.slow
def test_16_bit_precision_is_kept(model):
    """A uint16 input is not reduced to 8 bits on the way: its result differs from the 8-bit one's."""
    image = (np.random.default_rng(2).random((16, 16, 3)) * 65535).astype(np.uint16)
    eight_bit = (image // 257).astype(np.uint8)
    out16, out8 = model(image), model(eight_bit)
    assert out16.dtype == np.uint16 and np.abs(out16.astype(int) // 257 - out8.astype(int)).max() <= 2
    assert (out16 % 257).any()      # values between the 8-bit steps


@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 1)])
def test_gray_arrays_give_colour_results(model, shape):
    out = model(np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8))
    assert out.shape == (12, 10, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("shape", [(1, 12, 10), (1, 1, 12, 10)])
def test_gray_tensors_give_colour_results(model, shape):
    out = model(torch.rand(shape))
    assert out.shape == (*shape[:-3], 3, 12, 10)


@pytest.mark.slow
def test_model_call_is_the_image_api_in_eval_mode_and_the_network_in_training_mode(model):
    image = torch.rand(1, 3, 16, 16)
    assert torch.equal(model(image), model.colorize(image) if isinstance(model, Colorizer) else model.stylize(image))
    with pytest.raises(InvalidImageError, match="a batch of 2 images .* call model.forward"):
        model(torch.rand(2, 3, 16, 16))
    network_input = torch.rand(2, 1, 16, 16) if isinstance(model, Colorizer) else torch.rand(2, 3, 16, 16)
    model.train()
    try:
        raw = model(network_input)
    finally:
        model.eval()
    assert isinstance(raw, tuple) if isinstance(model, Colorizer) else raw.shape == (2, 3, 16, 16)
