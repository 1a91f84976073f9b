#!/usr/bin/env python
"""Train an automatic colorization network (Iizuka et al. 2016) on colour photos and publish it.

    accelerate launch train/train_colorize.py --data ../shared/data/photos \\
        --output_dir outputs/colorizer --push_to_hub --hub_model_id user/colorizer

The loss is the paper's: MSE between predicted and true a*b* (both normalised to
[0, 1]) plus ``--classification_weight`` (1/300) times the cross-entropy of the
auxiliary classification head. Class labels come from ImageNet-style file names
(``<synset>_<name>.jpg``, indexed by ``imagenet_classes.csv``) or from folder
names; images without a label only train the colour loss. Grayscale photos are
skipped. Runs unchanged on CPU, one GPU or several (see `accelerate config`).
"""
from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train import colour_classes, common  # noqa: E402
from fst import imageio, metrics  # noqa: E402
from fst.color import rgb_to_lab, rgb_to_lab_np, split_lab  # noqa: E402
from fst.colorizer import ARCHITECTURES, Colorizer, ColorizerConfig, normalize_ab, normalize_lightness  # noqa: E402
from fst.errors import DataError, FstError  # noqa: E402

IGNORE_INDEX = -100          # label of images without a class: no classification loss for them
GRAY_MAX_CHROMA = 2.0        # an image whose 99th-percentile chroma C*ab is below this is grayscale
SCAN_SIZE = 64               # images are scanned (grayscale test, mean a*b*) at this size
CLASS_INDEX_NAME = "imagenet_classes.csv"
SYNSET_RE = re.compile(r"^(n\d{8})_")
DEFAULT_LR = {"adadelta": 1.0, "adam": 1e-3}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=common.HelpFormatter)
    g = parser.add_argument_group("colorizer")
    g.add_argument("--arch", choices=sorted(ARCHITECTURES), default="iizuka", help="network variant")
    g.add_argument("--width", type=float, default=None, help="channel multiplier (overrides the variant's)")
    g.add_argument("--labels", choices=["auto", "synset", "folder", "none"], default="auto",
                   help="class labels: ImageNet synset file names, parent folder names, or none "
                        "(auto: synsets when a class index is found, else folders)")
    g.add_argument("--class_index", type=Path, default=None,
                   help=f"CSV with index,synset columns (default: {CLASS_INDEX_NAME} in --data or a parent)")
    g.add_argument("--classification_weight", type=float, default=1 / 300,
                   help="weight alpha of the classification loss (0 disables the head)")
    g.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adadelta",
                   help="adadelta as in the paper (lr 1.0), or adam (lr 1e-3)")
    g.add_argument("--max_side", type=int, default=512,
                   help="inference: chrominance is predicted at most at this size (stored in config.json)")
    g.add_argument("--num_validation", type=int, default=8,
                   help="photos held out for sample grids and the card's metrics (without --validation_images)")
    g.add_argument("--vgg_weights", type=Path, default=None,
                   help="vgg16-color: prepared VGG16 safetensors for the encoder (default: the cache; "
                        "see `fst prepare-vgg`)")
    g.add_argument("--rebalance", type=float, default=1.0,
                   help="vgg16-color: share of the uniform distribution in the class rebalancing mix: 0.5 as "
                        "in Zhang et al. (vivid, less faithful colours), 1 for none (faithful; the default)")
    g.add_argument("--feature_cache", type=Path, default=None,
                   help="vgg16-color: a file to keep the encoded training photos in (safetensors), so a "
                        "rerun or a resumed run skips the encoder")
    g.add_argument("--license", default="mit", help="license of the published model card")
    common.add_common_args(parser)
    parser.set_defaults(image_size=224, batch_size=8, lr=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_script(build_parser(), train, argv, check=_check_options)


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.batch_size < 2:
        parser.error("--batch_size must be >= 2 (batch norm after the fully connected layers)")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]


