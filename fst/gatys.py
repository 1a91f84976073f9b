"""Gatys et al. (2016) optimisation baseline: the quality reference for the fast networks.

Optimises the pixels of one image to match the content of one photo and the Gram
statistics of a style image, with the same loss as the feed-forward training.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from .losses import LossTerms, LossWeights, PerceptualLoss


@dataclasses.dataclass
class GatysResult:
    """The optimised image (1x3xHxW in [0, 1]) and its loss history (one dict per step)."""

    image: torch.Tensor
    history: list[dict[str, float]]


def optimize(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    steps: int = 300,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    weights: LossWeights | None = None,
    vgg: torch.nn.Module | None = None,
    init: str = "content",
    callback: Callable[[int, LossTerms], None] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> GatysResult:
    """Stylize ``content`` (1x3xHxW in [0, 1]) towards ``style`` by optimising its pixels.

    ``optimizer`` is ``lbfgs`` (the classic choice, ~1 function evaluation per step)
    or ``adam``. The image is optimised in logit space, so it stays in [0, 1].
    ``callback(evaluations, terms)`` is called after each evaluation of the loss;
    ``progress(step, loss)`` with the optimizer step in progress (1..steps) and the loss.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if vgg is None:
        from .vgg import load_vgg16

        vgg = load_vgg16(device=content.device)
    criterion = PerceptualLoss(vgg, style, weights)
    start = content if init == "content" else torch.rand_like(content)
    logits = torch.logit(start.clamp(1e-3, 1 - 1e-3)).detach().contiguous().requires_grad_(True)
    history: list[dict[str, float]] = []

    def evaluate(step: int) -> torch.Tensor:
        terms = criterion(torch.sigmoid(logits), content)
        total = terms.total
        total.backward()
        history.append(terms.as_floats())
        if callback:
            callback(len(history), terms)
        if progress:
            progress(max(1, min(step, steps)), history[-1]["loss"])
        return total

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([logits], lr=lr or 1.0, max_iter=steps, history_size=50,
                                line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            return evaluate(opt.state[logits].get("n_iter", 0))   # L-BFGS's iteration in progress

        opt.step(closure)
    else:
        opt = torch.optim.Adam([logits], lr=lr or 0.05)
        for step in range(1, steps + 1):
            opt.zero_grad()
            evaluate(step)
            opt.step()
    return GatysResult(torch.sigmoid(logits).detach(), history)
