"""Training infrastructure shared by train.py (styles) and train_colorize.py.

Data discovery and loading, the accelerate loop with progress, atomic
checkpoints and exact resume, validation grids, and publishing to the Hub.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from torch.utils.data import DataLoader, Dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `accelerate launch train/x.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from fst import imageio, settings  # noqa: E402
from fst.errors import DataError, FstError  # noqa: E402

logger = logging.getLogger("fst.train")
#: With FST_DEBUG_SHARDS=1 (fst.settings.debug_shards) every process logs the sample indices of each batch
#: it trains on and, at the end, a digest of its weights: the shards are disjoint, and the replicas agree.
shard_logger = logging.getLogger("fst.train.shards")

IMAGE_EXTENSIONS = imageio.IMAGE_EXTENSIONS
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "fst_train_state.json"


# --------------------------------------------------------------------------- options
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


# ------------------------------------------------------------------------------ data
def printable(path: Path | str) -> str:
    """A path safe to print: control characters escaped."""
    return str(path).encode("unicode_escape").decode("ascii") if re.search(r"[\x00-\x1f\x7f]", str(path)) \
        else str(path)


def discover_images(root: Path | Sequence[Path], *, check: bool = True) -> list[Path]:
    """All readable images under ``root`` (a folder or several; recursively, sorted);
    unreadable ones are skipped with a warning naming each. Raises DataError when none is found."""
    if not isinstance(root, (str, Path)):
        return [path for folder in root for path in discover_images(folder, check=check)]
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data {printable(root)} is not a folder")
    candidates, skipped = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append((path, "not an image file"))
        else:
            candidates.append(path)
    found = []
    for path in candidates:
        try:
            if check:
                imageio.read_image(path)
            found.append(path)
        except FstError as exc:
            skipped.append((path, str(exc)))
            logger.warning("skipping %s: %s", printable(path), exc)
    if not found:
        raise DataError(f"no training images found in {printable(root)} (supported: "
                        f"{' '.join(IMAGE_EXTENSIONS)}); {len(skipped)} other file(s) skipped")
    logger.info("found %d training images in %s (%d files skipped)", len(found), printable(root), len(skipped))
    return found


class ImageFolder(Dataset):
    """Random-resized-crop + flip samples of images; deterministic per (seed, epoch, index)
    so a resumed run sees exactly the data an uninterrupted one would."""

    def __init__(self, paths: Sequence[Path], size: int, seed: int = 0, scale: tuple[float, float] = (0.5, 1.0)):
        self.paths = list(paths)
        self.size = size
        self.seed = seed
        self.scale = scale
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load(self, index: int) -> Image.Image:
        """The image at ``index``; a file that became unreadable is replaced by the next one."""
        for offset in range(len(self.paths)):
            path = self.paths[(index + offset) % len(self.paths)]
            try:
                return imageio.read_image(path)
            except FstError as exc:
                logger.warning("skipping unreadable %s: %s", printable(path), exc)
        raise DataError("none of the training images can be read any more")

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image = self.load(index)
        return {"image": random_resized_crop(image, self.size, rng, self.scale), "index": index}


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator,
                        scale: tuple[float, float] = (0.5, 1.0)) -> torch.Tensor:
    """A random square crop covering ``scale`` of the shorter side, resized to ``size``,
    randomly flipped; works for any image size (a 1x1 image is simply upscaled)."""
    width, height = image.size
    short = min(width, height)
    side = max(1, int(round(short * math.sqrt(rng.uniform(*scale)))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    tensor = torch.from_numpy(np.asarray(crop, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
    return tensor.flip(-1) if rng.random() < 0.5 else tensor


def load_style_image(source: str, size: int | None) -> Image.Image:
    """A style image from a path or an http(s) URL, its longer side resized to ``size``."""
    if re.match(r"^https?://", source):
        data = _download_bytes(source, limit=50 << 20)
        image = imageio.read_image(data)
    else:
        image = imageio.read_image(Path(source))
    if size:
        scale = size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return image


def _download_bytes(url: str, limit: int) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - user-given URL by design
            data = response.read(limit + 1)
    except OSError as exc:
        raise DataError(f"cannot download the style image {url}: {exc}") from None
    if len(data) > limit:
        raise DataError(f"style image at {url} is larger than {limit >> 20} MB")
    return data


def validation_images(paths: Sequence[Path] | None, default_dir: Path | None, count: int = 4,
                      size: int = 256) -> list[torch.Tensor]:
    """Validation images (1x3xHxW, shorter side ``size``) from files or folders."""
    files: list[Path] = []
    for path in (paths or ([default_dir] if default_dir else [])):
        files += discover_images(path, check=False)[:count] if Path(path).is_dir() else [Path(path)]
    out = []
    for path in files[:count]:
        image = imageio.read_image(path)
        scale = size / min(image.size)
        image = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((max(0, left), max(0, top), max(0, left) + size, max(0, top) + size))
        out.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255)
    return out


def save_grid(rows: Sequence[Sequence[torch.Tensor]], path: Path) -> Path:
    """Save rows of equally sized 1x3xHxW images as one JPEG/PNG grid (atomically)."""
    row_images = [torch.cat([img[0].float().clamp(0, 1).cpu() for img in row], dim=2) for row in rows]
    grid = torch.cat(row_images, dim=1)
    array = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    return imageio.save_image(array, path, quality=85)


# ----------------------------------------------------------------------- checkpoints
@dataclasses.dataclass
class TrainState:
    """Where training stands; saved inside every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_seconds: float = 0.0
    last_losses: dict[str, float] = dataclasses.field(default_factory=dict)


