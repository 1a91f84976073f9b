"""``fst batch``: stylize and/or colorize a folder or a list of images, resumably, on one process or many.

    fst batch photos/ -o styled/ --model starry_night
    fst batch photos.txt -o colour/ --colorize
    accelerate launch --multi_gpu --num_processes 4 -m fst.batch photos/ -o styled/ --model starry_night

The input is a folder (searched recursively; files with an image extension are the work, others
are listed as ignored; hidden files and folders, and the output folder, are left out) or a text
file naming one image per line (relative to the list's folder; blank lines and ``#`` comments
skipped). Results mirror the input's structure under the output folder: ``a/b.jpg`` is written
to ``OUT/a/b.jpg`` (formats that cannot be written, e.g. ``scan.tif``, become ``scan.tif.png``).

* Resumable: a result that exists is skipped, and results are written atomically (a temporary
  file renamed once complete), so after a crash or a kill the same command finishes the job.
* Bad files (corrupt, truncated, not an image, too large) are skipped and listed, never fatal.
* ``OUT/manifest.json`` lists what was done, skipped (already there), failed (with the reason)
  and ignored. Exit code 0 when nothing failed, 1 when some files failed, 2 for bad usage.
* Several processes: started by ``accelerate launch`` (or torchrun), each process takes every
  N-th file of the sorted list of those not done yet, on its own GPU when there are GPUs; each
  writes its part of the manifest and the main process merges them. Without a GPU the processes
  run on the CPU (``accelerate launch --cpu --num_processes N`` starts only one process unless
  MPI is set up: use ``--multi_gpu``, which starts N processes through torchrun).

Python: :func:`run_batch` (the ``fst batch`` command calls it).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import FstError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_PART_NAME = ".manifest-part-{rank}.json"          # each process's part; hidden, merged, then removed
_PART_RE = re.compile(r"^\.manifest-part-\d+\.json$")
# fst.imageio.save_image's temporary files (".<name>.<12 hex>.tmp"): left behind only by a killed run.
_STALE_TMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
_MAX_LIST_BYTES = 64 << 20


# --------------------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """What to do with each image: colorize (``colorize``), then stylize (``model``), or one of them."""

    model: str | None = None
    colorize: bool = False
    colorizer: str = "colorizer"
    strength: float = 1.0
    preserve_color: bool = False
    max_side: int | None = None
    style_scale: float = 1.0
    style: str | None = None
    device: str | None = None

    def check(self) -> None:
        """Raise :class:`fst.cli.UsageError` for an unusable option (before anything is loaded)."""
        from ..brush import MAX_STYLE_SCALE, MIN_STYLE_SCALE
        from ..cli_checks import (COLOR_MIN_SIDE, STYLE_MIN_SIDE, UsageError, check_device, check_number, check_size,
                                 check_style_syntax)

        if self.model is None and not self.colorize:
            raise UsageError("give a style network (--model), --colorize, or both")
        if self.style is not None and self.model is None:
            raise UsageError("--style chooses a style of the --model network; give --model too")
        check_number("--strength", self.strength, 0.0, 1.0)
        check_number("--style-scale", self.style_scale, MIN_STYLE_SCALE, MAX_STYLE_SCALE)
        check_size("--max-side", self.max_side, STYLE_MIN_SIDE if self.model is not None else COLOR_MIN_SIDE)
        check_style_syntax(self.style)
        check_device(self.device)

    def describe(self) -> dict[str, Any]:
        """The options as the manifest records them."""
        return {key: value for key, value in dataclasses.asdict(self).items()
                if key != "colorizer" or self.colorize}


def load_pipeline(options: BatchOptions, device: Any) -> Callable[[Any], Any]:
    """One function image -> result for ``options``, its networks loaded on ``device``
    (the same loading as ``fst stylize`` and ``fst colorize``)."""
    steps: list[Callable[[Any], Any]] = []
    if options.colorize:
        from ..colorizer import Colorizer

        colorizer = Colorizer.from_pretrained(options.colorizer, device=device)
        # With a style network too, its --max-side sets the output size; alone, the size colours are predicted at.
        color_side = options.max_side if options.model is None else None
        steps.append(lambda image: colorizer.colorize(image, max_side=color_side))
    if options.model is not None:
        from ..cli_checks import with_style
        from ..faststyle import FastStyle

        model = with_style(FastStyle.from_pretrained(options.model, device=device), options.style)
        steps.append(lambda image: model.stylize(image, strength=options.strength,
                                                 preserve_color=options.preserve_color,
                                                 max_side=options.max_side, style_scale=options.style_scale))

    def run(image: Any) -> Any:
        for step in steps:
            image = step(image)
        return image

    return run


# --------------------------------------------------------------------------- the work list


@dataclasses.dataclass(frozen=True)
class Work:
    """One input image and where its result goes (``name``: its path relative to the input root;
    ``output``: the result's, relative to the output folder)."""

    source: Path
    target: Path
    name: str
    output: str


@dataclasses.dataclass
class Plan:
    """The sorted work list of an input, and the files left out of it."""

    root: Path
    items: list[Work]
    ignored: list[dict[str, str]]


def check_paths(source: Path, output_dir: Path) -> None:
    """Raise :class:`fst.cli.UsageError` when ``source`` is neither a folder nor a list file, or when
    ``output_dir`` cannot be the output folder (a file, the input folder, a folder holding it)."""
    from ..cli_checks import UsageError, check_folder_writable
    from ..imageio import IMAGE_EXTENSIONS

    source, output_dir = Path(source), Path(output_dir)
    if not source.exists():
        raise UsageError(f"{source} does not exist; give a folder of images or a text file listing images")
    if source.is_file() and source.suffix.lower() in IMAGE_EXTENSIONS:
        raise UsageError(f"{source} is an image; give a folder or a text file listing images "
                         "(fst stylize / fst colorize take single images)")
    if not source.is_dir() and not source.is_file():
        raise UsageError(f"{source} is neither a folder nor a file")
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"-o {output_dir} is a file; give a folder for the results")
    if source.is_dir():
        here, out = _absolute(source), _absolute(output_dir)
        if here == out:
            raise UsageError(f"-o {output_dir} is the input folder: the results would replace the photos; "
                             "choose another output folder")
        if _is_inside(here, out):
            raise UsageError(f"-o {output_dir} holds the input folder {source}: results could replace photos; "
                             "choose another output folder")
    check_folder_writable(output_dir)


