"""Training infrastructure shared by train.py (styles), train_colorize.py and train_arbitrary.py.

One module per concern:

- :mod:`.options`: the shared command-line options, ``--config`` files and the script entry point;
- :mod:`.data`: image discovery, the random-crop dataset, style and validation images, grids;
- :mod:`.checkpoints`: atomic checkpoints and the stored training position (exact resume);
- :mod:`.loop`: the accelerate loop with progress and tracking;
- :mod:`.card_facts`: what a card and config.json say about a run (data terms, public options);
- :mod:`.publishing`: saving a model folder and uploading it to the Hub.

The names below are the scripts' API (``common.discover_images`` and so on).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `accelerate launch train/x.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from .card_facts import (DATA_TERMS, DATASET_IDS, data_names, data_terms, datasets_of,  # noqa: E402
                         hardware_name, jsonable, placeholder_repo_id, public_name, public_options, speed_line)
from .checkpoints import Checkpoints, TrainState  # noqa: E402
from .data import (IMAGE_EXTENSIONS, ImageFolder, discover_images, load_style_image, printable,  # noqa: E402
                   random_resized_crop, save_grid, validation_images)
from .loop import logger, loader_configuration, make_accelerator, train_loop  # noqa: E402
from .options import HelpFormatter, add_common_args, parse_args, run_script  # noqa: E402
from .publishing import PUBLISHED_FILES, PUBLISHED_PATTERNS, prepare_for_publishing, publish, save_and_publish  # noqa: E402

__all__ = [
    "DATA_TERMS", "DATASET_IDS", "IMAGE_EXTENSIONS", "PUBLISHED_FILES", "PUBLISHED_PATTERNS", "REPO_ROOT",
    "Checkpoints", "HelpFormatter", "ImageFolder", "TrainState", "add_common_args", "data_names", "data_terms",
    "datasets_of", "discover_images", "hardware_name", "jsonable", "load_style_image", "loader_configuration",
    "logger", "make_accelerator", "parse_args", "placeholder_repo_id", "prepare_for_publishing", "printable",
    "public_name", "public_options", "publish", "random_resized_crop", "run_script", "save_and_publish",
    "save_grid", "speed_line", "train_loop", "validation_images",
]
