"""TransformerNet: shapes, ranges, variants, config bounds."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from fst import ARCHITECTURES, ConfigError, FastStyle, TransformerConfig, TransformerNet, config_for_arch

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_output_shape_and_range_for_odd_sizes(arch):
    torch.manual_seed(0)
    net = TransformerNet(config_for_arch(arch)).eval()
    for size in [(8, 8), (37, 53), (64, 31), (101, 9)]:
        out = net(torch.rand(2, 3, *size))
        assert out.shape == (2, 3, *size)
        assert out.dtype == torch.float32
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_paper_network_matches_pytorch_examples_parameter_count_and_names():
    net = TransformerNet(config_for_arch("johnson"))
    assert sum(p.numel() for p in net.parameters()) == 1_679_235
    keys = set(net.state_dict())
    assert {"conv1.conv2d.weight", "in1.weight", "res5.in2.bias", "deconv3.conv2d.weight", "in5.bias"} <= keys


def test_lite_variant_is_much_cheaper():
    full = sum(p.numel() for p in TransformerNet(config_for_arch("johnson")).parameters())
    lite = sum(p.numel() for p in TransformerNet(config_for_arch("johnson-lite")).parameters())
    assert lite * 5 < full


def test_no_transposed_convolutions():
    net = TransformerNet(config_for_arch("johnson"))
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())


@pytest.mark.parametrize("field,value,message", [
    ("channels", 0, "channels=0 is out of range"),
    ("channels", 10**9, "channels=1000000000 is out of range"),
    ("channels", "abc", 'channels must be a positive integer, got str "abc"'),
    ("num_res_blocks", 100000, "num_res_blocks=100000 is out of range"),
    ("num_res_blocks", 2.5, "num_res_blocks must be a positive integer"),
    ("outer_kernel_size", 4, "outer_kernel_size must be odd"),
    ("upsample_mode", "transposed", "upsample_mode must be one of"),
    ("in_channels", 4, "in_channels=4 is out of range"),
])
def test_config_rejects_bad_values_with_clear_messages(field, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TransformerConfig(**{field: value})


def test_unknown_arch_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown architecture 'big'; choose one of johnson, johnson-lite"):
        config_for_arch("big")
    with pytest.raises(ConfigError, match="unknown architecture 'big'"):
        FastStyle(arch="big")
    with pytest.raises(ConfigError, match="arch must be a string"):
        TransformerConfig(arch=["johnson"])


def test_every_variant_sets_every_structural_field():
    structural = {f.name for f in dataclasses.fields(TransformerConfig) if f.default is None} - {
        "arch", "style_name", "loss_network", "training", *TransformerConfig.OPTIONAL_FIELDS}
    assert all(set(fields) == structural for fields in ARCHITECTURES.values())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_an_arch_name_builds_that_variant(arch):
    expected = TransformerNet(config_for_arch(arch)).state_dict()
    for model in (FastStyle(arch=arch), FastStyle({"arch": arch}), FastStyle(TransformerConfig(arch=arch))):
        config = model.config
        assert config.arch == arch
        assert {name: getattr(config, name) for name in ARCHITECTURES[arch]} == ARCHITECTURES[arch]
        assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in expected.items()}


def test_the_webcam_variant_is_not_the_paper_network():
    model = FastStyle(arch="johnson-rt")
    assert model.config.residual_block == "depthwise" and model.config.space_to_depth == 2
    assert sum(p.numel() for p in model.parameters()) < 100_000   # johnson: 1,679,235


@pytest.mark.parametrize("fields, message", [
    (dict(arch="johnson-rt", channels=32), r"config fields contradict arch='johnson-rt': channels=32 \(johnson-rt has 16\)"),
    (dict(arch="johnson-rt", residual_block="standard", space_to_depth=1),
     r'residual_block="standard" \(johnson-rt has "depthwise"\), space_to_depth=1 \(johnson-rt has 2\); '
     r"drop these fields to build johnson-rt, or drop arch for a custom network"),
    (dict(arch="johnson", channels=4, num_res_blocks=1), r"channels=4 \(johnson has 32\), num_res_blocks=1"),
    (dict(arch="johnson-lite", upsample_mode="bilinear"), r'upsample_mode="bilinear" \(johnson-lite has "nearest"\)'),
])
def test_fields_that_contradict_the_arch_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        TransformerConfig(**fields)
    with pytest.raises(ConfigError, match=message):
        FastStyle(**fields)
    with pytest.raises(ConfigError, match=message):
        TransformerConfig.from_dict(fields)


def test_fields_that_agree_with_the_arch_and_custom_networks_are_accepted():
    assert TransformerConfig(arch="johnson-lite", channels=16, outer_kernel_size=5) == config_for_arch("johnson-lite")
    custom = TransformerConfig(channels=4, residual_block="depthwise")
    assert custom.arch is None and custom.num_res_blocks == 5 and custom.outer_kernel_size == 9
    assert TransformerConfig() == TransformerConfig(**ARCHITECTURES["johnson"])


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in MODELS.glob("*/config.json")
                                          if "transformer_net" in p.read_text(encoding="utf-8")))
def test_shipped_configs_load_as_they_are_written(folder):
    raw = json.loads((MODELS / folder / "config.json").read_text(encoding="utf-8"))
    config = TransformerConfig.from_dict(raw)
    assert config.to_dict() == raw
    assert {name: raw[name] for name in ARCHITECTURES[raw["arch"]]} == ARCHITECTURES[raw["arch"]]


def test_faststyle_accepts_config_fields_as_keyword_arguments():
    model = FastStyle(channels=4, num_res_blocks=2, style_name="x")
    assert model.config.channels == 4 and len(model.net.res_blocks) == 2
