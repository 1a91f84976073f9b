#!/usr/bin/env python
"""Train a fast style-transfer network on a folder of photos and publish it.

    accelerate launch train/train.py --style starry.jpg --data photos/ \\
        --output_dir outputs/starry --push_to_hub --hub_model_id user/starry

Runs unchanged on CPU, one GPU, several GPUs (DDP) or nodes: see `accelerate config`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train import common  # noqa: E402
from fst import FastStyle, config_for_arch, imageio  # noqa: E402
from fst.errors import FstError  # noqa: E402
from fst.losses import DEFAULT_STYLE_LAYERS, LossWeights, PerceptualLoss  # noqa: E402
from fst.transformer import ARCHITECTURES  # noqa: E402
from fst.vgg import LAYER_NAMES, describe, load_vgg16, weights_path  # noqa: E402

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = parser.add_argument_group("style")
    g.add_argument("--style", required=True, help="style image: a path or an http(s) URL")
    g.add_argument("--style_name", default=None, help="display name of the style (default: file name)")
    g.add_argument("--style_size", type=int, default=512, help="longer side of the style image for Gram targets")
    g.add_argument("--arch", choices=sorted(ARCHITECTURES), default="johnson", help="network variant")
    g.add_argument("--content_weight", type=float, default=LossWeights.content_weight, help="content loss weight")
    g.add_argument("--style_weight", type=float, default=LossWeights.style_weight, help="style loss weight")
    g.add_argument("--tv_weight", type=float, default=LossWeights.tv_weight, help="total variation weight")
    g.add_argument("--content_layer", choices=sorted(LAYER_NAMES), default=LossWeights.content_layer,
                   help="VGG16 layer of the content loss")
    g.add_argument("--style_layers", nargs="+", choices=sorted(LAYER_NAMES), default=list(DEFAULT_STYLE_LAYERS),
                   help="VGG16 layers of the style loss")
    g.add_argument("--vgg_weights", type=Path, default=None,
                   help="prepared VGG16 safetensors (default: the cache; see `fst prepare-vgg`)")
    g.add_argument("--license", default="mit", help="license of the published model card")
    common.add_common_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse_args(build_parser(), argv)
    try:
        return train(args)
    except FstError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def train(args: argparse.Namespace) -> int:
    accelerator = common.make_accelerator(args, "fst-style")
    paths = common.discover_images(args.data)
    style_image = common.load_style_image(args.style, args.style_size)
    style_name = args.style_name or Path(str(args.style)).stem.replace("_", " ").title()
    device = accelerator.device

    vgg = load_vgg16(args.vgg_weights, device=device)
    loss_network = describe(args.vgg_weights or weights_path()).get("source", "unknown")
    weights = LossWeights(args.content_weight, args.style_weight, args.tv_weight, args.content_layer,
                          tuple(args.style_layers))
    style_tensor = torch.from_numpy(__import__("numpy").asarray(style_image).copy()).permute(2, 0, 1)[None]
    criterion = PerceptualLoss(vgg, style_tensor.float().div(255).to(device), weights).to(device)

    hyper = common.jsonable({k: v for k, v in vars(args).items() if k not in ("hub_token", "config")})
    model = FastStyle(config_for_arch(args.arch, style_name=style_name, loss_network=loss_network, training=hyper))
    if args.compile:
        model.net = torch.compile(model.net)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    dataset = common.ImageFolder(paths, args.image_size, seed=args.seed)
    validation = common.validation_images(args.validation_images, None) or \
        [dataset[i]["image"][None] for i in range(min(4, len(dataset)))]

    def compute_loss(batch, prepared_model):
        content = batch["image"]
        terms = criterion(prepared_model(content), content)
        return terms.total, {"loss": terms.total, "content": terms.content, "style": terms.style, "tv": terms.tv}

    def sample_grid(step: int) -> Path:
        net = accelerator.unwrap_model(model)
        net.eval()
        outputs = [net.stylize(img) for img in validation]
        net.train()
        return common.save_grid([validation, outputs], args.output_dir / "samples" / f"step-{step:06d}.png")

    state = common.train_loop(args, accelerator, model, optimizer, dataset, compute_loss, sample_grid)
    if accelerator.is_main_process:
        finish(args, accelerator.unwrap_model(model), state, style_image, style_name, loss_network,
               len(paths), sample_grid, weights)
    accelerator.end_training()
    return 0


def finish(args, model: FastStyle, state, style_image, style_name: str, loss_network: str,
           num_images: int, sample_grid, weights: LossWeights) -> None:
    """Write the Hub-ready folder (weights, config, card, style image, samples); push it."""
    model.eval()
    if hasattr(model.net, "_orig_mod"):
        model.net = model.net._orig_mod
    folder = args.output_dir
    grid = sample_grid(state.step)
    imageio.save_image(imageio.read_image(grid), folder / "samples.jpg", quality=85)
    style_image.save(folder / "style.jpg", quality=92)
    sources = ", ".join(f"`{d}`" for d in args.data)
    card = dict(
        license=args.license, title=f"{style_name}: fast style transfer", style_name=style_name,
        style_image="style.jpg", sample_image="samples.jpg", repo_id=args.hub_model_id or str(folder),
        arch=args.arch, num_parameters=sum(p.numel() for p in model.parameters()),
        data_description=f"{num_images} photos from {sources}", data_terms=common.data_terms(args.data),
        datasets=common.datasets_of(args.data), style_source=str(args.style), loss_network=loss_network,
        hyperparameters={"batch_size": args.batch_size, "image_size": args.image_size, "lr": args.lr,
                         "content_weight": weights.content_weight, "style_weight": weights.style_weight,
                         "tv_weight": weights.tv_weight, "content_layer": weights.content_layer,
                         "style_layers": list(weights.style_layers), "style_size": args.style_size,
                         "seed": args.seed, "mixed_precision": str(args.mixed_precision or "no")},
        steps=state.step, train_minutes=state.elapsed_seconds / 60, hardware=common.hardware_name(),
        final_losses=state.last_losses, quality=None, speed=common.speed_line(model.stylize, "eager fp32"),
        num_images=num_images,
    )
    common.save_and_publish(args, model, card, template="style")


if __name__ == "__main__":
    sys.exit(main())
