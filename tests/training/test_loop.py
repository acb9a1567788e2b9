"""The training loop: loss decreases, exact resume, fine-tuning init, checkpoints, schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xrf_sr_kedro.io.checkpoint import load_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.training import loop
from xrf_sr_kedro.training.loop import (
    HISTORY_KEYS,
    TRAIN_PRESETS,
    TrainConfig,
    evaluate,
    fit,
    learning_rate_factor,
)
from xrf_sr_kedro.types import PatchPairs


def _model(seed: int = 0, name: str = "tiny"):
    torch.manual_seed(seed)
    return build_model(name)


def _l1(model, pairs) -> float:
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(pairs.lr))
    return float((out - torch.from_numpy(pairs.hr)).abs().mean())


def test_one_epoch_reduces_l1(pairs, tmp_path):
    model = _model()
    before = _l1(model, pairs)
    cfg = TrainConfig(epochs=1, batch_size=2, learning_rate=1e-3, num_threads=1)
    ckpt = fit(model, pairs, None, cfg, tmp_path)
    after = _l1(model, pairs)
    assert after < 0.7 * before
    assert ckpt["epoch"] == 1 and len(ckpt["history"]["train_l1"]) == 1
    assert (tmp_path / "last.pt").is_file() and not (tmp_path / "best.pt").exists()


def test_history_validation_and_best_checkpoint(pairs, val_pairs, tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=4, learning_rate=2e-3, val_every=2, num_threads=1)
    seen = []
    ckpt = fit(_model(), pairs, val_pairs, cfg, tmp_path,
               on_epoch_end=lambda e, m: seen.append((e, m)), training_data="smooth test pairs")
    h = ckpt["history"]
    assert set(h) == set(HISTORY_KEYS) and all(len(v) == 4 for v in h.values())
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert math.isnan(h["val_psnr"][0]) and math.isnan(h["val_psnr"][2])
    assert not math.isnan(h["val_psnr"][1]) and not math.isnan(h["val_psnr"][3])
    assert h["bicubic_psnr"][1] == h["bicubic_psnr"][3]  # same images, same baseline
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["metrics"]["val_psnr"] == max(h["val_psnr"][1], h["val_psnr"][3])
    assert ckpt["training_data"] == "smooth test pairs" and ckpt["parent"] is None
    assert ckpt["preset"] == "tiny"
    # the validation agrees with evaluate() on the final model
    direct = evaluate(build_model("tiny").eval().requires_grad_(False), val_pairs)
    assert set(direct) == {"val_psnr", "val_ssim", "bicubic_psnr", "bicubic_ssim"}
    assert direct["bicubic_psnr"] == pytest.approx(h["bicubic_psnr"][3])


class _Interrupt(RuntimeError):
    pass


def test_resume_after_interrupted_epoch_is_bit_identical(pairs, val_pairs, tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=3, batch_size=4, learning_rate=1e-3, seed=5, num_threads=1)
    full = fit(_model(), pairs, val_pairs, cfg, tmp_path / "full")

    # Interrupt in the middle of epoch 2 (after one optimiser step of it).
    real = loop._train_one_epoch
    calls = {"n": 0}

    def interrupted(net, loader, optimizer, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            lr, hr = next(iter(loader))
            optimizer.zero_grad()
            torch.nn.functional.l1_loss(net(lr), hr).backward()
            optimizer.step()
            raise _Interrupt("killed mid-epoch")
        return real(net, loader, optimizer, *args, **kwargs)

    monkeypatch.setattr(loop, "_train_one_epoch", interrupted)
    with pytest.raises(_Interrupt):
        fit(_model(), pairs, val_pairs, cfg, tmp_path / "resumed")
    monkeypatch.setattr(loop, "_train_one_epoch", real)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1

    # A fresh process would build a fresh model: resume must overwrite it entirely.
    resumed = fit(_model(seed=99), pairs, val_pairs, cfg, tmp_path / "resumed", resume=True)
    assert resumed["epoch"] == 3
    for k, v in full["model_state"].items():
        assert torch.equal(v, resumed["model_state"][k]), k
    for key in ("train_l1", "lr", "val_psnr", "val_ssim"):
        assert full["history"][key] == resumed["history"][key]
    s_full, s_res = full["optimizer_state"]["state"], resumed["optimizer_state"]["state"]
    for i in s_full:
        assert torch.equal(s_full[i]["exp_avg_sq"], s_res[i]["exp_avg_sq"])


def test_resume_without_checkpoint_starts_afresh(pairs, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=8, num_threads=1)
    ckpt = fit(_model(), pairs, None, cfg, tmp_path, resume=True)
    assert ckpt["epoch"] == 1
    # resuming a finished run trains nothing more
    again = fit(_model(), pairs, None, cfg, tmp_path, resume=True)
    assert again["epoch"] == 1
    for k, v in ckpt["model_state"].items():
        assert torch.equal(v, again["model_state"][k])


def test_fine_tuning_starts_from_pretrained_weights_at_reduced_lr(pairs, tmp_path):
    pre_cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, num_threads=1)
    pretrained = fit(_model(seed=0), pairs, None, pre_cfg, tmp_path / "pre",
                     training_data="simulated")
    pretrained = load_checkpoint(tmp_path / "pre" / "last.pt")
    pretrained["path"] = str(tmp_path / "pre" / "last.pt")

    model = _model(seed=1)
    first_forward = {}

    def capture(module, args):
        if not first_forward:
            first_forward.update({k: v.detach().clone() for k, v in module.state_dict().items()})

    model.register_forward_pre_hook(capture)
    ft_cfg = TrainConfig(epochs=2, batch_size=4, learning_rate=1e-5, num_threads=1)
    tuned = fit(model, pairs, None, ft_cfg, tmp_path / "ft", init_checkpoint=pretrained)

    for k, v in pretrained["model_state"].items():
        assert torch.equal(first_forward[k], v), k
    assert tuned["history"]["lr"] == [1e-5, 1e-5]
    assert tuned["optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(1e-5)
    assert tuned["parent"] == str(tmp_path / "pre" / "last.pt")
    after = tuned["model_state"]
    assert not all(torch.equal(v, after[k]) for k, v in pretrained["model_state"].items())


def test_fine_tuning_from_another_preset_fails_field_by_field(pairs, tmp_path):
    pretrained = fit(_model(), pairs, None, TrainConfig(epochs=1, batch_size=8, num_threads=1),
                     tmp_path / "pre")
    message = (r"trained with channels=8, n_msrb=1, n_groups=1, n_rcab=1, "
               r"global_residual='none'; requested channels=16, n_msrb=2, n_groups=2, "
               r"n_rcab=3, global_residual='bicubic'")
    with pytest.raises(ValueError, match=message):
        fit(build_model("small"), pairs, None, TrainConfig(epochs=1, batch_size=8), tmp_path / "ft",
            init_checkpoint=pretrained)


def test_paper_schedule():
    cfg = TRAIN_PRESETS["paper"]
    assert cfg.epochs == 250 and cfg.learning_rate == 1e-4 and cfg.betas == (0.9, 0.999)
    lrs = [cfg.learning_rate * learning_rate_factor(e, cfg) for e in range(cfg.epochs)]
    assert lrs[0] == lrs[99] == 1e-4
    assert lrs[100] == lrs[149] == 5e-5
    assert lrs[150] == lrs[199] == 2.5e-5
    assert lrs[200] == lrs[249] == 1.25e-5
    ft = TRAIN_PRESETS["paper_fine_tuning"]
    assert ft.learning_rate == cfg.learning_rate / 10 and ft.epochs == 50
    assert {learning_rate_factor(e, ft) for e in range(ft.epochs)} == {1.0}


def test_schedule_is_applied_per_epoch(pairs, tmp_path):
    cfg = TrainConfig(epochs=5, batch_size=8, learning_rate=1e-3, lr_first_decay_epoch=2,
                      lr_decay_every=2, lr_gamma=0.1, max_train_batches_per_epoch=1, num_threads=1)
    ckpt = fit(_model(), pairs, None, cfg, tmp_path)
    np.testing.assert_allclose(ckpt["history"]["lr"], [1e-3, 1e-3, 1e-4, 1e-4, 1e-5])


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs"),
    ({"betas": (0.9,)}, "betas"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"max_train_batches_per_epoch": 0}, "max_train_batches_per_epoch"),
])
def test_invalid_train_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_betas_from_yaml_list():
    assert TrainConfig(betas=[0.8, 0.99]).betas == (0.8, 0.99)


def test_pairs_of_another_scale_are_rejected(tmp_path):
    x2 = PatchPairs(np.zeros((2, 1, 4, 4), np.float32), np.zeros((2, 1, 8, 8), np.float32),
                    2.0, 1.0)
    with pytest.raises(ValueError, match="scale 2 .* expects scale 4"):
        fit(_model(), x2, None, TrainConfig(epochs=1), tmp_path)


def test_non_model_is_rejected(pairs, tmp_path):
    with pytest.raises(TypeError, match="DualBranchSR"):
        fit(torch.nn.Conv2d(1, 1, 3), pairs, None, TrainConfig(epochs=1), tmp_path)