def plan_batch(source: Path, output_dir: Path) -> Plan:
    """The work list (sorted by path) for a folder or a list file ``source``; see the module docstring."""
    from ..cli_checks import UsageError

    source, output_dir = Path(source), Path(output_dir)
    if source.is_dir():
        root = _absolute(source)
        inputs, ignored = _scan_folder(root, _absolute(output_dir))
    else:
        inputs, ignored = _read_list(source), []
        root = _common_root(inputs)
    items, taken = [], {}
    for path in sorted(set(inputs), key=lambda p: _relative(p, root)):
        name = _relative(path, root)
        output = _output_name(name)
        target = output_dir / output
        key = _absolute(target)
        if key in taken:
            ignored.append({"input": name, "reason": f"its output {target} is also the output of {taken[key]}"})
            continue
        taken[key] = name
        items.append(Work(path, target, name, output))
    sources = {_absolute(work.source) for work in items}
    clash = next((work for work in items if _absolute(work.target) in sources), None)
    if clash is not None:
        raise UsageError(f"-o {output_dir} would overwrite the input {clash.target} with a result; "
                         "choose another output folder")
    return Plan(root, items, ignored)


def shard(items: Sequence[Work], rank: int, world: int) -> list[Work]:
    """Process ``rank``'s share of ``items``: every ``world``-th item from the ``rank``-th (disjoint, balanced)."""
    return list(items[rank::world])


def _scan_folder(root: Path, output_dir: Path) -> tuple[list[Path], list[dict[str, str]]]:
    from ..imageio import IMAGE_EXTENSIONS

    inputs, ignored = [], []
    for folder, subfolders, files in os.walk(root):   # symlinked folders are not followed (no loops)
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and _absolute(here / d) != output_dir)
        for name in files:
            if name.startswith("."):
                continue
            path = here / name
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                inputs.append(path)
            else:
                ignored.append({"input": _relative(path, root), "reason": "not an image file name"})
    ignored.sort(key=lambda entry: entry["input"])
    return inputs, ignored


