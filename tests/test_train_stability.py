"""train/train.py with the training-time stability loss (``--stability_weight``), through `accelerate launch`."""
from __future__ import annotations

import json

import pytest

from train_helpers import base_args, run


@pytest.mark.subprocess
@pytest.mark.usefixtures("vgg_weights")
def test_train_with_a_stability_weight(data_dir, train_photos, tmp_path):
    photos = train_photos(6)
    out = tmp_path / "run"
    result = run([*base_args(data_dir, photos, out, steps=2), "--stability_weight", "2"])
    assert result.returncode == 0, result.stdout[-3000:]
    assert json.loads((out / "config.json").read_text())["training"]["stability_weight"] == 2.0
    result = run([*base_args(data_dir, photos, tmp_path / "bad", steps=1), "--stability_weight", "-1"])
    assert result.returncode != 0 and "--stability_weight must be >= 0" in result.stdout
