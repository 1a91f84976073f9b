"""`fst stylize --style` with multi-style networks and `fst sheet`, run in this process."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fst import FastStyle
from test_cli_checks import run_main
from test_multistyle import multi

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "tiger.jpg"


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("multi") / "paintings"
    multi().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.open(EXAMPLE).resize((48, 32)).save(path)
    return path


def test_stylize_with_a_style_and_a_blend(multi_dir, photo, tmp_path, capsys):
    model = FastStyle.from_pretrained(multi_dir)
    source = np.asarray(Image.open(photo).convert("RGB"))
    for style, expected in (("udnie", "udnie"), ("starry_night:1,udnie:3", {"starry_night": 0.25, "udnie": 0.75})):
        code, err = run_main(capsys, "stylize", str(photo), "-m", str(multi_dir), "--style", style,
                             "-o", str(tmp_path / "out.png"))
        assert code == 0, err
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), model.stylize(source, style=expected))


@pytest.mark.parametrize("style, message", [
    ("the_screm", "--style: unknown style 'the_screm' (did you mean 'the_scream'?); this network has"),
    ("udnie:-1", "--style: the weight of 'udnie' is -1; blends take weights >= 0"),
    ("udnie:0,the_scream:0", "--style: all weights of the style blend are zero"),
    ("udnie:nan", "--style: the weight of 'udnie' is nan"),
    ("udnie:lots", "--style: style blend: the weight of 'udnie' is 'lots', not a number"),
])
def test_bad_styles_are_usage_errors(multi_dir, photo, tmp_path, capsys, style, message):
    code, err = run_main(capsys, "stylize", str(photo), "-m", str(multi_dir), "--style", style,
                         "-o", str(tmp_path / "out.png"))
    assert code == 2 and message in err and not (tmp_path / "out.png").exists()


def test_a_single_style_network_takes_no_style(photo, tmp_path, capsys):
    FastStyle(channels=4, num_res_blocks=1).save_pretrained(tmp_path / "single")
    code, err = run_main(capsys, "stylize", str(photo), "-m", str(tmp_path / "single"), "--style", "udnie",
                         "-o", str(tmp_path / "out.png"))
    assert code == 2 and "single-style network: it takes no style choice" in err


def test_sheet_of_given_networks(multi_dir, photo, tmp_path, capsys):
    FastStyle(channels=4, num_res_blocks=1).save_pretrained(tmp_path / "single")
    code, err = run_main(capsys, "sheet", str(photo), "--no-defaults", "--model", str(multi_dir),
                         str(tmp_path / "single"), "--size", "40", "--columns", "5", "-o", str(tmp_path / "sheet.png"))
    assert code == 0, err
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (27 + 22, 5 * 40, 3)            # the photo, three styles and the single network
    cells = [sheet[:27, i * 40:(i + 1) * 40].astype(int) for i in range(5)]
    assert all(np.abs(a - b).mean() > 1 for a, b in zip(cells, cells[1:]))
    labels = sheet[27:].astype(int)
    assert (labels < 128).sum() > 50                      # dark label text on white


@pytest.mark.slow
def test_sheet_with_the_embedded_defaults(photo, tmp_path, capsys):
    from fst.catalog import style_entries

    code, err = run_main(capsys, "sheet", str(photo), "--size", "24", "-o", str(tmp_path / "sheet.png"))
    assert code == 0, err
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    cells = 1 + len(style_entries())
    columns = int(np.ceil(np.sqrt(cells)))
    assert sheet.shape == (int(np.ceil(cells / columns)) * (16 + 22), columns * 24, 3)


@pytest.mark.parametrize("args, message", [
    (["--no-defaults"], "--no-defaults leaves no style to show; give networks with --model"),
    (["--size", "4000"], "--size must be at most 1024"),
    (["--columns", "0"], "--columns must be an integer >= 1"),
    (["-o", "{tmp}/sheet.gif"], "unsupported output extension .gif"),
])
def test_sheet_arguments_are_checked_first(photo, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    output = [] if "-o" in args else ["-o", str(tmp_path / "sheet.png")]
    code, err = run_main(capsys, "sheet", str(photo), *output, *args)
    assert code == 2 and message in err
