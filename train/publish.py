#!/usr/bin/env python
"""Upload a trained model folder to the Hub (e.g. to retry a failed upload without retraining).

    python -m train.publish outputs/starry --hub_model_id user/starry [--private]

Only the model files are uploaded (train.common.PUBLISHED_PATTERNS); the card's usage snippet is
rendered with --hub_model_id first, and a folder that names a local path is refused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fst.errors import FstError  # noqa: E402
from train.common import publish  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder written by train.py (config.json, model.safetensors, ...)")
    parser.add_argument("--hub_model_id", required=True, help="Hub repo id, e.g. user/starry")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in user's)")
    args = parser.parse_args(argv)
    if not (args.folder / "model.safetensors").is_file() or not (args.folder / "config.json").is_file():
        print(f"error: {args.folder} has no model.safetensors/config.json; is it a train.py output folder?",
              file=sys.stderr)
        return 2
    try:
        url = publish(args.folder, args.hub_model_id, private=args.private, token=args.hub_token)
    except FstError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"published to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
