"""VGG16 loss network and the Gatys optimisation baseline, with the real weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fst.gatys import optimize
from fst.losses import LossWeights, style_grams, style_loss
from fst.vgg import LAYER_NAMES, describe, load_vgg16, weights_path


def _image(path, size):
    image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255


def test_prepared_weights_record_their_source_and_load_strictly():
    vgg = load_vgg16()
    meta = describe(weights_path())
    assert meta["source"] and meta["normalisation"] in ("caffe", "torchvision")
    feats = vgg(torch.rand(1, 3, 32, 32), list(LAYER_NAMES))
    assert feats["relu4_3"].shape == (1, 512, 4, 4)
    assert all(not p.requires_grad for p in vgg.parameters())


def test_vgg_features_see_colour_order(data_dir):
    """conv1_1 was converted BGR -> RGB: swapping R and B must change the features."""
    vgg = load_vgg16()
    x = _image(data_dir / "styles" / "starry_night.jpg", 64)
    a = vgg(x, ["relu1_2"])["relu1_2"]
    b = vgg(x[:, [2, 1, 0]], ["relu1_2"])["relu1_2"]
    assert (a - b).abs().mean() > 0.05 * a.abs().mean()


@pytest.mark.slow
def test_gatys_lowers_the_style_loss_by_a_large_factor(data_dir):
    torch.manual_seed(0)
    vgg = load_vgg16()
    content = _image(data_dir / "photos" / "bsds500" / "val" / "101085.jpg", 64)
    style = _image(data_dir / "styles" / "the_scream.jpg", 64)
    weights = LossWeights()
    result = optimize(content, style, steps=40, weights=weights, vgg=vgg)
    grams = style_grams(vgg, style, weights.style_layers)
    before = float(style_loss(vgg(content, weights.style_layers), grams, weights.style_layers))
    after = float(style_loss(vgg(result.image, weights.style_layers), grams, weights.style_layers))
    assert after < before / 5, (before, after)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.image.shape == content.shape and 0 <= result.image.min() and result.image.max() <= 1
