#!/usr/bin/env python
"""Train the decoders of an any-painting style network (multi-level WCT) and publish it.

    accelerate launch train/train_arbitrary.py --data ../shared/data/photos \\
        --output_dir outputs/arbitrary --push_to_hub --hub_model_id user/arbitrary

The frozen VGG16 encoder comes from the prepared loss-network weights (`fst prepare-vgg`)
and is stored in the published file, so the model is self-contained. Each decoder learns to
invert the encoder from its level: the loss is the pixel MSE of the reconstruction plus
``--feature_weight`` times the MSE between the reconstruction's features and the photo's
(relative to the features' mean square). Only photos are needed: the style comes from a
painting's feature statistics at run time. Runs unchanged on CPU, one GPU or several.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train import common  # noqa: E402
from fst import imageio  # noqa: E402
from fst.arbitrary import ARCHITECTURES, LEVEL_CHANNELS, ArbitraryStyle  # noqa: E402
from fst.errors import ConfigError  # noqa: E402
from fst.vgg import describe, load_vgg16, prepare_vgg16  # noqa: E402

#: Paintings of shared/data used for the sample grid (never for training).
DEFAULT_SAMPLE_STYLES = ("starry_night", "the_scream", "composition_vii")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=common.HelpFormatter)
    g = parser.add_argument_group("network")
    g.add_argument("--arch", choices=sorted(ARCHITECTURES), default=None,
                   help="network variant (default: wct, or the --init_from network's)")
    g.add_argument("--levels", nargs="+", choices=sorted(LEVEL_CHANNELS, reverse=True), default=None,
                   help="encoder levels with a decoder, coarse to fine (overrides the variant's)")
    g.add_argument("--decoder_width", type=float, default=None,
                   help="decoder channels relative to VGG16's (overrides the variant's)")
    g.add_argument("--style_size", type=int, default=512,
                   help="inference: longer side a painting is resized to (stored in config.json)")
    g.add_argument("--init_from", type=Path, default=None,
                   help="start from this trained model folder (same structure) instead of random decoders")
    g.add_argument("--train_levels", nargs="+", choices=sorted(LEVEL_CHANNELS, reverse=True), default=None,
                   help="train only these levels' decoders (default: all); the others stay as they are. "
                        "The shallow decoders are cheap to train and converge best with a larger --lr")
    g = parser.add_argument_group("loss")
    g.add_argument("--feature_weight", type=float, default=1.0,
                   help="weight of the feature reconstruction loss against the pixel loss")
    g.add_argument("--vgg_weights", type=Path, default=None,
                   help="prepared VGG16 safetensors (default: the cache; see `fst prepare-vgg`)")
    g.add_argument("--sample_styles", type=Path, nargs="*", default=None,
                   help="paintings for the sample grid (default: three of ../shared/data/styles when present)")
    g.add_argument("--license", default="mit", help="license of the published model card")
    common.add_common_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_script(build_parser(), train, argv)


def build_model(args: argparse.Namespace, loss_network: str, normalisation: str) -> ArbitraryStyle:
    """The network the options describe, with the prepared VGG16 as its encoder."""
    fields: dict[str, Any] = {"arch": args.arch} if args.arch else {}
    if args.levels or args.decoder_width is not None:   # a custom variant: no arch name
        variant = ARCHITECTURES[args.arch or "wct"]
        fields = {"levels": args.levels or variant["levels"],
                  "decoder_width": args.decoder_width if args.decoder_width is not None else variant["decoder_width"]}
    if args.init_from is not None:
        return continued_model(ArbitraryStyle.from_pretrained(args.init_from), fields, args)
    model = ArbitraryStyle(**(fields or {"arch": "wct"}), normalisation=normalisation, style_size=args.style_size,
                           loss_network=loss_network, training=common.public_options(args))
    vgg = load_vgg16(args.vgg_weights).state_dict()
    model.net.encoder.load_state_dict({key: vgg[key] for key in model.net.encoder.state_dict()}, strict=True)
    return model


def continued_model(start: ArbitraryStyle, fields: dict[str, Any], args: argparse.Namespace) -> ArbitraryStyle:
    """``start``, or a network of the variant ``fields`` name made of its tensors: a subset of its
    levels keeps their decoders and the encoder up to the deepest one (e.g. ``--arch wct2`` from
    a ``wct`` network). A level ``start`` has no decoder for is an error."""
    config = start.config.to_dict()
    if not fields or (fields.get("arch") == config["arch"] and "levels" not in fields):
        return start
    levels = fields.get("levels") or ARCHITECTURES[fields["arch"]]["levels"]
    missing = sorted(set(levels) - set(start.config.levels))
    if missing:
        raise ConfigError(f"--init_from {args.init_from} has no decoder for {', '.join(missing)} "
                          f"(its levels: {', '.join(start.config.levels)})")
    model = ArbitraryStyle({**config, "arch": None, "levels": None, "decoder_width": None, **fields,
                            "style_size": args.style_size})
    tensors = start.state_dict()
    model.load_state_dict({key: tensors[key] for key in model.state_dict()}, strict=True)
    return model


def reconstruction_loss(features: dict[str, torch.Tensor], decoded: dict[str, torch.Tensor], photos: torch.Tensor,
                        encoder, feature_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over levels of pixel MSE + feature_weight x relative feature MSE."""
    total = photos.new_zeros(())
    logs: dict[str, torch.Tensor] = {}
    for level, image in decoded.items():
        pixel = F.mse_loss(image, photos)
        target = features[level]
        again = encoder(image, [level])[level]
        feature = F.mse_loss(again, target) / target.pow(2).mean().clamp(min=1e-8)
        total = total + pixel + feature_weight * feature
        logs[f"{level}_pixel"] = pixel
        logs[f"{level}_feature"] = feature
    logs["loss"] = total
    return total, logs


