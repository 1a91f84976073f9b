"""fst.metrics.periodic_peak: checkerboard / upsampling patterns are measured, photos score ~1."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fst import imageio
from fst.inference import from_uint8_array, resize_max_side
from fst.metrics import periodic_peak


@pytest.fixture(scope="module")
def photo(data_dir) -> torch.Tensor:
    path = sorted((data_dir / "photos" / "bsds500" / "val").glob("*.jpg"))[3]
    return resize_max_side(from_uint8_array(np.asarray(imageio.read_image(path))), 256)


def test_a_photo_has_no_periodic_peak(photo):
    assert float(periodic_peak(photo)) < 3


@pytest.mark.parametrize("period", [2, 4, 8])
def test_a_faint_dot_grid_is_found(photo, period):
    """The pattern of a decoder's 2x/4x/8x upsampling: a dot every ``period`` pixels."""
    patterned = photo.clone()
    patterned[..., ::period, ::period] += 0.1
    assert float(periodic_peak(patterned)) > 20
    if period < 8:
        assert float(periodic_peak(patterned, (period,))) > 20


def test_batches_and_bad_shapes():
    noise = torch.rand(3, 3, 64, 64)
    assert periodic_peak(noise).shape == (3,)
    assert float(periodic_peak(torch.rand(1, 3, 8, 8))) == 1.0        # too small to measure: no peak claimed
    with pytest.raises(ValueError, match="Bx3xHxW"):
        periodic_peak(torch.rand(3, 64, 64))