# ------------------------------------------------------------------------------ data
def scan_colour_images(paths: Sequence[Path]) -> tuple[list[Path], torch.Tensor, int]:
    """The readable colour images, the mean a*b* over them, and how many were grayscale.

    Each image is decoded once, at :data:`SCAN_SIZE`: grayscale photos (stored as
    RGB, R = G = B) teach nothing about colour and are skipped.
    """
    colour, ab_sum, pixels, gray = [], np.zeros(2), 0, 0
    for path in paths:
        try:
            image = imageio.read_image(path)
        except FstError as exc:
            common.logger.warning("skipping %s: %s", common.printable(path), exc)
            continue
        image.thumbnail((SCAN_SIZE, SCAN_SIZE))
        ab = rgb_to_lab_np(np.asarray(image))[..., 1:].reshape(-1, 2)
        if np.percentile(np.hypot(ab[:, 0], ab[:, 1]), 99) < GRAY_MAX_CHROMA:
            gray += 1
            common.logger.info("skipping grayscale %s", common.printable(path))
            continue
        colour.append(path)
        ab_sum += ab.sum(axis=0)
        pixels += len(ab)
    if not colour:
        raise DataError(f"none of the {len(paths)} images is a colour photo; a colorizer needs colour photos")
    return colour, torch.from_numpy(ab_sum / pixels), gray


def find_class_index(data: Path, explicit: Path | None) -> Path | None:
    """``--class_index``, else ``imagenet_classes.csv`` in the data folder or up to two parents."""
    if explicit is not None:
        if not explicit.is_file():
            raise DataError(f"--class_index {common.printable(explicit)} is not a file")
        return explicit
    for folder in [data, *list(data.resolve().parents)[:2]]:
        if (folder / CLASS_INDEX_NAME).is_file():
            return folder / CLASS_INDEX_NAME
    return None


