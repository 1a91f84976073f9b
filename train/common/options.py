"""Command-line options every training script shares, a ``--config`` file of defaults, and the
script entry point (huge pages, parsing, FstError -> one ``error:`` line)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from fst.errors import FstError


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every training script shares (data, schedule, checkpoints, Hub, tracking)."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", type=Path, nargs="+", required=True,
                   help="folder(s) of training images (searched recursively)")
    g.add_argument("--image_size", type=int, default=256, help="training crop size in pixels")
    g.add_argument("--validation_images", type=Path, nargs="*", default=None,
                   help="images (or a folder) rendered into a sample grid during training")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes")
    g = parser.add_argument_group("schedule")
    g.add_argument("--batch_size", type=int, default=4, help="images per device per step")
    g.add_argument("--epochs", type=int, default=2, help="passes over the data (ignored with --max_steps)")
    g.add_argument("--max_steps", type=int, default=None, help="total optimizer steps (overrides --epochs)")
    g.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1, help="micro-batches per optimizer step")
    g.add_argument("--seed", type=int, default=42, help="random seed (offset per process)")
    g.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None,
                   help="mixed precision (default: from `accelerate config`)")
    g.add_argument("--compile", action="store_true", help="torch.compile the trained network")
    g = parser.add_argument_group("output and checkpoints")
    g.add_argument("--output_dir", type=Path, default=Path("outputs/model"), help="where the model is written")
    g.add_argument("--checkpointing_steps", type=int, default=500, help="save a checkpoint every N steps")
    g.add_argument("--checkpoints_total_limit", type=int, default=2, help="keep the last K checkpoints")
    g.add_argument("--resume_from_checkpoint", default=None,
                   help="'latest' or a checkpoint folder to continue from")
    g.add_argument("--validation_steps", type=int, default=250, help="write a sample grid every N steps")
    g.add_argument("--log_steps", type=int, default=10, help="log metrics every N steps")
    g = parser.add_argument_group("publishing")
    g.add_argument("--push_to_hub", action="store_true", help="upload the final model to the Hub")
    g.add_argument("--hub_model_id", default=None, help="Hub repo id, e.g. user/starry")
    g.add_argument("--hub_private", action="store_true", help="create the Hub repo as private")
    g.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in user's)")
    g.add_argument("--report_to", choices=["tensorboard", "trackio", "none"], default="none",
                   help="experiment tracker")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML or JSON file of option values (command-line flags override it)")


def run_script(parser: argparse.ArgumentParser, train: Callable[[argparse.Namespace], int],
               argv: Sequence[str] | None = None,
               check: Callable[[argparse.ArgumentParser, argparse.Namespace], None] | None = None) -> int:
    """A training script's ``main``: huge pages on (before the first tensor: PyTorch reads the
    switch once), options parsed (``check`` may refine them or call ``parser.error``), then
    ``train(args)``; an FstError becomes one ``error:`` line and exit code 2."""
    from fst.settings import enable_huge_pages

    enable_huge_pages()
    args = parse_args(parser, argv)
    if check is not None:
        check(parser, args)
    try:
        return train(args)
    except FstError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse argv, taking defaults from ``--config`` (YAML/JSON) when given."""
    config_only = argparse.ArgumentParser(add_help=False)
    config_only.add_argument("--config", type=Path, default=None)
    pre, _ = config_only.parse_known_args(argv)
    if pre.config is not None:
        values = _read_config_file(parser, pre.config)
        parser.set_defaults(**values)
        for action in parser._actions:   # a required option given in the file is no longer required
            if action.dest in values:
                action.required = False
    args = parser.parse_args(argv)
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id user/name")
    for name in ("image_size", "batch_size", "gradient_accumulation_steps", "checkpointing_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default shown once: not for options without one, nor
    when the help text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


def _read_config_file(parser: argparse.ArgumentParser, path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        parser.error(f"cannot read --config {path}: {exc}")
    if not isinstance(values, dict):
        parser.error(f"--config {path} must hold a mapping of option: value")
    known = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(known))
    if unknown:
        parser.error(f"--config {path}: unknown options {', '.join(unknown)}")
    def convert(action: argparse.Action, value: Any) -> Any:
        if action.nargs in ("+", "*"):
            return [convert_one(action, v) for v in (value if isinstance(value, list) else [value])]
        return convert_one(action, value)

    def convert_one(action: argparse.Action, value: Any) -> Any:
        return Path(value) if action.type is Path and isinstance(value, str) else value

    return {key: convert(known[key], value) for key, value in values.items()}
