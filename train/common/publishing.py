"""Saving a trained model folder and uploading it to the Hub (model files only, no local paths)."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from fst.errors import FstError


def save_and_publish(args: argparse.Namespace, model, card: dict[str, Any], template: str) -> None:
    """Write the model folder (weights, config, card from ``model_cards/<template>.md``); push it."""
    folder = args.output_dir
    model.save_pretrained(folder, model_card_kwargs={"template": template, **card})
    print(f"saved {folder}/model.safetensors, config.json and README.md")
    if args.push_to_hub:
        url = publish(folder, args.hub_model_id, private=args.hub_private, token=args.hub_token)
        print(f"published to {url}")


#: The files of a model folder that are uploaded; checkpoints, logs and anything else stay local.
PUBLISHED_FILES = ("model.safetensors", "config.json", "README.md", "style.jpg", "samples.jpg")
#: Also uploaded: each painting of a multi-style network.
PUBLISHED_PATTERNS = (*PUBLISHED_FILES, "styles/*.jpg")


def prepare_for_publishing(folder: Path, repo_id: str) -> None:
    """Make the card's usage snippet name ``repo_id``, then check that neither the card nor
    config.json holds a path of this machine (raises FstError naming them)."""
    from fst.model_card import local_paths, set_repo_id

    card = Path(folder) / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        if set_repo_id(text, repo_id) != text:
            tmp = card.with_name(card.name + ".tmp")
            tmp.write_text(set_repo_id(text, repo_id), encoding="utf-8")
            os.replace(tmp, card)
    config_file = Path(folder) / "config.json"
    problem = _base_problem(json.loads(config_file.read_text(encoding="utf-8"))) if config_file.is_file() else None
    if problem:
        raise FstError(f"not publishing {folder}: it is an add-on and {problem}")
    found = [f"{name}: {path}" for name in ("README.md", "config.json") if (Path(folder) / name).is_file()
             for path in local_paths((Path(folder) / name).read_text(encoding="utf-8"))]
    if found:
        raise FstError(f"not publishing {folder}: it names local paths ({'; '.join(found[:4])}); remove them "
                       "from the files (train.py writes none) and run python -m train.publish again")


def _base_problem(config: Any) -> str | None:
    """Why the add-on whose config.json holds ``config`` cannot be published (None: it can, or no add-on)."""
    from fst.addon import BaseRef
    from fst.hub import names_a_folder

    base = config.get("base") if isinstance(config, dict) else None
    if not isinstance(base, str):
        return None
    folder = names_a_folder(base) or Path(base).is_absolute()
    return BaseRef(base, config.get("base_revision"), folder=folder).publishable_problem()


def publish(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create the Hub repo (if needed) and upload the model files of ``folder``; returns the repo URL.

    Only :data:`PUBLISHED_PATTERNS` are uploaded, after :func:`prepare_for_publishing`. Uploads
    are content-addressed: re-running after a failure only sends what is missing, so a failed
    upload is retried without retraining (``python -m train.publish``).
    """
    from huggingface_hub import HfApi

    prepare_for_publishing(folder, repo_id)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload fst model",
                          allow_patterns=list(PUBLISHED_PATTERNS))
    except Exception as exc:  # noqa: BLE001 - every failure gets the same retry advice
        raise FstError(f"upload to {repo_id} failed ({type(exc).__name__}: {str(exc)[:200]}). The model is saved "
                       f"in {folder}; retry with: python -m train.publish {folder} --hub_model_id {repo_id}") from None
    return str(url)