def sample_styles(args: argparse.Namespace) -> list[Path]:
    if args.sample_styles is not None:
        return list(args.sample_styles)
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "styles"
    return [folder / f"{name}.jpg" for name in DEFAULT_SAMPLE_STYLES if (folder / f"{name}.jpg").is_file()]


def train(args: argparse.Namespace) -> int:
    if not args.feature_weight >= 0:
        raise ConfigError(f"--feature_weight must be >= 0, got {args.feature_weight}")
    accelerator = common.make_accelerator(args, "fst-arbitrary")
    paths = common.discover_images(args.data)
    meta = describe(prepare_vgg16(args.vgg_weights))   # at once when they are prepared already
    model = build_model(args, meta.get("source", "unknown"), meta.get("normalisation", "caffe"))
    stride = model.net.total_stride
    if args.image_size % stride:
        raise ConfigError(f"--image_size must be a multiple of {stride} for levels {model.config.levels}")
    model.net.encoder.requires_grad_(False)
    trained = args.train_levels or model.net.levels
    unknown = sorted(set(trained) - set(model.net.levels))
    if unknown:
        raise ConfigError(f"--train_levels {', '.join(unknown)}: the network has no such level "
                          f"(its levels: {', '.join(model.net.levels)})")
    for level, decoder in model.net.decoders.items():
        decoder.requires_grad_(level in trained)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    dataset = common.ImageFolder(paths, args.image_size, seed=args.seed)
    validation = common.validation_images(args.validation_images, None) or \
        [dataset[i]["image"][None] for i in range(min(4, len(dataset)))]
    paintings = [imageio.read_image(path) for path in sample_styles(args)]

    def compute_loss(batch, prepared_model):
        photos = batch["image"]
        net = accelerator.unwrap_model(prepared_model).net
        with torch.no_grad():
            features = net.encoder(photos, trained)
        decoded = {level: net.decoders[level](features[level]) for level in trained}
        return reconstruction_loss(features, decoded, photos, net.encoder, args.feature_weight)

    def sample_grid(step: int) -> Path:
        net = accelerator.unwrap_model(model)
        net.eval()
        rows = [[net.forward(img)[net.config.levels[0]].clamp(0, 1) for img in validation]]
        rows += [[net.stylize(img, style=painting) for img in validation] for painting in paintings]
        net.train()
        return common.save_grid([validation, *rows], args.output_dir / "samples" / f"step-{step:06d}.png")

    if args.max_steps == 0:   # an export: --init_from's network with the levels asked for, as it is
        if args.init_from is None:
            raise ConfigError("--max_steps 0 exports an --init_from network (e.g. a subset of its levels); "
                              "give --init_from")
        state = common.TrainState()
    else:
        state = common.train_loop(args, accelerator, model, optimizer, dataset, compute_loss, sample_grid)
    if accelerator.is_main_process:
        finish(args, accelerator.unwrap_model(model), state, len(paths), sample_grid, paintings)
    accelerator.end_training()
    return 0


def finish(args, model: ArbitraryStyle, state, num_images: int, sample_grid, paintings) -> None:
    """Write the Hub-ready folder (weights, config, card, samples); push it."""
    model.eval()
    started = ArbitraryStyle.from_pretrained(args.init_from) if args.init_from else None
    folder = args.output_dir
    grid = sample_grid(state.step)
    imageio.save_image(imageio.read_image(grid), folder / "samples.jpg", quality=85)
    sources = ", ".join(f"`{d}`" for d in common.data_names(args.data))
    decoders = sum(p.numel() for p in model.net.decoders.parameters())
    card = dict(
        license=args.license, title="Any painting as the style (multi-level WCT)", sample_image="samples.jpg",
        repo_id=args.hub_model_id or common.placeholder_repo_id(folder), arch=model.config.arch or "custom",
        levels=model.config.levels, decoder_width=model.config.decoder_width, style_size=model.config.style_size,
        num_parameters=sum(p.numel() for p in model.parameters()), decoder_parameters=decoders,
        data_description=f"{num_images} photos from {sources}", data_terms=common.data_terms(args.data),
        datasets=common.datasets_of(args.data), loss_network=model.config.loss_network,
        hyperparameters={"batch_size": args.batch_size, "image_size": args.image_size, "lr": args.lr,
                         "feature_weight": args.feature_weight, "seed": args.seed,
                         "mixed_precision": str(args.mixed_precision or "no")},
        steps=state.step, train_seconds=state.elapsed_seconds, hardware=common.hardware_name(),
        final_losses=state.last_losses, quality=None, num_images=num_images,
        trained_levels=args.train_levels or model.config.levels,
        started_from=f"`{common.public_name(args.init_from)}`, a network of levels {', '.join(started.config.levels)}"
        + (f" trained for {started.config.training.get('max_steps')} steps" if started.config.training else "")
        if started is not None else None,
        speed=common.speed_line(lambda image: model.stylize(image, style=paintings[0] if paintings else image),
                                f"eager fp32, {len(model.config.levels)} levels"),
    )
    common.save_and_publish(args, model, card, template="arbitrary")


if __name__ == "__main__":
    sys.exit(main())