class Checkpoints:
    """Atomic ``checkpoint-N`` folders under ``output_dir/checkpoints``.

    A checkpoint is written to ``checkpoint-N.tmp`` and renamed only once complete,
    so a crash mid-write never leaves a folder that resume would pick up.
    """

    def __init__(self, output_dir: Path, keep: int):
        self.root = Path(output_dir) / "checkpoints"
        self.keep = max(1, keep)

    def complete(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.root.iterdir()
                 if (m := CHECKPOINT_RE.match(p.name)) and (p / STATE_FILE).is_file()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, accelerator, state: TrainState) -> Path:
        final = self.root / f"checkpoint-{state.step}"
        tmp = self.root / f"checkpoint-{state.step}.tmp"
        try:
            if accelerator.is_main_process:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
            accelerator.wait_for_everyone()
            accelerator.save_state(str(tmp))
            if accelerator.is_main_process:
                (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)))
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
                self._prune()
        except CHECKPOINT_WRITE_ERRORS as exc:
            reason = _write_failure(exc, self.root)   # measured before the partial folder is removed
            shutil.rmtree(tmp, ignore_errors=True)
            raise FstError(f"could not write checkpoint {final} ({reason}); "
                           "the previous checkpoint is kept. Free disk space and resume.") from None
        accelerator.wait_for_everyone()
        return final

    def _prune(self) -> None:
        for stale in self.complete()[:-self.keep]:
            shutil.rmtree(stale, ignore_errors=True)
        for leftover in self.root.glob("checkpoint-*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)

    def resolve(self, spec: str | None) -> Path | None:
        """The checkpoint to resume from (``latest``, a path, or None)."""
        if not spec:
            return None
        if spec == "latest":
            latest = self.latest()
            if latest is None:
                logger.info("no complete checkpoint in %s; starting from scratch", self.root)
            return latest
        path = Path(spec)
        if not (path / STATE_FILE).is_file():
            raise FstError(f"{path} is not a complete checkpoint (no {STATE_FILE}); "
                           "use --resume_from_checkpoint latest")
        return path


#: What a full disk raises while a checkpoint is written: OSError (ENOSPC) from Python's own writes,
#: SafetensorError ("... (os error 28)") from the weights, RuntimeError ("unexpected pos ...") from torch.save.
CHECKPOINT_WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)
#: Below this much free space a failed checkpoint write is reported as a full disk.
LOW_DISK_BYTES = 64 << 20


def _write_failure(exc: BaseException, folder: Path) -> str:
    """Why a checkpoint write failed, in words (torch.save's message does not say the disk is full)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if "os error 28" in str(exc) or (free is not None and free < LOW_DISK_BYTES):
        return "No space left on device" + (f": {free >> 10} KiB free in {folder}" if free is not None else "")
    return f"{type(exc).__name__}: {str(exc)[:200]}"


# ------------------------------------------------------------------------- the loop
def make_accelerator(args: argparse.Namespace, tracker_project: str):
    """An Accelerator with a seedable sampler (exact resume) and the chosen tracker."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    from fst.runtime import distributed_on_cpu, single_process_launch_note

    accelerator = Accelerator(
        cpu=distributed_on_cpu(),   # several processes and no GPU: gloo on the CPU, not N lone processes
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(args.output_dir),
                                            logging_dir=str(args.output_dir / "logs")),
        dataloader_config=loader_configuration(args.seed),
    )
    set_seed(args.seed, device_specific=True)  # a different stream per process
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.debug_shards():
        shard_logger.setLevel(logging.DEBUG)
    note = single_process_launch_note()
    if note:
        logger.warning(note)
    if accelerator.is_main_process:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        if args.report_to != "none":
            flat = {k: v for k, v in jsonable(vars(args)).items() if not isinstance(v, list)}  # trackers: scalars
            accelerator.init_trackers(tracker_project, config=flat)
    return accelerator


