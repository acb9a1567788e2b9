"""The choices made on the validation region: kept epoch, fine-tuning data, selected network."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xrf_sr_kedro.io.checkpoint import FORMAT_VERSION, config_as_dict, model_from_checkpoint, save_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name
from xrf_sr_kedro.training.checkpointing import BEST_NAME, CheckpointSettings, kept_checkpoint
from xrf_sr_kedro.training.loop import TrainConfig, evaluate
from xrf_sr_kedro.training.selection import fine_tuning_data, select_checkpoint
from xrf_sr_kedro.training.stage import train_stage
from xrf_sr_kedro.types import PatchPairs



def smooth_pairs(n: int, seed: int) -> PatchPairs:
    """Smooth random 32x32 HR patches in [0, 1] and their 4x4-averaged 8x8 LR partners."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 1, 5, 5)).astype(np.float32))
    hr = F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=True)
    return PatchPairs(F.avg_pool2d(hr, 4).numpy(), hr.numpy(), lr_pixel_size_nm=120.0,
                      hr_pixel_size_nm=30.0)


def _checkpoint(model: torch.nn.Module, epoch: int = 1, history: dict | None = None) -> dict:
    return {
        "format_version": FORMAT_VERSION, "config": config_as_dict(model.config), "preset": "tiny",
        "model_state": model.state_dict(), "epoch": epoch,
        "history": history or {"epoch": [1.0], "train_l1": [0.1], "val_psnr": [20.0]},
    }


def _tiny(seed: int, weight_scale: float = 1.0) -> torch.nn.Module:
    """A tiny network with a bicubic residual: weights x 0 give bicubic exactly."""
    torch.manual_seed(seed)
    model = build_model(replace(config_from_name("tiny"), global_residual="bicubic"))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(weight_scale)
    return model


def test_select_checkpoint_picks_the_higher_psnr_and_records_why(val_pairs):
    good, bad = _tiny(0, weight_scale=0.0), _tiny(1, weight_scale=30.0)  # bicubic vs noise
    psnr_good = evaluate(good, val_pairs, device="cpu")["val_psnr"]
    psnr_bad = evaluate(bad, val_pairs, device="cpu")["val_psnr"]
    assert psnr_good > psnr_bad + 1.0  # the premise of the test
    for cands, winner in (({"pretrained": _checkpoint(bad), "fine_tuned": _checkpoint(good)}, "fine_tuned"),
                          ({"pretrained": _checkpoint(good), "fine_tuned": _checkpoint(bad)}, "pretrained")):
        chosen, scores = select_checkpoint(cands, val_pairs)
        assert chosen["model_state"] is cands[winner]["model_state"]
        assert chosen["selection"]["psnr_db"][winner] == pytest.approx(psnr_good, abs=1e-6)
        assert chosen["selection"]["selected"] == winner
        assert scores[f"{winner}_psnr"][0]["value"] == pytest.approx(psnr_good, abs=1e-6)
        assert scores["selected_index"][0]["value"] == list(cands).index(winner)
    # ties go to the first candidate
    chosen, _ = select_checkpoint({"first": _checkpoint(good), "second": _checkpoint(good)}, val_pairs)
    assert chosen["selection"]["selected"] == "first"


def test_fine_tuning_data_returns_the_named_sets_and_names_a_bad_choice(pairs, val_pairs):
    app, region = smooth_pairs(3, seed=5), smooth_pairs(2, seed=6)
    assert fine_tuning_data("scan_pairs", pairs, val_pairs, app, region) == (pairs, val_pairs)
    assert fine_tuning_data("application_pairs", pairs, val_pairs, app, region) == (app, region)
    dose = smooth_pairs(3, seed=7)
    assert fine_tuning_data("dose_matched_pairs", pairs, val_pairs, app, region, dose) == (dose, region)
    with pytest.raises(ValueError, match="fine_tuning.data"):
        fine_tuning_data("both", pairs, val_pairs, app, region)
    with pytest.raises(ValueError, match="dose_matched_pairs"):
        fine_tuning_data("dose_matched_pairs", pairs, val_pairs, app, region)  # its pairs missing
    # given as a function, the pairs are made only when chosen
    made = []
    assert fine_tuning_data("dose_matched_pairs", pairs, val_pairs, app, region,
                            lambda: made.append(1) or dose) == (dose, region)
    assert fine_tuning_data("scan_pairs", pairs, val_pairs, app, region, lambda: made.append(2)) == (pairs, val_pairs)
    assert made == [1]


def test_stage_keeps_the_best_validation_epoch_with_the_whole_history(tmp_path, pairs, val_pairs):
    torch.manual_seed(0)
    model = build_model(config_from_name("tiny"))
    cfg = TrainConfig(epochs=4, batch_size=4, learning_rate=3e-2, lr_first_decay_epoch=100)
    settings = CheckpointSettings(directory=str(tmp_path / "run"), keep="best")
    checkpoint, history, _ = train_stage(
        pairs, val_pairs, model, cfg, settings, "test", preset="tiny",
        extra_validation={"other": smooth_pairs(4, seed=9)},
    )
    val = checkpoint["history"]["val_psnr"]
    assert len(val) == 4 and len(history["val_psnr"]) == 4
    best_epoch = 1 + max(range(4), key=lambda i: val[i])
    assert checkpoint["epoch"] == checkpoint["selected_epoch"] == best_epoch
    rebuilt = evaluate(model_from_checkpoint(checkpoint), val_pairs, device="cpu")["val_psnr"]
    assert rebuilt == pytest.approx(max(val), abs=1e-4)
    other = evaluate(model_from_checkpoint(checkpoint), smooth_pairs(4, seed=9), device="cpu")
    assert history["other_psnr"] == [{"value": pytest.approx(other["val_psnr"]), "step": best_epoch}]
    assert history["other_gain_db"][0]["value"] == pytest.approx(other["val_psnr"] - other["bicubic_psnr"])


def test_kept_checkpoint_ignores_a_best_file_from_another_run(tmp_path):
    model = _tiny(0)
    final = _checkpoint(model, epoch=3, history={"epoch": [1.0, 2.0, 3.0], "train_l1": [0.3, 0.2, 0.1],
                                                 "val_psnr": [20.0, 21.0, 20.5]})
    save_checkpoint(tmp_path / BEST_NAME, _checkpoint(_tiny(1), epoch=1, history={
        "epoch": [1.0], "train_l1": [0.9], "val_psnr": [30.0]}))
    assert kept_checkpoint(final, tmp_path, "best") is final
    assert kept_checkpoint(final, tmp_path / "missing", "best") is final
    assert kept_checkpoint(final, tmp_path, "last") is final
    with pytest.raises(ValueError, match="keep"):
        CheckpointSettings(keep="latest")
    assert math.isfinite(final["history"]["val_psnr"][-1])
