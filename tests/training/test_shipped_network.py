"""The pretrained network shipped with the project, and the natural-image score.

``kedro run`` fine-tunes ``data/01_raw/embedded/pretrained_small_x4.pt`` instead of
pretraining; these tests keep that file loadable by the current code and refused (one
line, the cure named) where another preset is asked for (its read-only dataset is tested
with the measured data's, tests/safety/test_measured_data_protection.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xrf_sr_kedro.evaluation.natural_images import score_on_natural_images
from xrf_sr_kedro.io.checkpoint import config_as_dict, load_checkpoint, model_from_checkpoint
from xrf_sr_kedro.metrics.image import bicubic_upsample
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name
from xrf_sr_kedro.training.stage import shipped_pretrained
from xrf_sr_kedro.types import PatchPairs

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "embedded" / "pretrained_small_x4.pt"


def test_shipped_network_is_the_current_small_preset_with_provenance():
    checkpoint = load_checkpoint(SHIPPED)  # weights_only: plain tensors and numbers
    assert checkpoint["preset"] == "small"
    # a redefined preset (or a changed layer layout) fails here, not in a user's run
    assert checkpoint["config"] == config_as_dict(config_from_name("small"))
    model_from_checkpoint(checkpoint, expected=config_from_name("small"))
    assert "commit" in checkpoint["provenance"] and "--pipeline full" in checkpoint["provenance"]
    assert checkpoint["epoch"] == len(checkpoint["history"]["val_psnr"])
    assert SHIPPED.stat().st_size < 1_000_000  # weights only, no optimizer state


def test_shipped_network_is_used_for_its_own_preset_and_refused_for_another():
    checkpoint = load_checkpoint(SHIPPED)
    assert shipped_pretrained(checkpoint, "small") is checkpoint
    with pytest.raises(ValueError) as info:
        shipped_pretrained(checkpoint, "tiny")
    message = str(info.value)
    assert str(SHIPPED) in message and "'tiny'" in message and "channels=" in message
    assert "`kedro run --pipeline full`" in message and "\n" not in message


def _pairs(n: int = 3, lr_px: int = 12, seed: int = 0) -> PatchPairs:
    rng = np.random.default_rng(seed)
    hr = rng.random((n, 1, lr_px * 4, lr_px * 4)).astype(np.float32)
    hr = torch.nn.functional.avg_pool2d(torch.from_numpy(hr), 5, 1, 2).numpy()  # smooth texture
    lr = torch.nn.functional.avg_pool2d(torch.from_numpy(hr), 4).numpy()
    return PatchPairs(lr=lr, hr=hr, lr_pixel_size_nm=30.0, hr_pixel_size_nm=7.5)


def test_natural_image_score_of_a_network_that_outputs_bicubic_is_bicubic():
    """A bicubic-residual network with zero weights is bicubic: gain exactly 0 dB,
    and the bicubic PSNR agrees with a direct computation."""
    config = config_from_name("tiny")
    model = build_model(type(config)(**{**config_as_dict(config), "global_residual": "bicubic"}))
    for parameter in model.parameters():
        torch.nn.init.zeros_(parameter)
    checkpoint = {"format_version": 1, "config": config_as_dict(model.config), "model_state": model.state_dict()}
    pairs = _pairs()
    table, metrics = score_on_natural_images({"zero": checkpoint}, pairs)
    row = table.iloc[0]
    assert row.gain_db == pytest.approx(0.0, abs=1e-6)
    bicubic = bicubic_upsample(torch.from_numpy(pairs.lr), 4).clamp(0, 1).numpy()
    mse = ((bicubic - pairs.hr) ** 2).mean(axis=(1, 2, 3))
    assert row.bicubic_psnr_db == pytest.approx(np.mean(10 * np.log10(1.0 / mse)), abs=1e-3)
    assert metrics["zero_gain_db"][0]["value"] == pytest.approx(0.0, abs=1e-6)
    assert row.n_pairs == 3