def _read_list(path: Path) -> list[Path]:
    from ..cli_checks import UsageError

    try:
        if path.stat().st_size > _MAX_LIST_BYTES:
            raise UsageError(f"{path} is larger than {_MAX_LIST_BYTES >> 20} MiB; is it a list of images?")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file listing images (one path per line)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    base = _absolute(path).parent
    entries = [line.strip() for line in text.splitlines()]
    paths = [base / Path(entry).expanduser() for entry in entries if entry and not entry.startswith("#")]
    if not paths:
        raise UsageError(f"{path} lists no images (one path per line; # starts a comment)")
    return [_absolute(p) for p in paths]


def _common_root(paths: Sequence[Path]) -> Path:
    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths]))
    except ValueError:   # different drives: keep each file's full path under the output folder
        return Path("")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(*[part for part in path.parts if part != path.anchor]).as_posix()


def _output_name(name: str) -> str:
    from ..imageio import SAVE_FORMATS

    return name if Path(name).suffix.lower() in SAVE_FORMATS else f"{name}.png"


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _is_inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


# --------------------------------------------------------------------------- processes


class Processes:
    """This process's rank, the number of processes, its device and a barrier.

    One process unless launched as several (``accelerate launch``, torchrun, mpirun) with accelerate
    importable: then accelerate's :class:`~accelerate.PartialState` gives the rank and the device
    (``cuda:<local rank>`` with GPUs; the CPU, over gloo, without).
    """

    def __init__(self, device: str | None = None):
        from ..hub import resolve_device
        from ..runtime import distributed_on_cpu, launched_world_size, single_process_launch_note

        self.rank, self.world, self._state = 0, 1, None
        note = single_process_launch_note()
        if note:
            print(f"warning: {note}", file=sys.stderr)
        if launched_world_size() > 1:
            try:
                from accelerate import PartialState
            except ImportError:
                print("warning: several processes were launched but accelerate is not installed; each process "
                      "works alone (pip install accelerate)", file=sys.stderr)
            else:
                self._state = PartialState(cpu=distributed_on_cpu(device))
                self.rank, self.world = self._state.process_index, self._state.num_processes
        self.device = resolve_device(device) if device is not None or self._state is None else self._state.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self._state is not None and self.world > 1:
            self._state.wait_for_everyone()


# --------------------------------------------------------------------------- running


@dataclasses.dataclass
class BatchReport:
    """What a batch run did (on all processes, for the main process; else this process's part)."""

    manifest: Path
    done: list[dict[str, Any]]
    skipped_existing: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    ignored: list[dict[str, Any]]
    processes: int = 1
    main: bool = True       # False: the report of a process other than the main one (its share only)

    @property
    def exit_code(self) -> int:
        from ..cli_checks import EXIT_OK, EXIT_PARTIAL

        return EXIT_PARTIAL if self.failed else EXIT_OK