def loader_configuration(seed: int):
    """accelerate's data-loader settings: a seedable sampler (exact resume) that shuffles with ``seed`` on
    every process, so that the processes' shards of an epoch are disjoint. (Without ``data_seed`` the
    sampler takes torch's seed, which ``set_seed(device_specific=True)`` makes differ per process: each
    process would shuffle differently and their shards would overlap.)"""
    from accelerate.utils import DataLoaderConfiguration

    options: dict[str, Any] = {"use_seedable_sampler": True}
    if "data_seed" in DataLoaderConfiguration.__dataclass_fields__:   # accelerate 1.0 has none (added late 2024)
        options["data_seed"] = seed
    return DataLoaderConfiguration(**options)


def jsonable(value: Any) -> Any:
    """``value`` with Paths and other objects turned into strings, recursively (for JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


DATA_TERMS = {
    "imagenet_sample": "ImageNet terms of access (non-commercial research/educational use)",
    "bsds500": "BSDS500: UC Berkeley, research and educational (non-commercial) use",
}


def _data_names(data: Path | Sequence[Path]) -> list[str]:
    folders = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    names = [part for folder in folders for part in folder.resolve().parts]   # e.g. .../bsds500/train
    return names + [p.name for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_dir()]


def data_terms(data: Path | Sequence[Path]) -> str:
    """The terms of use of known training sets found in ``data`` (for model cards)."""
    names = _data_names(data)
    found = [terms for key, terms in DATA_TERMS.items() if any(key in name for name in names)]
    return "; ".join(found) or "see the terms of the training photos' source"


#: Hub dataset ids of the known training sets: a card's ``datasets:`` names only real Hub datasets
#: (the ImageNet sample is drawn from ILSVRC-2012; BSDS500 has no canonical Hub dataset).
DATASET_IDS = {"imagenet_sample": "ILSVRC/imagenet-1k"}
#: Options that only make sense on the training machine: never written into a published folder.
LOCAL_OPTIONS = ("hub_token", "config", "output_dir", "resume_from_checkpoint")


def datasets_of(data: Path | Sequence[Path]) -> list[str]:
    """Hub dataset ids of the known training sets in ``data`` (the card's ``datasets`` field; may be empty)."""
    names = dict.fromkeys(_data_names(data))
    return list(dict.fromkeys(DATASET_IDS[name] for name in names if name in DATASET_IDS))


def public_name(path: str | Path) -> str:
    """How a local path appears in a published card or config: from a known training set's folder
    on (``bsds500/train``), else just its file or folder name; URLs are kept as they are."""
    text = str(path)
    if re.match(r"^https?://", text):
        return text
    parts = Path(text).parts
    start = next((i for i, part in enumerate(parts) if part in DATA_TERMS), len(parts) - 1)
    return "/".join(parts[start:]) if parts else text


def data_names(data: Path | Sequence[Path]) -> list[str]:
    """The training folders as published (see :func:`public_name`)."""
    return [public_name(d) for d in ([data] if isinstance(data, (str, Path)) else data)]


def public_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options as stored in config.json: JSON values, local paths reduced to their
    names (:func:`public_name`), and options that only matter on this machine left out."""
    def public(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [public(v) for v in value]
        if isinstance(value, Path) or (isinstance(value, str) and _is_local_path(value)):
            return public_name(value)
        return value

    return jsonable({key: public(value) for key, value in vars(args).items() if key not in LOCAL_OPTIONS})


def _is_local_path(text: str) -> bool:
    if re.match(r"^https?://", text):
        return False
    return text.startswith(("/", "./", "../", "~")) or Path(text).exists()


def placeholder_repo_id(folder: Path) -> str:
    """The repo id a card shows until the model is published with ``--hub_model_id``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).name).strip("-.") or "model"
    return f"your-name/{name}"


