"""Add-on styles: a few KB of norm rows on a multi-style base, loaded through the same safe path."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, load_file, save_file

from fst import FastStyle, HubError, ModelLoadError, addon
from fst.errors import ConfigError, FstError
from fst.transformer import norm_parameter_names
from test_multistyle import NAMES, TINY, image, multi
from train.common import prepare_for_publishing


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("base") / "multi"
    multi().save_pretrained(folder)
    return folder


def trained_addon(base: str, names=("new",), seed: int = 3) -> FastStyle:
    """An add-on whose new rows were 'trained' (set at random)."""
    model = addon.create(FastStyle, base, list(names), style_name="New")
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    return model.eval()


def test_an_addon_freezes_its_base_and_starts_from_the_mean_row(base_folder):
    base = FastStyle.from_pretrained(base_folder)
    model = addon.create(FastStyle, str(base_folder), ["new"])
    trainable = {name for name, p in model.net.named_parameters() if p.requires_grad}
    assert trainable == set(norm_parameter_names(model.net))
    assert torch.allclose(model.state_dict()["in1.weight"][0], base.state_dict()["in1.weight"].mean(0))
    assert torch.equal(model.state_dict()["conv1.conv2d.weight"], base.state_dict()["conv1.conv2d.weight"])
    assert model.config.base == str(base_folder.resolve()) and model.config.base_revision is None


def test_an_addon_folder_holds_only_its_norm_rows_and_loads_with_its_base(base_folder, tmp_path):
    model = trained_addon(str(base_folder))
    model.save_pretrained(tmp_path / "addon")
    tensors = load_file(tmp_path / "addon" / "model.safetensors")
    assert set(tensors) == set(norm_parameter_names(model.net)) and tensors["in1.weight"].shape == (1, 4)
    assert (tmp_path / "addon" / "model.safetensors").stat().st_size < 4096
    loaded = FastStyle.from_pretrained(tmp_path / "addon")
    assert loaded.style_names == ["new"]
    x = image()
    assert torch.equal(loaded.stylize(x), model.stylize(x))
    assert (loaded.stylize(x) - FastStyle.from_pretrained(base_folder).stylize(x)).abs().max() > 0.01


def test_a_relative_base_is_found_next_to_the_addon(base_folder, tmp_path):
    shutil.copytree(base_folder, tmp_path / "multi")
    model = trained_addon(str(tmp_path / "multi"))
    model.save_pretrained(tmp_path / "addon")
    config = json.loads((tmp_path / "addon" / "config.json").read_text())
    (tmp_path / "addon" / "config.json").write_text(json.dumps({**config, "base": "../multi"}))
    assert torch.equal(FastStyle.from_pretrained(tmp_path / "addon").stylize(image()), model.stylize(image()))


def rewrite_base(folder: Path, **fields) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **fields}))


def test_missing_mismatched_and_chained_bases_are_refused(base_folder, tmp_path):
    model = trained_addon(str(base_folder))
    model.save_pretrained(tmp_path / "addon")
    rewrite_base(tmp_path / "addon", base=str(tmp_path / "gone"))
    with pytest.raises(ModelLoadError, match=r"cannot load the base network '.*gone' of this add-on: no model folder"):
        FastStyle.from_pretrained(tmp_path / "addon")

    FastStyle(**dict(TINY, channels=8), style_names=NAMES).save_pretrained(tmp_path / "wide")
    rewrite_base(tmp_path / "addon", base=str(tmp_path / "wide"))
    with pytest.raises(ModelLoadError, match=r"is a different network: channels 8 \(the add-on has 4\)"):
        FastStyle.from_pretrained(tmp_path / "addon")

    model.save_pretrained(tmp_path / "addon2")              # add-on -> add-on -> base: refused
    rewrite_base(tmp_path / "addon", base=str(tmp_path / "addon2"))
    with pytest.raises(ModelLoadError, match="is itself an add-on"):
        FastStyle.from_pretrained(tmp_path / "addon")
    rewrite_base(tmp_path / "addon2", base=str(tmp_path / "addon"))   # a loop ends at once too
    with pytest.raises(ModelLoadError, match="is itself an add-on"):
        FastStyle.from_pretrained(tmp_path / "addon")
    model.save_pretrained(tmp_path / "addon3")
    with pytest.raises(ConfigError, match="is itself an add-on; give the multi-style network it was trained on"):
        addon.create(FastStyle, str(tmp_path / "addon3"), ["x"])


def test_nothing_is_loaded_from_a_hostile_base(base_folder, tmp_path, bad_inputs):
    model = trained_addon(str(base_folder))
    model.save_pretrained(tmp_path / "addon")
    corpus = bad_inputs / "models"
    for case, message in (("pickle_only_pytorch_model_bin", "pickle checkpoints"), ("st_nan_weights", "NaN/Inf"),
                          ("config_absurd_channels_1e9", "out of range"), ("st_extra_tensor", "unexpected tensors")):
        rewrite_base(tmp_path / "addon", base=str(corpus / case))
        with pytest.raises(ModelLoadError, match=message):
            FastStyle.from_pretrained(tmp_path / "addon")
    tensors = load_file(tmp_path / "addon" / "model.safetensors")   # the add-on's own file is checked as strictly
    rewrite_base(tmp_path / "addon", base=str(base_folder))
    save_file({**tensors, "in1.weight": torch.full((1, 4), float("nan"))}, tmp_path / "addon" / "model.safetensors")
    with pytest.raises(ModelLoadError, match="NaN/Inf in in1.weight"):
        FastStyle.from_pretrained(tmp_path / "addon")
    save_file({**tensors, "conv1.conv2d.bias": torch.zeros(4)}, tmp_path / "addon" / "model.safetensors")
    with pytest.raises(ModelLoadError, match="unexpected tensors: conv1.conv2d.bias"):
        FastStyle.from_pretrained(tmp_path / "addon")


def test_an_addon_on_a_local_folder_is_not_published(base_folder, tmp_path):
    trained_addon(str(base_folder)).save_pretrained(tmp_path / "addon")
    with pytest.raises(FstError, match="it is an add-on and its base is the local folder"):
        prepare_for_publishing(tmp_path / "addon", "user/new")
    rewrite_base(tmp_path / "addon", base="user/multi")
    with pytest.raises(FstError, match="has no pinned revision"):
        prepare_for_publishing(tmp_path / "addon", "user/new")
    rewrite_base(tmp_path / "addon", base_revision="0" * 40)
    prepare_for_publishing(tmp_path / "addon", "user/new")


# ------------------------------------------------------------------------------------- on the Hub
@pytest.fixture(scope="module")
def published_base(hub) -> tuple[str, str]:
    multi(seed=7).push_to_hub("user/multi-base")
    return "user/multi-base", hub.head("user/multi-base")


def test_an_addon_pins_its_hub_base_and_works_offline_once_cached(hub, published_base, tmp_path, dead_hub):
    repo, revision = published_base
    model = trained_addon(repo)
    assert (model.config.base, model.config.base_revision) == (repo, revision)
    model.push_to_hub("user/new-style")
    published = load(hub.read_file("user/new-style", "model.safetensors"))
    assert set(published) == set(norm_parameter_names(model.net))            # the norm rows alone
    multi(seed=8).push_to_hub(repo)                          # the base moves on; the add-on keeps its revision
    cache = tmp_path / "cache"
    loaded = FastStyle.from_pretrained("user/new-style", cache_dir=cache)
    assert torch.equal(loaded.stylize(image()), model.stylize(image()))
    dead_hub("refuse")                                       # both repos come from the cache now
    offline = FastStyle.from_pretrained("user/new-style", cache_dir=cache)
    assert torch.equal(offline.stylize(image()), model.stylize(image()))


def test_a_downloaded_addon_may_not_name_a_local_folder(hub, base_folder, tmp_path):
    trained_addon(str(base_folder)).save_pretrained(tmp_path / "addon")
    hub.seed_repo("user/sneaky", tmp_path / "addon")
    with pytest.raises(ModelLoadError, match="only Hub repo ids are accepted as bases of downloaded add-ons"):
        FastStyle.from_pretrained("user/sneaky", cache_dir=tmp_path / "cache")


def test_a_hostile_or_missing_hub_base_is_refused(hub, published_base, bad_inputs, tmp_path):
    repo, _ = published_base
    trained_addon(repo).save_pretrained(tmp_path / "addon")
    revision = hub.seed_repo("user/nan-base", bad_inputs / "models" / "st_nan_weights")
    rewrite_base(tmp_path / "addon", base="user/nan-base", base_revision=revision)
    with pytest.raises(ModelLoadError, match="cannot load the base network 'user/nan-base'.*NaN/Inf"):
        FastStyle.from_pretrained(tmp_path / "addon")
    rewrite_base(tmp_path / "addon", base="user/no-such-base", base_revision=None)
    with pytest.raises(HubError, match="cannot load the base network 'user/no-such-base'.*not found"):
        FastStyle.from_pretrained(tmp_path / "addon")


def test_a_cached_hub_base_is_pinned_offline_too(published_base, dead_hub):
    repo, _ = published_base
    online = addon.resolve_base(repo)             # fetched into the (session) Hub cache
    dead_hub("refuse")
    assert addon.resolve_base(repo) == online and online.revision is not None and not online.folder
