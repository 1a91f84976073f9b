"""The accelerate training loop: progress, tracking, checkpoints and exact resume."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from fst import settings

from .card_facts import jsonable
from .checkpoints import STATE_FILE, Checkpoints, TrainState
from .data import ImageFolder

logger = logging.getLogger("fst.train")
#: With FST_DEBUG_SHARDS=1 (fst.settings.debug_shards) every process logs the sample indices of each batch
#: it trains on and, at the end, a digest of its weights: the shards are disjoint, and the replicas agree.
shard_logger = logging.getLogger("fst.train.shards")


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
