"""`fst batch` / fst.batch: folders and lists in, a mirrored folder and a manifest out; resume, bad files,
bad usage, and several processes through `accelerate launch`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fst import FastStyle
from fst.batch import MANIFEST_NAME, BatchOptions, Work, plan_batch, run_batch, shard
from fst.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main

REPO = Path(__file__).resolve().parents[1]
GOOD = {"a.jpg": (40, 30), "sub/b.png": (33, 47), "sub/deeper/c.png": (64, 20), "sub/d.bmp": (20, 21)}
BAD = {"sub/truncated.jpg": "truncated or corrupt", "sub/zero_byte.jpg": "empty (0 bytes)",
       "sub/deeper/text_renamed.jpg": "detected: text"}
OUTPUTS = {"a.jpg": "a.jpg", "sub/b.png": "sub/b.png", "sub/deeper/c.png": "sub/deeper/c.png",
           "sub/d.bmp": "sub/d.bmp.png"}     # BMP cannot be written: PNG, named so that no other result clashes


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("johnson_rt")
    FastStyle(arch="johnson-rt").save_pretrained(folder)    # untrained: the plumbing is what is tested
    return folder


@pytest.fixture()
def photos(tmp_path, bad_inputs) -> Path:
    """Small images in nested folders, three bad files, a text file and a hidden file."""
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name, (width, height) in GOOD.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(folder / name)
    for name in BAD:
        shutil.copyfile(bad_inputs / "images" / Path(name).name, folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    return folder


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


@pytest.mark.slow
def test_folder_is_mirrored_bad_files_are_listed_and_a_rerun_skips_everything(model_dir, photos, tmp_path,
                                                                             capsys):
    out = tmp_path / "out"
    assert main(["batch", str(photos), "-o", str(out), "--model", str(model_dir)]) == EXIT_PARTIAL
    for name, (width, height) in GOOD.items():
        with Image.open(out / OUTPUTS[name]) as image:
            assert image.size == (width, height) and image.mode == "RGB", name
    first = manifest(out)
    assert first["counts"] == {"images": 7, "done": 4, "skipped_existing": 0, "failed": 3, "ignored": 1}
    assert [entry["input"] for entry in first["done"]] == sorted(GOOD)
    assert {entry["input"]: entry["output"] for entry in first["done"]} == OUTPUTS
    reasons = {entry["input"]: entry["reason"] for entry in first["failed"]}
    assert reasons.keys() == BAD.keys()
    assert all(BAD[name] in reason for name, reason in reasons.items()), reasons
    assert first["ignored"] == [{"input": "notes.txt", "reason": "not an image file name"}]
    assert len(first["processes"]) == 1 and first["options"]["model"] == str(model_dir)
    err = capsys.readouterr()
    assert "4 done, 0 already there, 3 failed, 1 ignored" in err.out
    assert "Traceback" not in err.err and all(f"{name}:" in err.err for name in BAD)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted([*OUTPUTS.values(), MANIFEST_NAME])    # no temporary file, no manifest part

    stamps = {name: (out / name).stat().st_mtime_ns for name in OUTPUTS.values()}
    assert main(["batch", str(photos), "-o", str(out), "--model", str(model_dir)]) == EXIT_PARTIAL
    second = manifest(out)
    assert second["done"] == [] and len(second["failed"]) == 3
    assert sorted(entry["input"] for entry in second["skipped_existing"]) == sorted(GOOD)
    assert stamps == {name: (out / name).stat().st_mtime_ns for name in OUTPUTS.values()}

    # Resume after a kill: a missing result is made, a temporary file left by the kill is removed.
    (out / "sub" / "b.png").unlink()
    (out / "sub" / ".b.png.0123456789ab.tmp").write_bytes(b"half an image")
    assert main(["batch", str(photos), "-o", str(out), "--model", str(model_dir)]) == EXIT_PARTIAL
    assert [entry["input"] for entry in manifest(out)["done"]] == ["sub/b.png"]
    assert not (out / "sub" / ".b.png.0123456789ab.tmp").exists()


def test_all_good_images_exit_0_and_options_apply(model_dir, photos, tmp_path):
    for name in BAD:
        (photos / name).unlink()
    out = tmp_path / "small"
    assert main(["batch", str(photos), "-o", str(out), "--model", str(model_dir), "--max-side", "16",
                 "--strength", "0.5", "--preserve-color", "--style-scale", "2"]) == EXIT_OK
    for name in GOOD:
        with Image.open(out / OUTPUTS[name]) as image:
            assert max(image.size) == 16, name
    assert manifest(out)["options"]["max_side"] == 16 and manifest(out)["failed"] == []


def test_file_list_input(model_dir, photos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# photos to style\nphotos/a.jpg\n\n  photos/sub/deeper/c.png  \n"
                       f"{photos / 'sub' / 'b.png'}\nphotos/missing.jpg\nphotos/a.jpg\n")
    out = tmp_path / "from_list"
    assert main(["batch", str(listing), "-o", str(out), "--model", str(model_dir)]) == EXIT_PARTIAL
    result = manifest(out)
    assert result["input_root"] == str(photos)      # the listed files' common folder is mirrored
    assert [entry["output"] for entry in result["done"]] == ["a.jpg", "sub/b.png", "sub/deeper/c.png"]
    assert [(entry["input"], "not found" in entry["reason"]) for entry in result["failed"]] == [("missing.jpg", True)]
    with Image.open(out / "sub" / "deeper" / "c.png") as image:
        assert image.size == GOOD["sub/deeper/c.png"]


@pytest.mark.slow
def test_colorize_with_the_shipped_colorizer(photos, tmp_path):
    out = tmp_path / "colour"
    gray = tmp_path / "gray"
    for name in ("a.jpg", "sub/b.png"):
        (gray / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(photos / name).convert("L").save(gray / name)
    assert main(["batch", str(gray), "-o", str(out), "--colorize", "--colorizer", str(REPO / "models" / "colorizer"),
                 "--max-side", "32"]) == EXIT_OK
    for name in ("a.jpg", "sub/b.png"):
        with Image.open(out / name) as image:
            assert image.size == GOOD[name] and image.mode == "RGB"
    assert manifest(out)["options"]["colorize"] is True


@pytest.mark.parametrize("arguments, message", [
    ([], "give a style network (--model), --colorize, or both"),
    (["--model", "{model}", "--strength", "3"], "--strength must be a number in [0, 1]"),
    (["--model", "{model}", "--max-side", "4"], "--max-side must be an integer >= 16"),
    (["--colorize", "--style", "the_scream"], "--style chooses a style of the --model network"),
    (["--model", "{model}", "--device", "banana"], "--device: unknown device"),
    (["--model", "{model}", "-o", "{photos}"], "is the input folder"),
    (["--model", "{model}", "-o", "{photos}/.."], "holds the input folder"),
    (["--model", "{model}", "-o", "{photos}/a.jpg"], "is a file"),
    (["--model", "{model}", "--input", "{photos}/a.jpg"], "is an image; give a folder or a text file"),
    (["--model", "{model}", "--input", "{photos}/nowhere"], "does not exist"),
    (["--model", "{photos}/notes.txt"], "notes.txt"),          # a model that cannot be loaded
])
def test_bad_usage_exits_2_with_one_line(photos, tmp_path, model_dir, capsys, arguments, message):
    arguments = [arg.format(photos=photos, model=model_dir) for arg in arguments]
    source = str(photos)
    if "--input" in arguments:            # another input than the photo folder
        at = arguments.index("--input")
        source = arguments.pop(at + 1)
        arguments.pop(at)
    if "-o" not in arguments:
        arguments += ["-o", str(tmp_path / "out")]
    assert main(["batch", source, *arguments]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_python_api_and_shards(model_dir, photos, tmp_path):
    report = run_batch(photos, tmp_path / "api", BatchOptions(model=str(model_dir)), progress=False)
    assert report.main and report.exit_code == EXIT_PARTIAL and len(report.done) == 4
    with pytest.raises(ValueError, match="give a style network"):
        run_batch(photos, tmp_path / "api")
    items = plan_batch(photos, tmp_path / "plan").items
    assert [work.name for work in items] == sorted([*GOOD, *BAD])
    shares = [shard(items, rank, 3) for rank in range(3)]
    assert sorted((w for share in shares for w in share), key=lambda w: w.name) == items   # disjoint, complete
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert all(isinstance(work, Work) for work in shares[0])


def test_accelerate_cpu_with_several_processes_is_explained(monkeypatch):
    from fst.runtime import distributed_on_cpu, launched_world_size, single_process_launch_note

    for name in ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")       # what `accelerate launch --cpu --num_processes 2` sets
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert launched_world_size() == 1 and "--multi_gpu" in single_process_launch_note()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert single_process_launch_note() is None and distributed_on_cpu("cpu")


@pytest.mark.subprocess
def test_two_processes_share_the_work_and_merge_the_manifest(model_dir, photos, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2`: two processes (on the CPU, gloo, without a GPU).

    (`accelerate launch --cpu --num_processes 2` would start one process: accelerate's multi-CPU
    launcher is mpirun; fst.batch warns about it.)"""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--num_cpu_threads_per_process", "1", "--main_process_port", str(_free_port()),
               "-m", "fst.batch", str(photos), "-o", str(out), "--model", str(model_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stderr[-3000:]     # the bad files
    merged = manifest(out)
    assert [entry["rank"] for entry in merged["processes"]] == [0, 1]
    done = [entry["input"] for entry in merged["done"]]
    assert sorted(done) == sorted(GOOD), (merged["failed"], result.stderr[-2000:])
    assert len(set(done)) == len(done)                                           # each image exactly once
    assert {entry["rank"] for entry in merged["done"]} == {0, 1}                 # by both processes
    assert sorted(entry["input"] for entry in merged["failed"]) == sorted(BAD)
    assert "4 done on 2 processes, 0 already there, 3 failed" in result.stdout
    assert not list(out.glob(".manifest-part-*")) and not list(out.rglob("*.tmp"))
    for name, (width, height) in GOOD.items():
        with Image.open(out / OUTPUTS[name]) as image:
            assert image.size == (width, height)

    # The form the issue names: accelerate starts one process (no MPI here); it does all the work, and says so.
    single = [*command[:3], "--cpu", *command[4:]]
    single[single.index(str(out))] = str(tmp_path / "cpu")
    result = subprocess.run(single, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "starts a single process unless MPI is set up" in result.stderr
    alone = manifest(tmp_path / "cpu")
    assert len(alone["processes"]) == 1 and sorted(entry["input"] for entry in alone["done"]) == sorted(GOOD)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
