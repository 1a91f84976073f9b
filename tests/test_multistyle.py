"""Multi-style networks (conditional instance norm): style choice, blends, errors, exactness."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from fst import ConfigError, FastStyle, ModelLoadError, StyleError, TransformerConfig
from fst.multistyle import parse_blend, style_mix, style_name_from_path, style_weights
from fst.transformer import FastPath, fast_inference, norm_parameter_names

NAMES = ["starry_night", "the_scream", "udnie"]
TINY = dict(channels=4, num_res_blocks=1, outer_kernel_size=3)
STRUCTURES = [dict(TINY), dict(TINY, residual_block="depthwise", space_to_depth=2)]   # johnson-like, rt-like


def randomised(model: FastStyle, seed: int = 0) -> FastStyle:
    """Distinct norm rows per style (a new network has gamma 1 and beta 0 everywhere)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.net.named_parameters():
            if name in norm_parameter_names(model.net):
                tensor.uniform_(0.5, 1.5) if name.endswith("weight") else tensor.uniform_(-0.3, 0.3)
    return model.eval()


def multi(structure=None, seed: int = 0, names=NAMES) -> FastStyle:
    return randomised(FastStyle(**(structure or TINY), style_names=list(names)), seed)


def single_with_rows(model: FastStyle, weights: torch.Tensor) -> FastStyle:
    """A single-style network with ``model``'s convolutions and its norm rows mixed by ``weights``."""
    single = FastStyle(**{k: v for k, v in model.config.structure.items()}).eval()
    norms = set(norm_parameter_names(model.net))
    state = {name: (weights @ tensor if name in norms else tensor) for name, tensor in model.state_dict().items()}
    single.load_state_dict(state)
    return single


