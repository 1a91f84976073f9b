"""Atomic checkpoints and the training position stored in each (exact resume)."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from pathlib import Path

from safetensors import SafetensorError

from fst.errors import FstError

logger = logging.getLogger("fst.train")

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "fst_train_state.json"


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
