"""train/train.py with several styles (one multi-style network) and with --base (an add-on style)."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from fst import FastStyle
from fst.errors import ConfigError
from fst.transformer import norm_parameter_names
from train_helpers import REPO, run
from train.styles import StyledImageFolder, normalize_style_args
from train.train import build_parser


def parse(*argv: str):
    return build_parser().parse_args(["--data", "x", *argv])


def test_one_style_keeps_plain_options_and_several_take_one_value_each():
    single = parse("--style", "a.jpg", "--style_title", "A")
    assert normalize_style_args(single) == [] and (single.style, single.style_title) == ("a.jpg", "A")
    several = parse("--style", "x/the_kiss.jpg", "udnie.png", "--style_title", "K", "U")
    assert normalize_style_args(several) == ["the_kiss", "udnie"] and several.style_title == ["K", "U"]
    named = parse("--style", "a.jpg", "b.jpg", "--style_names", "first", "second")
    assert normalize_style_args(named) == ["first", "second"]
    assert normalize_style_args(parse("--style", "new.jpg", "--base", "user/multi")) == ["new"]


@pytest.mark.parametrize("argv, message", [
    (("--style", "a.jpg", "b.jpg", "--style_title", "A"), r"--style_title: give one value per --style image \(2\)"),
    (("--style", "a.jpg", "b.jpg", "--style_names", "one"), r"--style_names: give one name per --style image"),
    (("--style", "a.jpg", "--style_names", "one"), "give several --style images, or --base"),
    (("--style", "a.jpg", "a.jpg"), "lists a more than once"),
    (("--style", "a.jpg", "b.jpg", "--style_names", "x", "bad,name"), "not a valid style name"),
])
def test_bad_style_options_are_clear_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        normalize_style_args(parse(*argv))


def test_each_image_gets_a_style_that_a_resumed_run_sees_again(tmp_path):
    dataset = StyledImageFolder([tmp_path / "x.jpg"] * 64, 16, num_styles=3, seed=5)
    dataset.load = lambda index: Image.new("RGB", (20, 20))
    first = [dataset[i]["style"] for i in range(64)]
    assert first == [dataset[i]["style"] for i in range(64)] and set(first) == {0, 1, 2}
    dataset.set_epoch(1)
    assert [dataset[i]["style"] for i in range(64)] != first


@pytest.mark.subprocess
@pytest.mark.usefixtures("vgg_weights")
def test_a_multistyle_run_then_an_addon_on_it(data_dir, train_photos, tmp_path):
    photos = train_photos(6)
    styles = data_dir / "styles"
    common = ["--data", str(photos), "--image_size", "32", "--style_size", "64", "--batch_size", "2",
              "--max_steps", "3", "--checkpointing_steps", "3", "--validation_steps", "3", "--log_steps", "1"]
    multi = tmp_path / "multi"
    result = run(["--style", str(styles / "the_scream.jpg"), str(styles / "udnie.jpg"), "--arch", "johnson-rt",
                  "--style_title", "The Scream", "Udnie", "--output_dir", str(multi), *common])
    assert result.returncode == 0, result.stdout[-3000:]
    model = FastStyle.from_pretrained(multi)
    assert model.style_names == ["the_scream", "udnie"] and model.config.arch == "johnson-rt"
    assert sorted(p.name for p in (multi / "styles").iterdir()) == ["the_scream.jpg", "udnie.jpg"]
    card = (multi / "README.md").read_text(encoding="utf-8")
    assert '| `udnie` | Udnie; copyright status not given' in card and 'style={"the_scream": 0.5' in card

    addon = tmp_path / "addon"
    result = run(["--base", str(multi), "--style", str(styles / "great_wave.jpg"), "--lr", "0.05",
                  "--output_dir", str(addon), *common])
    assert result.returncode == 0, result.stdout[-3000:]
    tensors = load_file(addon / "model.safetensors")
    assert set(tensors) == set(norm_parameter_names(model.net)) and tensors["in1.weight"].shape == (1, 16)
    config = json.loads((addon / "config.json").read_text())
    assert config["base"] == str(multi.resolve()) and config["style_names"] == ["great_wave"]
    new = FastStyle.from_pretrained(addon)
    for name, tensor in new.state_dict().items():   # the base is untouched, the new rows were trained
        if name not in tensors:
            assert torch.equal(tensor, model.state_dict()[name]), name
    assert not torch.allclose(tensors["in1.bias"][0], model.state_dict()["in1.bias"].mean(0))
    assert "add-on style" in (addon / "README.md").read_text(encoding="utf-8")


@pytest.mark.subprocess
def test_the_reproduction_script_runs_with_a_tiny_step_count(small_data, tmp_path):
    import os
    import subprocess

    data = small_data(4, 2, 2)
    env = {**os.environ, "DATA": str(data), "OUT": str(tmp_path / "out"), "MODELS": str(tmp_path / "models"),
           "STEPS": "2", "ADDON_STEPS": "2", "IMAGE_SIZE": "32", "STYLE_SIZE": "64"}
    result = subprocess.run(["bash", "train/train_multistyle.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    model = FastStyle.from_pretrained(tmp_path / "models" / "multistyle_rt")
    assert len(model.style_names) == 8 and model.config.training["init_from"] == "starry_night_rt"
    assert len(list((tmp_path / "models" / "multistyle_rt" / "styles").glob("*.jpg"))) == 8
    photo = data / "photos" / "bsds500" / "val"
    result = subprocess.run(["bash", "train/train_multistyle.sh", "addon", str(next(photo.glob("*.jpg"))), "photo"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert FastStyle.from_pretrained(tmp_path / "out" / "addon-photo").style_names == ["photo"]


def test_publishing_a_multistyle_folder_uploads_its_paintings(hub, tmp_path):
    from train import common
    from test_multistyle import multi

    folder = tmp_path / "multi"
    multi().save_pretrained(folder)
    (folder / "styles").mkdir()
    (folder / "checkpoints").mkdir()
    for path in (folder / "styles" / "udnie.jpg", folder / "style.jpg", folder / "checkpoints" / "x.jpg"):
        Image.new("RGB", (8, 8)).save(path)
    common.publish(folder, "user/multi-published")
    assert sorted(hub.list_files("user/multi-published")) == [".gitattributes", "config.json", "model.safetensors",
                                                              "style.jpg", "styles/udnie.jpg"]