def read_class_index(path: Path) -> dict[str, int]:
    """synset -> class index from a CSV with ``index`` and ``synset`` columns."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        index = {row["synset"]: int(row["index"]) for row in rows}
    except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read class index {common.printable(path)} (needs index,synset columns): "
                        f"{type(exc).__name__}: {exc}") from None
    if not index or sorted(index.values()) != list(range(len(index))):
        raise DataError(f"class index {common.printable(path)} must number its classes 0..N-1")
    return index


def assign_labels(paths: Sequence[Path], data: Path, mode: str, class_index: Path | None) -> tuple[list[int], int, str]:
    """(label per image, number of classes, description); unlabelled images get IGNORE_INDEX."""
    synsets = [m.group(1) if (m := SYNSET_RE.match(p.name)) else None for p in paths]
    if mode == "auto":
        mode = "synset" if class_index is not None and any(synsets) else "folder"
    if mode == "synset":
        if class_index is None:
            raise DataError(f"--labels synset needs --class_index (no {CLASS_INDEX_NAME} found near --data)")
        index = read_class_index(class_index)
        labels = [index.get(s, IGNORE_INDEX) if s else IGNORE_INDEX for s in synsets]
        return labels, len(index), f"ImageNet synsets of the file names ({class_index.name})"
    if mode == "folder":
        folders = [str(p.parent.relative_to(data)) for p in paths]
        names = sorted(set(folders))
        if len(names) >= 2:
            return [names.index(f) for f in folders], len(names), f"{len(names)} folder names"
    return [IGNORE_INDEX] * len(paths), 0, "none"


class LabelledImages(common.ImageFolder):
    """Random crops of colour photos with their class label (``label``)."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], size: int, seed: int = 0):
        super().__init__(paths, size, seed)
        self.labels = list(labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        label = self.labels[index]
        try:
            image = imageio.read_image(self.paths[index])
        except FstError:
            image, label = self.load(index), IGNORE_INDEX  # a neighbour stands in; its label is unknown here
        crop = common.random_resized_crop(image, self.size, rng, self.scale)
        return {"image": crop, "label": label, "index": index}


# ------------------------------------------------------------------------------ loss
def colorization_loss(model: torch.nn.Module, rgb: torch.Tensor, labels: torch.Tensor | None,
                      classification_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The paper's loss on a batch of sRGB crops (Bx3xHxW in [0, 1]); returns (total, terms)."""
    with torch.no_grad():
        lightness, ab = split_lab(rgb_to_lab(rgb.float()))
    predicted_ab, logits = model(normalize_lightness(lightness))
    colour = F.mse_loss(predicted_ab.float(), normalize_ab(ab))
    classification = torch.zeros((), device=rgb.device)
    if logits is not None and labels is not None and classification_weight > 0:
        # summed and divided by the labelled count: a batch without labels gives 0, not NaN
        labelled = (labels != IGNORE_INDEX).sum().clamp(min=1)
        classification = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX,
                                         reduction="sum") / labelled
    total = colour + classification_weight * classification
    return total, {"loss": total, "colour_mse": colour, "classification": classification}


# --------------------------------------------------------------------------- training
def train(args: argparse.Namespace) -> int:
    accelerator = common.make_accelerator(args, "fst-colorize")
    paths, mean_ab, num_gray = scan_colour_images(common.discover_images(args.data, check=False))
    validation_paths: list[Path] = []
    if not args.validation_images:
        held_out = min(args.num_validation, len(paths) // 5)
        if held_out:
            validation_paths, paths = paths[-held_out:], paths[:-held_out]
    labels, num_classes, label_source = assign_labels(paths, args.data[0], args.labels,
                                                      find_class_index(args.data[0], args.class_index))
    if args.classification_weight <= 0 or not any(label != IGNORE_INDEX for label in labels):
        num_classes = 0  # no head: nothing would train it
    common.logger.info("%d colour images (%d grayscale skipped, %d held out), %d classes from %s; mean ab = %s",
                       len(paths), num_gray, len(validation_paths), num_classes, label_source,
                       [round(v, 2) for v in mean_ab.tolist()])

    hyper = common.public_options(args)
    hyper.update(mean_ab=[round(v, 4) for v in mean_ab.tolist()], labels_from=label_source)
    # A --width other than the variant's builds a custom network: the variant's structure with
    # that width, and a config that names no arch.
    variant = ARCHITECTURES[args.arch]
    structure = (dict(arch=args.arch) if args.width in (None, variant["width"])
                 else {**variant, "width": args.width})
    model = Colorizer(ColorizerConfig(num_classes=num_classes, max_side=args.max_side,
                                      dataset=", ".join(common.data_names(args.data)), training=hyper, **structure))
    if args.compile:
        model.net = torch.compile(model.net)
    if model.config.backbone == "vgg16":   # frozen encoder: train the branches on cached features
        hyper["loss_network"] = colour_classes.load_encoder_weights(model, args.vgg_weights)
        dataset = colour_classes.EncodedCrops(model.net.encode, paths, labels, args.image_size, seed=args.seed,
                                              cache_file=args.feature_cache)
        trained: torch.nn.Module = colour_classes.HeadTrainer(model.net)
        centres = model.net.centres
        ab_samples = colour_classes.sample_ab(dataset, main_process=accelerator.is_main_process)
        weights = colour_classes.class_weights(ab_samples, centres, args.rebalance)

        def compute_loss(batch: dict[str, Any], prepared_model: torch.nn.Module):
            return colour_classes.class_colour_loss(prepared_model, batch, centres, weights,
                                                    args.classification_weight, IGNORE_INDEX)
    else:
        dataset, trained = LabelledImages(paths, labels, args.image_size, seed=args.seed), model

        def compute_loss(batch: dict[str, Any], prepared_model: torch.nn.Module):
            return colorization_loss(prepared_model, batch["image"], batch["label"], args.classification_weight)
    parameters = [p for p in trained.parameters() if p.requires_grad]
    optimizer = (torch.optim.Adadelta(parameters, lr=args.lr, rho=0.95) if args.optimizer == "adadelta"
                 else torch.optim.Adam(parameters, lr=args.lr))
    validation = common.validation_images(args.validation_images or validation_paths, None,
                                          count=max(args.num_validation, 1)) \
        or [dataset[i]["image"][None] for i in range(min(4, len(dataset)))]

    def sample_grid(step: int) -> Path:
        net = accelerator.unwrap_model(model)
        net.eval()
        gray = [grayscale(image) for image in validation]
        outputs = [net.colorize(image) for image in validation]
        net.train()
        return common.save_grid([validation, gray, outputs], args.output_dir / "samples" / f"step-{step:06d}.png")

    state = common.train_loop(args, accelerator, trained, optimizer, dataset, compute_loss, sample_grid)
    if accelerator.is_main_process and model.config.backbone == "vgg16":
        model.eval()
        chosen, rows = colour_classes.choose_temperature(model, validation)
        common.logger.info("annealed-mean temperature %s chosen on %d held-out photos:\n%s", chosen,
                           len(validation), colour_classes.temperature_table(rows, chosen))
    if accelerator.is_main_process:
        finish(args, accelerator.unwrap_model(model), state, validation, mean_ab, len(paths), label_source,
               sample_grid)
    accelerator.end_training()
    return 0


def grayscale(rgb: torch.Tensor) -> torch.Tensor:
    """The L* of an sRGB batch, as a gray sRGB image (what the network sees)."""
    return metrics.gray_baseline(rgb)


# ------------------------------------------------------------------------ publishing
def evaluate(model: Colorizer, images: Sequence[torch.Tensor], mean_ab: torch.Tensor) -> dict[str, dict[str, float]]:
    """PSNR, SSIM, a*b* MSE and colourfulness of the model and both baselines (means over images)."""
    methods = {
        "this model": lambda image: model.colorize(image),
        "gray (a*b* = 0)": metrics.gray_baseline,
        "mean a*b* of the training set": lambda image: metrics.mean_ab_baseline(image, mean_ab),
    }
    scores: dict[str, dict[str, float]] = {}
    for name, method in methods.items():
        rows = []
        for image in images:
            output = method(image).float()
            rows.append([metrics.psnr(output, image).item(), metrics.ssim(output, image).item(),
                         metrics.ab_mse(output, image).item(), metrics.colorfulness(output).item()])
        means = np.mean(rows, axis=0)
        scores[name] = dict(zip(("psnr", "ssim", "ab_mse", "colorfulness"), means.tolist()))
    truth = [metrics.colorfulness(image).item() for image in images]
    scores["ground truth"] = {"psnr": float("inf"), "ssim": 1.0, "ab_mse": 0.0, "colorfulness": float(np.mean(truth))}
    return scores


def quality_table(scores: dict[str, dict[str, float]], count: int) -> str:
    """A markdown table of :func:`evaluate`'s scores."""
    photos = f"{count} validation photo" + ("s" if count != 1 else "")
    lines = [f"Means over {photos} (256x256 centre crops); PSNR/SSIM on sRGB, "
             "a*b* MSE in CIE Lab units, colourfulness of Hasler & Suesstrunk (2003).", "",
             "| Method | PSNR (dB) | SSIM | a*b* MSE | Colourfulness |", "|---|---|---|---|---|"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['ab_mse']:.1f} | {s['colorfulness']:.1f} |")
    return "\n".join(lines)


def finish(args, model: Colorizer, state, validation: Sequence[torch.Tensor], mean_ab: torch.Tensor,
           num_images: int, label_source: str, sample_grid) -> None:
    """Write the Hub-ready folder (weights, config, card, samples); push it."""
    model.eval()
    if hasattr(model.net, "_orig_mod"):
        model.net = model.net._orig_mod
    folder = args.output_dir
    shutil.copyfile(sample_grid(state.step), folder / "samples.jpg")
    sources = ", ".join(f"`{d}`" for d in common.data_names(args.data))
    card = dict(
        license=args.license, title=f"Automatic colorization ({args.arch})",
        sample_image="samples.jpg", repo_id=args.hub_model_id or common.placeholder_repo_id(folder), arch=args.arch,
        width=model.config.width, num_classes=model.config.num_classes, label_source=label_source,
        num_parameters=sum(p.numel() for p in model.parameters()),
        data_description=f"{num_images} colour photos from {sources}",
        data_terms=common.data_terms(args.data),
        datasets=common.datasets_of(args.data), mean_ab=[round(v, 2) for v in mean_ab.tolist()],
        hyperparameters={"optimizer": args.optimizer, "lr": args.lr, "batch_size": args.batch_size,
                         "image_size": args.image_size, "classification_weight": args.classification_weight,
                         "seed": args.seed, "mixed_precision": str(args.mixed_precision or "no")},
        steps=state.step, train_seconds=state.elapsed_seconds, hardware=common.hardware_name(),
        final_losses=state.last_losses, quality=quality_table(evaluate(model, validation, mean_ab), len(validation)),
        speed=common.speed_line(model.colorize, "eager, batch norm not folded"), max_side=model.config.max_side,
        num_images=num_images,
    )
    common.save_and_publish(args, model, card, template="colorizer")


if __name__ == "__main__":
    sys.exit(main())
