"""Model folders ready to publish: no local paths, real dataset ids, the usage snippet naming the
repo, a style-image provenance line, readable durations, 0644 files, and only model files uploaded."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from fst import FastStyle
from fst.errors import FstError
from fst.model_card import format_duration, local_paths, render_model_card, set_repo_id
from train import common
from train.train import build_parser, style_provenance

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
KNOWN_DATASETS = set(common.DATASET_IDS.values())


def card_context(**overrides) -> dict:
    """What train.py renders the style card with (small values)."""
    context = dict(
        license="mit", title="Test: fast style transfer", style_name="Test", style_image="style.jpg",
        sample_image="samples.jpg", repo_id="your-name/test", arch="johnson-lite", num_parameters=1000,
        data_description="6 photos from `photos`", data_terms="see the terms", datasets=[],
        style_provenance="`x.jpg` (title and artist not given)", loss_network="hf://timm/vgg16.tv_in1k",
        hyperparameters={"batch_size": 2, "image_size": 32, "content_layer": "relu2_2", "style_layers": ["relu1_2"]},
        steps=2, train_seconds=4.2, hardware="CPU (1 thread)", final_losses={"loss": 1.0}, quality=None,
        speed="1 ms", num_images=6)
    return {**context, **overrides}


def style_card(**overrides) -> str:
    return render_model_card("style", **card_context(**overrides))


def test_options_are_published_without_local_paths(tmp_path, data_dir):
    args = build_parser().parse_args([
        "--style", str(data_dir / "styles" / "the_scream.jpg"), "--data", str(data_dir / "photos" / "bsds500" / "train"),
        str(tmp_path), "--validation_images", str(data_dir / "photos" / "bsds500" / "val"),
        "--output_dir", str(tmp_path / "out"), "--resume_from_checkpoint", "latest", "--hub_token", "hf_secret",
        "--init_from", "someone/style"])
    options = common.public_options(args)
    text = json.dumps(options)
    assert local_paths(text) == [] and str(tmp_path) not in text and "hf_secret" not in text
    assert options["style"] == "the_scream.jpg" and options["data"] == ["bsds500/train", tmp_path.name]
    assert options["validation_images"] == ["bsds500/val"] and options["init_from"] == "someone/style"
    assert not {"output_dir", "resume_from_checkpoint", "hub_token", "config"} & set(options)


def test_datasets_name_real_hub_datasets_or_nothing(tmp_path, data_dir):
    assert common.datasets_of([data_dir / "photos" / "imagenet_sample", data_dir / "photos" / "bsds500"]) == \
        ["ILSVRC/imagenet-1k"]
    assert common.datasets_of([tmp_path]) == []
    meta = ModelCard(style_card(datasets=[])).data.to_dict()
    assert "datasets" not in meta


def test_durations_read_well():
    assert [format_duration(s) for s in (0.4, 42, 800, 9000)] == ["0 s", "42 s", "13.3 minutes", "2.5 hours"]
    assert "4 s on CPU (1 thread)" in style_card(train_seconds=4.2) and "0.0 minutes" not in style_card()


def test_the_style_image_line_gives_its_provenance(data_dir):
    args = build_parser().parse_args([
        "--style", str(data_dir / "styles" / "the_kiss.jpg"), "--data", "x", "--style_title", "The Kiss (1907-1908)",
        "--style_artist", "Gustav Klimt (1862-1918)", "--style_license", "public domain",
        "--style_source", "github.com/iSach/clipmorph, training_data/styles/klimt.jpg"])
    line = style_provenance(args)
    assert line == ("The Kiss (1907-1908), Gustav Klimt (1862-1918); public domain; "
                    "source: github.com/iSach/clipmorph, training_data/styles/klimt.jpg")
    bare = style_provenance(build_parser().parse_args(["--style", str(data_dir / "styles" / "udnie.jpg"), "--data", "x"]))
    assert bare == "`udnie.jpg` (title and artist not given); copyright status not given; source not given"
    assert f"- Style image: {line}" in style_card(style_provenance=line)


def test_the_usage_snippet_names_the_repo_it_is_published_to():
    card = style_card(repo_id=common.placeholder_repo_id(Path("outputs/My Starry")))
    assert 'from_pretrained("your-name/My-Starry")' in card
    published = set_repo_id(card, "me/starry")
    assert 'FastStyle.from_pretrained("me/starry")' in published and "--model me/starry -o" in published
    assert "your-name" not in published


def test_local_paths_are_found():
    assert local_paths('"data": ["../shared/data/photos"], "style": "/home/ann/x.jpg", "a": "./b/c"') == \
        ["../shared/data/photos", "/home/ann/x.jpg", "./b/c"]
    assert local_paths("https://huggingface.co/user/model and 1/300 and relu1_2/x") == []


@pytest.fixture()
def trained_folder(tmp_path) -> Path:
    """A folder as train.py leaves it: model files plus checkpoints, logs and stray files."""
    folder = tmp_path / "starry"
    torch.manual_seed(0)
    model = FastStyle(channels=4, num_res_blocks=1)
    context = card_context(repo_id=common.placeholder_repo_id(folder))
    model.save_pretrained(folder, model_card_kwargs={"template": "style", **context})
    for name in ("style.jpg", "samples.jpg", "notes.txt", "checkpoints/checkpoint-2/state.bin", "logs/events",
                 "samples/step-000002.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    return folder


def test_saved_files_are_readable_by_everyone(trained_folder):
    old = os.umask(0o022)
    os.umask(old)
    for name in ("model.safetensors", "config.json", "README.md"):
        mode = stat.S_IMODE((trained_folder / name).stat().st_mode)
        assert mode == 0o666 & ~old, (name, oct(mode))


def test_publish_uploads_only_the_model_files_with_the_snippet_rendered(hub, trained_folder):
    common.publish(trained_folder, "user/published-card")
    assert sorted(hub.list_files("user/published-card")) == sorted(
        [".gitattributes", *common.PUBLISHED_FILES])
    card = hub.read_file("user/published-card", "README.md").decode()
    assert 'FastStyle.from_pretrained("user/published-card")' in card and "your-name/" not in card


def test_publish_refuses_a_folder_naming_local_paths(hub, trained_folder):
    config = json.loads((trained_folder / "config.json").read_text())
    config["training"] = {"data": ["/home/ann/photos/mine"]}
    (trained_folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FstError, match=r"not publishing .* names local paths \(config.json: /home/ann/photos/mine\)"):
        common.publish(trained_folder, "user/never-published")
    with pytest.raises(KeyError):
        hub.list_files("user/never-published")


@pytest.mark.parametrize("entry", json.loads((MODELS / "catalog.json").read_text())["models"],
                         ids=lambda e: e["name"])
def test_the_default_models_are_ready_to_publish(entry):
    folder = MODELS / entry["folder"]
    texts = {name: (folder / name).read_text(encoding="utf-8") for name in ("README.md", "config.json")}
    assert {name: local_paths(text) for name, text in texts.items()} == {"README.md": [], "config.json": []}
    meta = ModelCard(texts["README.md"]).data.to_dict()
    assert set(meta.get("datasets") or []) <= KNOWN_DATASETS
    assert f'from_pretrained("{entry["hub_id"]}")' in texts["README.md"]
    if entry["kind"] == "style":
        start = f"| `{entry['style']}` | " if entry.get("style") else "- Style image: "   # a multi-style network's row
        line = next(line for line in texts["README.md"].splitlines() if line.startswith(start))
        assert "public domain" in line and "source: github.com/" in line and "(1" in line   # title (year), artist


def test_train_help_shows_each_default_once():
    from train.train_colorize import build_parser as colorize_parser

    for parser in (build_parser(), colorize_parser()):
        for line in parser.format_help().splitlines():
            assert line.count("(default") <= 1, line
        assert "(default: None)" not in parser.format_help()