def speed_line(run: Callable[[torch.Tensor], Any], note: str, size: int = 512) -> str:
    """Best of 3 timings of ``run`` on a random size x size image, as a model-card sentence."""
    image = torch.rand(1, 3, size, size)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        run(image)
        timings.append(time.perf_counter() - start)
    return (f"{min(timings) * 1000:.0f} ms per {size}x{size} image on {hardware_name()} "
            f"(torch {torch.__version__}, {note}).")


def hardware_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads > 1 else ''})"


LossFn = Callable[[dict[str, Any], torch.nn.Module], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def train_loop(
    args: argparse.Namespace,
    accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    dataset: ImageFolder,
    compute_loss: LossFn,
    on_validation: Callable[[int], None] | None = None,
    collate_fn: Callable | None = None,
) -> TrainState:
    """Run the optimisation with progress, tracking, checkpoints and exact resume."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=len(dataset) >= args.batch_size,
                        num_workers=args.dataloader_num_workers, collate_fn=collate_fn,
                        generator=torch.Generator().manual_seed(args.seed))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps_per_epoch = max(1, math.ceil(len(loader) / args.gradient_accumulation_steps))
    max_steps = args.max_steps or args.epochs * steps_per_epoch
    checkpoints = Checkpoints(args.output_dir, args.checkpoints_total_limit)
    state = TrainState()
    resume = checkpoints.resolve(args.resume_from_checkpoint)
    if resume is not None:
        accelerator.load_state(str(resume))
        state = TrainState(**json.loads((resume / STATE_FILE).read_text()))
        logger.info("resumed from %s at step %d", resume, state.step)
        set_seed(args.seed + state.step, device_specific=True)
    elif args.resume_from_checkpoint is None:
        set_seed(args.seed, device_specific=True)

    bar = tqdm(total=max_steps, initial=state.step, disable=not accelerator.is_local_main_process,
               desc="training", unit="step", dynamic_ncols=True)
    started = time.perf_counter() - state.elapsed_seconds
    images_seen, window_start = 0, time.perf_counter()
    model.train()
    while state.step < max_steps:
        dataset.set_epoch(state.epoch)
        loader.set_epoch(state.epoch)
        batches = accelerator.skip_first_batches(loader, state.batch_in_epoch) if state.batch_in_epoch else loader
        for batch in batches:
            with accelerator.accumulate(model):
                loss, terms = compute_loss(batch, model)  # the prepared (e.g. DDP-wrapped) model
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            state.batch_in_epoch += 1
            images_seen += len(batch["index"]) * accelerator.num_processes
            if shard_logger.isEnabledFor(logging.DEBUG):
                shard_logger.debug("process %d/%d epoch %d batch %d indices %s", accelerator.process_index,
                                   accelerator.num_processes, state.epoch, state.batch_in_epoch,
                                   [int(i) for i in batch["index"]])
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            bar.update(1)
            if state.step % args.log_steps == 0 or state.step == max_steps:
                logs = {k: accelerator.reduce(v.detach().float(), "mean").item() for k, v in terms.items()}
                rate = images_seen / max(1e-9, time.perf_counter() - window_start)
                images_seen, window_start = 0, time.perf_counter()
                state.last_losses = logs
                bar.set_postfix({**{k: f"{v:.3g}" for k, v in logs.items()}, "img/s": f"{rate:.1f}"})
                accelerator.log({**logs, "images_per_second": rate}, step=state.step)
            if on_validation and accelerator.is_main_process and (state.step % args.validation_steps == 0):
                on_validation(state.step)
            if state.step % args.checkpointing_steps == 0 or state.step == max_steps:
                state.elapsed_seconds = time.perf_counter() - started
                checkpoints.save(accelerator, _next_position(state, len(loader)))
            if state.step >= max_steps:
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
    bar.close()
    state.elapsed_seconds = time.perf_counter() - started
    accelerator.wait_for_everyone()
    if shard_logger.isEnabledFor(logging.DEBUG):
        shard_logger.debug("process %d/%d weights %s", accelerator.process_index, accelerator.num_processes,
                           parameter_digest(accelerator.unwrap_model(model)))
    return state


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the parameters (names and values; not the buffers: batch-norm running statistics
    follow each process's own batches) - equal on every process when the replicas agree."""
    import hashlib

    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters(), key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _next_position(state: TrainState, batches_per_epoch: int) -> TrainState:
    """The state to store: where the *next* batch comes from (epoch rolled over at its end)."""
    if state.batch_in_epoch >= batches_per_epoch:
        return dataclasses.replace(state, epoch=state.epoch + 1, batch_in_epoch=0)
    return dataclasses.replace(state)


# ------------------------------------------------------------------------ publishing
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
