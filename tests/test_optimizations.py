"""Every kept speed optimisation gives the eager fp32 output within a stated tolerance.

Tolerances (outputs are in [0, 1]):
* sub-pixel upsampling rewrite (exact algebra, float rounding only): 1e-5;
* NNPACK Winograd/FFT convolutions (fp32): 1e-4;
* ONNX Runtime (same graph, different kernels): 1e-4;
* tiled inference keeps its own test (tests/test_faststyle.py, 2e-3).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fst import ARCHITECTURES, FastStyle, TransformerNet, config_for_arch
from fst.transformer import FastPath, fast_inference, norm_stats

SUBPIXEL_TOL = 1e-5
WINOGRAD_TOL = 1e-4
ONNX_TOL = 1e-4


def _randomised(arch: str, seed: int = 0) -> TransformerNet:
    """A network with non-trivial norm affine parameters (the defaults are 1 and 0)."""
    torch.manual_seed(seed)
    net = TransformerNet(config_for_arch(arch)).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net


def _image(height: int, width: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, max(2, height // 8), max(2, width // 8), generator=generator)
    return torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a == "johnson" else a  # the largest
                                  for a in sorted(ARCHITECTURES)])
@pytest.mark.slow
@pytest.mark.parametrize("size", [(64, 64), (37, 53), (96, 130)])
def test_fast_path_matches_eager(arch, size):
    net = _randomised(arch)
    x = _image(*size)
    with torch.inference_mode():
        eager = net(x)
        with fast_inference(FastPath(winograd=False)):
            subpixel = net(x)
        with fast_inference():
            fast = net(x)
    assert subpixel.shape == eager.shape == fast.shape
    assert (subpixel - eager).abs().max() < SUBPIXEL_TOL
    assert (fast - eager).abs().max() < WINOGRAD_TOL


def test_subpixel_upsampling_is_exact_for_a_single_layer():
    torch.manual_seed(3)
    net = _randomised("johnson-lite")
    layer = net.deconv1
    x = torch.randn(2, layer.conv2d.in_channels, 9, 14)
    with torch.inference_mode():
        plain = layer(x)
        with fast_inference(FastPath(winograd=False, inplace=False)):
            rewritten = layer(x)
    assert rewritten.shape == plain.shape == (2, layer.conv2d.out_channels, 18, 28)
    assert (rewritten - plain).abs().max() < 1e-5


def test_fast_path_tracks_weight_updates():
    net = _randomised("johnson-lite")
    x = _image(48, 48)
    with torch.inference_mode(), fast_inference():
        before = net(x)
    with torch.no_grad():
        net.deconv1.conv2d.weight.add_(torch.randn_like(net.deconv1.conv2d.weight))  # rebuild cached kernels
    with torch.inference_mode():
        eager = net(x)
        with fast_inference():
            after = net(x)
    assert (after - before).abs().max() > 1e-3
    assert (after - eager).abs().max() < WINOGRAD_TOL


@pytest.mark.slow
def test_fast_path_keeps_norm_stats_record_and_frozen_modes():
    net = _randomised("johnson")
    x = _image(80, 96)
    store: dict = {}
    with torch.inference_mode():
        with norm_stats("record", store):
            recorded = net(x)
        fast_store: dict = {}
        with fast_inference(), norm_stats("record", fast_store):
            fast_recorded = net(x)
        with fast_inference(), norm_stats("frozen", fast_store):
            frozen = net(x)
    assert store.keys() == fast_store.keys()
    for key, (mean, var) in store.items():
        assert torch.allclose(mean, fast_store[key][0], atol=1e-4)
        assert torch.allclose(var, fast_store[key][1], rtol=1e-3, atol=1e-5)
    assert (fast_recorded - recorded).abs().max() < WINOGRAD_TOL
    assert (frozen - recorded).abs().max() < 1e-3


@pytest.mark.slow
def test_fast_path_with_autograd_matches_plain_gradients():
    net = _randomised("johnson").train()
    x = _image(32, 40).requires_grad_(True)
    grads = {}
    for name, options in (("plain", None), ("fast", FastPath())):
        net.zero_grad()
        x.grad = None
        with fast_inference(options):
            out = net(x)
        (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
        grads[name] = torch.cat([x.grad.flatten(), *(p.grad.flatten() for p in net.parameters())])
    plain, fast = grads["plain"], grads["fast"]
    assert torch.isfinite(fast).all()
    assert (fast - plain).norm() / plain.norm() < 1e-4


@pytest.mark.slow
def test_fused_forward_is_taken_and_matches_unfused(monkeypatch):
    from fst import fused

    calls = []
    real = fused.forward
    monkeypatch.setattr(fused, "forward", lambda net, x: calls.append(x.shape) or real(net, x))
    for arch in sorted(ARCHITECTURES):
        net = _randomised(arch)
        x = torch.cat([_image(44, 70, seed=1), _image(44, 70, seed=2)])  # a batch of two
        with torch.inference_mode():
            with fast_inference(FastPath(fused_norm=False)):
                unfused = net(x)
            with fast_inference():
                fused_out = net(x)
        assert (fused_out - unfused).abs().max() < WINOGRAD_TOL, arch
    assert len(calls) == len(ARCHITECTURES)


@pytest.mark.parametrize("kernel,padding", [(3, 1), (3, 0), (9, 0), (2, 0), (5, 2)])
@pytest.mark.parametrize("batch", [1, 3])
def test_winograd_conv2d_and_its_gradients_match_conv2d(kernel, padding, batch):
    from fst import winograd

    torch.manual_seed(kernel + batch)
    x = torch.randn(batch, 6, 33, 37, requires_grad=True)
    weight = (torch.randn(5, 6, kernel, kernel) / kernel).requires_grad_(True)
    bias = torch.randn(5, requires_grad=True)
    upstream = torch.randn(batch, 5, 33 + 2 * padding - kernel + 1, 37 + 2 * padding - kernel + 1)
    results = []
    for conv in (winograd.conv2d, lambda *a, padding: torch.nn.functional.conv2d(*a, padding=padding)):
        out = conv(x, weight, bias, padding=padding)
        grads = torch.autograd.grad((out * upstream).sum(), (x, weight, bias))
        results.append((out, *grads))
    assert winograd.applies(x, weight)
    for fast, plain in zip(*results):
        assert (fast - plain).abs().max() <= WINOGRAD_TOL * max(1.0, plain.abs().max().item())
    with torch.no_grad():  # inference: no autograd graph, same numbers
        assert (winograd.conv2d(x, weight, None, padding=padding) + bias.view(1, -1, 1, 1)
                - results[1][0]).abs().max() < WINOGRAD_TOL * max(1.0, results[1][0].abs().max().item())


def test_winograd_leaves_small_or_unsupported_convolutions_to_pytorch():
    from fst import winograd

    weight = torch.randn(4, 3, 3, 3)
    assert not winograd.applies(torch.randn(1, 3, 16, 16), weight)          # NNPACK is slower there
    assert not winograd.applies(torch.randn(1, 3, 64, 64).double(), weight.double())
    assert not winograd.applies(torch.randn(1, 3, 64, 64), weight, stride=(2, 2))
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(winograd.conv2d(x, weight, None, padding=1),
                       torch.nn.functional.conv2d(x, weight, None, padding=1))
    big = torch.randn(1, 3, 40, 40)
    assert torch.equal(winograd.conv2d(big, weight, None, padding=3),          # padding >= kernel
                       torch.nn.functional.conv2d(big, weight, None, padding=3))
    # a non-square kernel: NNPACK forward, PyTorch's input gradient
    big.requires_grad_(True)
    wide = torch.randn(4, 3, 3, 5, requires_grad=True)
    fast = torch.autograd.grad(winograd.conv2d(big, wide, None, padding=1).sum(), (big, wide))
    plain = torch.autograd.grad(torch.nn.functional.conv2d(big, wide, None, padding=1).sum(), (big, wide))
    for a, b in zip(fast, plain):
        assert (a - b).abs().max() <= WINOGRAD_TOL * b.abs().max()


def test_vgg_winograd_forward_matches_plain():
    from fst.vgg import VGG16Features

    torch.manual_seed(0)
    vgg = VGG16Features(normalisation="caffe")
    x = _image(64, 80)
    with torch.no_grad():
        fast = vgg(x, ["relu2_2", "relu4_3"])
        vgg.winograd = False
        plain = vgg(x, ["relu2_2", "relu4_3"])
    for layer in plain:
        assert (fast[layer] - plain[layer]).abs().max() <= 1e-4 * plain[layer].abs().max()


@pytest.mark.slow
def test_training_path_gives_the_plain_loss_and_gradients():
    from fst.losses import LossWeights, PerceptualLoss
    from fst.vgg import VGG16Features

    torch.manual_seed(0)
    vgg = VGG16Features(normalisation="caffe")
    model = FastStyle(config_for_arch("johnson")).train()
    criterion = PerceptualLoss(vgg, torch.rand(1, 3, 64, 64), LossWeights())
    x = torch.rand(2, 3, 48, 48)
    results = []
    for fast in (True, False):
        vgg.winograd = fast
        model.training_path = FastStyle.training_path if fast else None
        model.zero_grad()
        terms = criterion(model(x), x)
        terms.total.backward()
        results.append((terms.total.item(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (fast_loss, fast_grad), (plain_loss, plain_grad) = results
    assert fast_loss == pytest.approx(plain_loss, rel=1e-5)
    # VGG's max-pools route gradients by argmax: rounding-level input changes move a few of
    # them (oneDNN in channels_last differs from NCHW by as much), hence the norm-wise bound.
    assert (fast_grad - plain_grad).norm() / plain_grad.norm() < 5e-3


def test_faststyle_cpu_stylize_equals_plain_forward():
    torch.manual_seed(0)
    model = FastStyle(config_for_arch("johnson-lite")).eval()
    x = _image(45, 61)
    fast = model.stylize(x)
    model.fast_path = None
    try:
        plain = model.stylize(x)
    finally:
        del model.fast_path  # back to the class default
    assert (fast - plain).abs().max() < WINOGRAD_TOL


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["johnson", "johnson-rt"])
def test_tiled_fast_path_matches_untiled(arch):
    torch.manual_seed(2)
    model = FastStyle(config_for_arch(arch)).eval()
    x = _image(200, 260)
    whole = model.stylize(x)
    tiled = model.stylize(x, tile=96)
    assert (whole - tiled).abs().max() < 2e-3


def test_existing_variants_keep_their_structure_and_tensor_names():
    lite = TransformerNet(config_for_arch("johnson-lite"))
    assert lite.config.residual_block == "standard" and lite.config.space_to_depth == 1
    assert sum(p.numel() for p in lite.parameters()) == 271_299
    assert "res3.conv2.conv2d.weight" in lite.state_dict()
    assert TransformerNet(config_for_arch("johnson")).state_dict()["conv1.conv2d.weight"].shape == (32, 3, 9, 9)


def test_old_config_json_without_new_fields_loads(tmp_path):
    torch.manual_seed(0)
    model = FastStyle(config_for_arch("johnson-lite")).eval()
    model.save_pretrained(tmp_path / "m")
    import json

    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config.pop("residual_block", None)
    config.pop("space_to_depth", None)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = FastStyle.from_pretrained(tmp_path / "m")
    x = _image(40, 40)
    assert torch.equal(loaded.stylize(x), model.stylize(x))


onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["johnson-lite", "johnson-rt"])
def test_onnx_stylizer_matches_pytorch(arch, tmp_path):
    from fst.onnx_backend import OnnxStylizer, export_onnx

    torch.manual_seed(0)
    model = FastStyle(config_for_arch(arch)).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    stylizer = OnnxStylizer(path, threads=1)
    for size in [(64, 64), (37, 53), (5, 200), (1, 1)]:
        x = _image(*size)
        with torch.inference_mode():
            expected = model.net(torch.nn.functional.pad(x, (0, max(0, 16 - size[1]), 0, max(0, 16 - size[0])),
                                                         mode="replicate"))[..., :size[0], :size[1]]
        assert (stylizer.run(x) - expected).abs().max() < ONNX_TOL, size


@pytest.mark.slow
def test_onnx_stylizer_has_stylize_semantics(tmp_path):
    from fst.onnx_backend import OnnxStylizer

    torch.manual_seed(0)
    model = FastStyle(config_for_arch("johnson-lite")).eval()
    stylizer = OnnxStylizer.from_model(model, cache=tmp_path)
    array = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    out = stylizer.stylize(array)
    assert isinstance(out, np.ndarray) and out.shape == array.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - model.stylize(array).astype(int)).max() <= 1
    x = _image(32, 40)
    assert torch.equal(stylizer.stylize(x, strength=0.0), x)
    half, full = stylizer.stylize(x, strength=0.5), stylizer.stylize(x)
    assert torch.allclose(half, 0.5 * x + 0.5 * full, atol=1e-5)
    assert (stylizer.stylize(x, preserve_color=True) - model.stylize(x, preserve_color=True)).abs().max() < 1e-3
    assert stylizer.stylize(torch.rand(1, 3, 100, 200), max_side=50).shape == (1, 3, 25, 50)
    tiled = stylizer.stylize(x, tile=64)  # delegated to the PyTorch model
    assert tiled.shape == x.shape
    with pytest.raises(ValueError, match="strength must be a number in"):
        stylizer.stylize(x, strength=2.0)
    # cached export is reused
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    OnnxStylizer.from_model(model, cache=tmp_path)
    assert len(list(tmp_path.glob("*.onnx"))) == 1


def test_configure_threads_sets_torchs_thread_count():
    from fst.runtime import configure_threads

    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