def run_batch(source: str | os.PathLike, output_dir: str | os.PathLike, options: BatchOptions | None = None, *,
              progress: bool = True, **fields: Any) -> BatchReport:
    """Stylize and/or colorize every image of ``source`` (a folder or a list file) into ``output_dir``.

    ``options`` (or its fields as keyword arguments: ``model=``, ``colorize=``, ``strength=`` ...) says
    what to do; see the module docstring for naming, resuming, bad files and several processes.
    Raises :class:`fst.cli.UsageError` (bad options or paths) or a model loading error before any
    image is processed; a bad image never raises. Returns the report of the whole run on the main
    process (the manifest is written there), of this process's share on the others.
    """
    options = dataclasses.replace(options or BatchOptions(), **fields)
    source, output_dir = Path(source), Path(output_dir)
    options.check()
    check_paths(source, output_dir)
    started, started_at = time.perf_counter(), _now()
    plan = plan_batch(source, output_dir)
    processes = Processes(options.device)
    pipeline = load_pipeline(options, processes.device)
    existing = [work for work in plan.items if work.target.exists()]
    pending = [work for work in plan.items if not work.target.exists()]
    if processes.is_main:
        _remove_stale_temporaries(output_dir)
    processes.barrier()   # every process has listed the work before any result is written
    mine = shard(pending, processes.rank, processes.world)
    part = _process(mine, pipeline, processes, progress)
    part["seconds"] = round(time.perf_counter() - started, 3)
    manifest = output_dir / MANIFEST_NAME
    if processes.world > 1:
        _write_json(output_dir / _PART_NAME.format(rank=processes.rank), part)
        processes.barrier()   # every part is written
        if not processes.is_main:
            # Wait for the manifest: a process that exits (with 1 when its share had failures) makes
            # the launcher stop the others, which must not happen to the main process while it merges.
            processes.barrier()
            return BatchReport(manifest, part["done"], [], part["failed"], [], processes.world, main=False)
        parts = [_read_part(output_dir, rank) for rank in range(processes.world)]
    else:
        parts = [part]
    done = sorted((entry for p in parts for entry in p["done"]), key=lambda entry: entry["input"])
    failed = sorted((entry for p in parts for entry in p["failed"]), key=lambda entry: entry["input"])
    skipped = [{"input": work.name, "output": work.output} for work in existing]
    report = BatchReport(manifest, done, skipped, failed, plan.ignored, processes.world)
    _write_json(manifest, {
        "manifest_version": MANIFEST_VERSION,
        "input": str(source), "input_root": str(plan.root), "output_dir": str(output_dir),
        "options": options.describe(),
        "processes": [{"rank": p["rank"], "device": p["device"], "done": len(p["done"]),
                       "failed": len(p["failed"]), "seconds": p["seconds"]} for p in parts],
        "started": started_at, "finished": _now(), "seconds": round(time.perf_counter() - started, 3),
        "counts": {"images": len(plan.items), "done": len(done), "skipped_existing": len(skipped),
                   "failed": len(failed), "ignored": len(plan.ignored)},
        "done": done, "skipped_existing": skipped, "failed": failed, "ignored": plan.ignored,
    })
    for leftover in output_dir.iterdir():
        if _PART_RE.match(leftover.name):
            leftover.unlink(missing_ok=True)
    processes.barrier()   # the manifest is written: every process may exit
    return report


def _process(items: Sequence[Work], pipeline: Callable[[Any], Any], processes: Processes,
             progress: bool) -> dict[str, Any]:
    """Run ``pipeline`` on each item, writing results atomically; bad files are recorded, never raised."""
    from tqdm.auto import tqdm

    from ..imageio import read_image, save_image

    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    several = f" (process {processes.rank + 1}/{processes.world})" if processes.world > 1 else ""
    bar = tqdm(items, desc=f"images{several}", unit="img", disable=not (progress and processes.is_main))

    def fail(work: Work, reason: str) -> None:
        failed.append({"input": work.name, "reason": reason, "rank": processes.rank})
        bar.write(f"error: {work.source}: {reason}", file=sys.stderr)

    for work in bar:
        began = time.perf_counter()
        try:
            result = pipeline(read_image(work.source))
        except FstError as exc:
            fail(work, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one image's failure (e.g. out of memory) never stops the batch
            fail(work, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
            logger.debug("%s failed", work.source, exc_info=True)
            _free_device_memory(processes.device)
            continue
        try:
            save_image(result, work.target)
        except (OSError, FstError) as exc:
            fail(work, f"cannot write {work.target}: {getattr(exc, 'strerror', None) or exc}")
            continue
        done.append({"input": work.name, "output": work.output, "rank": processes.rank,
                     "seconds": round(time.perf_counter() - began, 3)})
    bar.close()
    return {"rank": processes.rank, "device": str(processes.device), "done": done, "failed": failed}


def _free_device_memory(device: Any) -> None:
    if getattr(device, "type", None) == "cuda":
        import torch

        torch.cuda.empty_cache()


def _read_part(output_dir: Path, rank: int) -> dict[str, Any]:
    path = output_dir / _PART_NAME.format(rank=rank)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:   # that process died after the barrier: say so, keep the others
        return {"rank": rank, "device": "?", "done": [], "seconds": None,
                "failed": [{"input": f"(the share of process {rank})", "reason": f"its report is missing: {exc}",
                            "rank": rank}]}


def _remove_stale_temporaries(output_dir: Path) -> None:
    """Temporary files of results being written when an earlier run was killed."""
    for folder, _, files in os.walk(output_dir):
        for name in files:
            if _STALE_TMP_RE.match(name):
                Path(folder, name).unlink(missing_ok=True)


def _write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
