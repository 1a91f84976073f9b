"""Hostile model repositories: every load_model case of the corpus, for the shipped
copies and for copies regenerated with the real network's tensor names."""
from __future__ import annotations

import csv
import importlib.util
import os
import time
from pathlib import Path

import pytest
import torch

from fst import FastStyle, ModelLoadError
from fst.model_card import read_card_metadata

# Expected outcome per case: None = loads; otherwise a regex the error must match.
EXPECTED = {
    "control_valid_model": None,
    "pickle_only_pytorch_model_bin": r"pickle checkpoints \(pytorch_model.bin\) are not loaded for security reasons",
    "st_header_length_2pow62": r"corrupt \(header length exceeds file size\)",
    "st_wrong_num_res_blocks": r"num_res_blocks=5 in config.json but weights contain 3 residual blocks",
    "st_wrong_channels": r"channels=4 in config.json but weights were built for channels=8",
    "st_dtype_int8": r"unsupported weight dtype int8 for \S+; expected float32",
    "st_missing_tensor": r"missing tensors: res5\.",
    "st_extra_tensor": r"unexpected tensors: optimizer_state.step, vgg_loss.features.0.weight",
    "st_nan_weights": r"model weights contain NaN/Inf in conv1.conv2d.weight",
    "config_not_json": r"config.json is not valid JSON \(line 1 column 2\)",
    "config_unknown_keys": None,
    "config_wrong_type_channels_str": r'channels must be a positive integer, got str "abc"',
    "config_absurd_channels_1e9": r"channels=1000000000 is out of range \(1\.\.256\)",
    "config_absurd_res_blocks_100000": r"num_res_blocks=100000 is out of range \(1\.\.32\)",
    "config_path_traversal": None,
    "readme_malformed_yaml": None,
    "readme_yaml_billion_laughs": None,
    "only_symlink_outside_repo": r"model.safetensors resolves outside the model folder",
}


def _load_generator(bad_inputs: Path):
    spec = importlib.util.spec_from_file_location("make_bad_inputs", bad_inputs / "make_bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory, bad_inputs) -> Path:
    """The model cases rebuilt by the corpus generator from FastStyle's real state dict
    (the generator also makes the symlink case, which git does not keep)."""
    gen = _load_generator(bad_inputs)
    out = tmp_path_factory.mktemp("repos")

    def real_state_dict(config, rng):
        torch.manual_seed(int(rng.integers(1 << 31)))
        return {k: v.detach().numpy() for k, v in FastStyle(**config).state_dict().items()}

    manifest = gen.Manifest()
    gen.make_model_repo_cases(out / "models", real_state_dict, dict(gen.BASE_CONFIG), manifest,
                              channels_key="channels", blocks_key="num_res_blocks")
    manifest.write(out / "manifest.csv")
    return out


def _cases(root: Path) -> list[str]:
    with open(root / "manifest.csv", newline="", encoding="utf-8") as handle:
        return [row["file"].split("/")[1] for row in csv.DictReader(handle) if row["applies_to"] == "load_model"]


def _check(folder: Path) -> None:
    name = folder.name
    assert name in EXPECTED, f"new corpus case {name}: add its expected outcome"
    start = time.perf_counter()
    if EXPECTED[name] is None:
        model = FastStyle.from_pretrained(folder)
        out = model.stylize(torch.rand(1, 3, 64, 64))
        assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()
    else:
        with pytest.raises(ModelLoadError, match=EXPECTED[name]) as info:
            FastStyle.from_pretrained(folder)
        assert "root:" not in str(info.value)  # /etc/passwd content never echoed
    assert time.perf_counter() - start < 5, "hostile repos must fail fast"
    assert not Path(f"/tmp/PWNED_{name}").exists()


def test_every_shipped_case_is_covered(bad_inputs):
    missing = set(_cases(bad_inputs)) - set(EXPECTED)
    assert not missing


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "only_symlink_outside_repo"])
def test_shipped_corpus_case(bad_inputs, name):
    _check(bad_inputs / "models" / name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_regenerated_case_with_real_tensor_names(regenerated, name):
    if name not in _cases(regenerated):
        pytest.fail(f"the generator no longer produces {name}")
    _check(regenerated / "models" / name)


def test_symlink_inside_the_folder_is_allowed(tmp_path):
    model = FastStyle(channels=4, num_res_blocks=1)
    model.save_pretrained(tmp_path / "store")
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "repo" / "blobs").mkdir()
    os.replace(tmp_path / "store" / "model.safetensors", repo / "blobs" / "w")
    os.symlink("blobs/w", repo / "model.safetensors")
    os.replace(tmp_path / "store" / "config.json", repo / "config.json")
    assert FastStyle.from_pretrained(repo).config.channels == 4


def test_model_card_metadata_is_parsed_safely(bad_inputs):
    start = time.perf_counter()
    assert read_card_metadata(bad_inputs / "models" / "readme_yaml_billion_laughs" / "README.md") is None
    assert read_card_metadata(bad_inputs / "models" / "readme_malformed_yaml" / "README.md") is None
    meta = read_card_metadata(bad_inputs / "models" / "control_valid_model" / "README.md")
    assert meta["library_name"] == "fst"
    assert time.perf_counter() - start < 1


def test_nonfinite_config_numbers_are_rejected(tmp_path):
    model = FastStyle(channels=4, num_res_blocks=1)
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "transformer_net", "channels": NaN, "num_res_blocks": 1}')
    with pytest.raises(ModelLoadError, match="channels must be a positive integer"):
        FastStyle.from_pretrained(tmp_path)


def test_weights_are_never_unpickled(tmp_path, bad_inputs):
    folder = tmp_path / "both"
    folder.mkdir()
    src = bad_inputs / "models" / "pickle_only_pytorch_model_bin"
    for name in ("config.json", "pytorch_model.bin"):
        (folder / name).write_bytes((src / name).read_bytes())
    with pytest.raises(ModelLoadError, match="not loaded for security reasons"):
        FastStyle.from_pretrained(folder)
    assert not list(Path("/tmp").glob("PWNED_*"))
