"""Perceptual losses: small functions with known values."""
import pytest
import torch

from fst.losses import content_loss, gram_matrix, style_loss, total_variation


def test_gram_matrix_of_known_features():
    feats = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # B=1, C=2, H=1, W=2
    gram = gram_matrix(feats)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / (2 * 1 * 2)
    assert torch.allclose(gram, expected)


def test_content_loss_is_zero_for_identical_features_and_scale_free():
    a = torch.rand(2, 8, 5, 5)
    assert content_loss(a, a) == 0
    b = a + 0.1
    assert torch.allclose(content_loss(b, a), content_loss(10 * b, 10 * a), rtol=1e-5)


def test_style_loss_zero_at_target_and_positive_elsewhere():
    feats = {"l": torch.rand(1, 4, 6, 6)}
    target = {"l": gram_matrix(feats["l"])}
    assert float(style_loss(feats, target, ["l"])) < 1e-10
    other = {"l": torch.rand(1, 4, 6, 6) * 3}
    assert float(style_loss(other, target, ["l"])) > 0.1


def test_total_variation_of_constant_is_zero_and_of_checkerboard_is_two():
    assert total_variation(torch.ones(1, 3, 4, 4)) == 0
    board = (torch.arange(4)[:, None] + torch.arange(4)[None, :]) % 2
    assert torch.isclose(total_variation(board.float().expand(1, 3, 4, 4)), torch.tensor(2.0))


@pytest.mark.slow
def test_perceptual_loss_terms_equal_the_batched_definitions():
    """On CPU the batch goes through VGG one image at a time; the terms must not change."""
    from fst.losses import LossWeights, PerceptualLoss
    from fst.vgg import VGG16Features

    torch.manual_seed(0)
    vgg = VGG16Features(normalisation="caffe")
    criterion = PerceptualLoss(vgg, torch.rand(1, 3, 64, 64), LossWeights(2.0, 5.0, 1.5))
    content, output = torch.rand(3, 3, 40, 48), torch.rand(3, 3, 40, 48)
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    with torch.no_grad():
        terms = criterion(output, content)
        feats, target = vgg(output, layers), vgg(content, ["relu2_2"])["relu2_2"]
        expected = {"content": 2.0 * content_loss(feats["relu2_2"], target),
                    "style": 5.0 * style_loss(feats, criterion.target_grams(), layers),
                    "tv": 1.5 * total_variation(output)}
        single = criterion(output[:1], content[:1])
    for name, value in expected.items():
        assert torch.allclose(getattr(terms, name), value, rtol=1e-5), name
    assert torch.allclose(single.content, 2.0 * content_loss(vgg(output[:1], ["relu2_2"])["relu2_2"],
                                                             vgg(content[:1], ["relu2_2"])["relu2_2"]), rtol=1e-5)