def image(height: int = 24, width: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- configs
def test_single_style_configs_keep_their_form_and_tensor_names():
    single, several = FastStyle(**TINY), FastStyle(**TINY, style_names=NAMES)
    assert not {"style_names", "base", "base_revision"} & set(single.config.to_dict())
    assert several.config.to_dict()["style_names"] == NAMES
    assert list(single.state_dict()) == list(several.state_dict())
    assert single.state_dict()["in1.weight"].shape == (4,) and several.state_dict()["in1.weight"].shape == (3, 4)
    assert single.style_names == [] and several.style_names == NAMES


@pytest.mark.parametrize("fields, message", [
    (dict(style_names=[]), "a list of 1 to 64"),
    (dict(style_names="starry_night"), "a list of 1 to 64"),
    (dict(style_names=["a", "a"]), "lists a more than once"),
    (dict(style_names=["bad:name"]), "not a valid style name"),
    (dict(style_names=["x" * 65]), "not a valid style name"),
    (dict(style_names=[f"s{i}" for i in range(65)]), "a list of 1 to 64"),
    (dict(base="user/multi"), "must list its own styles in style_names"),
    (dict(style_names=["a"], base="user/multi", base_revision="main"), "40-character commit hash"),
    (dict(style_names=["a"], base_revision="0" * 40), "base_revision is set but base is not"),
])
def test_bad_multistyle_configs_are_clear_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        TransformerConfig(**TINY, **fields)


def test_style_names_from_files():
    assert style_name_from_path("/x/the_scream.jpg") == "the_scream"
    assert style_name_from_path("My Painting (1).png") == "My_Painting_1"
    assert style_name_from_path("https://host/a/b:c.jpg") == "b_c"


# ----------------------------------------------------------------------------------- choice and blends
@pytest.mark.slow
@pytest.mark.parametrize("structure", STRUCTURES, ids=["standard", "rt"])
def test_each_style_and_each_blend_is_the_network_with_those_norm_rows(structure):
    model = multi(structure)
    x = image(21, 29)
    outputs = {}
    for index, name in enumerate(NAMES):
        weights = torch.nn.functional.one_hot(torch.tensor(index), 3).float()
        outputs[name] = model.stylize(x, style=name)
        assert torch.allclose(outputs[name], single_with_rows(model, weights).stylize(x), atol=1e-5)
    assert (outputs["starry_night"] - outputs["the_scream"]).abs().max() > 0.05   # the styles differ
    assert torch.equal(model.stylize(x), outputs["starry_night"])                # default: the first style
    blend = {"starry_night": 0.25, "udnie": 0.75}
    mixed = model.stylize(x, style=blend)
    assert torch.allclose(mixed, single_with_rows(model, torch.tensor([0.25, 0.0, 0.75])).stylize(x), atol=1e-5)
    assert torch.equal(model.stylize(x, style="starry_night:1,udnie:3"), mixed)   # text form, normalised


def test_fused_cpu_path_and_plain_forward_agree_for_blends():
    model = multi(STRUCTURES[1])
    x = image(48, 64)
    with torch.inference_mode(), style_mix(style_weights(NAMES, {"the_scream": 0.4, "udnie": 0.6})):
        plain = model.net(x)
        with fast_inference(FastPath()):
            fused = model.net(x)
    assert (plain - fused).abs().max() < 1e-4


def test_tiles_use_the_chosen_style():
    model = multi()
    x = image(100, 90)
    whole = model.stylize(x, style="udnie")
    assert (model.stylize(x, style="udnie", tile=64) - whole).abs().max() < 2e-3
    assert (model.stylize(x, style="udnie", style_scale=2.0) - whole).abs().mean() < 0.2


def test_a_batch_can_take_one_style_per_image():
    model = multi()
    x = torch.cat([image(seed=s) for s in range(3)])
    with torch.no_grad():
        together = model.forward(x, style=torch.tensor([2, 0, 1]))
        apart = [model.forward(x[i:i + 1], style=NAMES[k]) for i, k in enumerate([2, 0, 1])]
    assert torch.allclose(together, torch.cat(apart), atol=1e-6)


@pytest.mark.parametrize("style, message", [
    ({"starry_night": -0.5, "udnie": 1.5}, r"'starry_night' is -0.5; blends take weights >= 0"),
    ({"starry_night": float("nan")}, r"'starry_night' is nan; weights must be finite"),
    ({"starry_night": float("inf")}, r"'starry_night' is inf"),
    ({"starry_night": 0, "udnie": 0.0}, "all weights of the style blend are zero"),
    ({}, "the style blend is empty"),
    ({"udnei": 1.0}, r"unknown style 'udnei' \(did you mean 'udnie'\?\); this network has starry_night, the_scream"),
    ("van_gogh", "unknown style 'van_gogh'"),
    ({"udnie": "1"}, "must be a number, got str"),
    ({"udnie": True}, "must be a number, got bool"),
    ("udnie:lots", "the weight of 'udnie' is 'lots', not a number"),
    ("udnie:1,udnie:2", "names 'udnie' twice"),
    ("udnie:1,,", "malformed style blend"),
    (["udnie"], "a style name or a blend"),
])
def test_bad_style_choices_are_clear_errors(style, message):
    with pytest.raises(StyleError, match=message):
        multi().stylize(image(), style=style)


def test_a_single_style_network_takes_no_style_choice():
    with pytest.raises(StyleError, match="single-style network: it takes no style choice"):
        FastStyle(**TINY).stylize(image(), style="udnie")
    assert style_weights([], None) is None


def test_parse_blend():
    assert parse_blend(" a : 0.5 , b:2") == {"a": 0.5, "b": 2.0} and parse_blend("a") == {"a": 1.0}


# ------------------------------------------------------------------------------------- saving, loading
def test_save_and_load_round_trip(tmp_path):
    model = multi()
    model.save_pretrained(tmp_path / "m")
    loaded = FastStyle.from_pretrained(tmp_path / "m")
    assert loaded.style_names == NAMES
    assert torch.equal(loaded.stylize(image(), style="the_scream"), model.stylize(image(), style="the_scream"))


def test_style_count_mismatch_names_the_cause(tmp_path):
    multi().save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "style_names": ["a", "b"]}))
    with pytest.raises(ModelLoadError, match="style_names lists 2 styles in config.json but the weights hold 3"):
        FastStyle.from_pretrained(tmp_path / "m")
    del config["style_names"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="the weights hold 3 styles .* but config.json has no style_names"):
        FastStyle.from_pretrained(tmp_path / "m")


def test_norms_learn_while_the_rest_is_frozen():
    model = multi().train()
    for name, parameter in model.net.named_parameters():
        parameter.requires_grad_(name in norm_parameter_names(model.net))
    out = model(torch.rand(2, 3, 32, 32), style=torch.tensor([1, 1]))
    out.mean().backward()
    grads = {name: p.grad for name, p in model.net.named_parameters() if p.grad is not None}
    assert set(grads) == set(norm_parameter_names(model.net))
    assert grads["in1.weight"][1].abs().sum() > 0 and grads["in1.weight"][0].abs().sum() == 0   # only its row


@pytest.mark.slow
def test_onnx_export_fixes_the_chosen_style(tmp_path):
    from fst.onnx_backend import OnnxStylizer, export_onnx, weights_digest

    model = multi(STRUCTURES[1])
    x = image(40, 48)
    for style in ("the_scream", {"starry_night": 0.5, "udnie": 0.5}):
        path = export_onnx(model.with_style(style), tmp_path / "m.onnx")
        assert (OnnxStylizer(path).stylize(x) - model.stylize(x, style=style)).abs().max() < 1e-4
    assert weights_digest(model.with_style("udnie")) != weights_digest(model.with_style("the_scream"))
