"""TransformerNet: shapes, ranges, variants, config bounds."""
import pytest
import torch

from fst import ARCHITECTURES, ConfigError, FastStyle, TransformerConfig, TransformerNet, config_for_arch


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
    with pytest.raises(ConfigError, match="unknown architecture 'big'"):
        config_for_arch("big")


def test_faststyle_accepts_config_fields_as_keyword_arguments():
    model = FastStyle(channels=4, num_res_blocks=2, style_name="x")
    assert model.config.channels == 4 and len(model.net.res_blocks) == 2
