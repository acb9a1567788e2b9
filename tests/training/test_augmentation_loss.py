"""Flip-only augmentation keeps fly-scanned pairs physical; the L2 loss option (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.training.data import AUGMENTATIONS, FLIP_TRANSFORMS, PatchPairDataset
from xrf_sr_kedro.training.loop import TrainConfig, fit
from xrf_sr_kedro.types import PatchPairs


def _flyscan_pairs(n: int = 12, seed: int = 0) -> PatchPairs:
    """Random HR patches and their x fly-scans with a narrow mirror-symmetric probe."""
    rng = np.random.default_rng(seed)
    hr = rng.random((n, 1, 16, 16)).astype(np.float32)
    r = np.arange(5) - 2.0
    probe = np.exp(-(r[:, None] ** 2 + 0.5 * r[None, :] ** 2))
    probe /= probe.sum()
    lr = np.stack([flyscan(h[0], probe, 4, fast_axis="x")[None] for h in hr]).astype(np.float32)
    return PatchPairs(lr, hr, 120.0, 30.0), probe


def _physical(ds: PatchPairDataset, probe: np.ndarray, epochs: int = 4) -> list[bool]:
    ok = []
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            lr, hr = (t.numpy()[0] for t in ds[i])
            ok.append(np.allclose(flyscan(hr, probe, 4, fast_axis="x"), lr, atol=1e-5))
    return ok


def test_flip_augmentation_keeps_every_pair_a_flyscan():
    pairs, probe = _flyscan_pairs()
    flips = PatchPairDataset(pairs, seed=0, transforms=FLIP_TRANSFORMS)
    assert all(_physical(flips, probe))
    seen = set()
    for epoch in range(4):
        flips.set_epoch(epoch)
        seen |= {flips.transform_index(i) for i in range(len(flips))}
    assert seen == set(FLIP_TRANSFORMS)
    # the full dihedral group puts the motion blur on the slow axis for some pairs
    assert not all(_physical(PatchPairDataset(pairs, seed=0), probe))


def test_transforms_are_checked():
    pairs, _ = _flyscan_pairs(2)
    with pytest.raises(ValueError, match="transforms"):
        PatchPairDataset(pairs, transforms=(0, 8))
    with pytest.raises(ValueError, match="transforms"):
        PatchPairDataset(pairs, transforms=())


@pytest.mark.parametrize("kwargs, message", [
    ({"augmentation": "rotations"}, "augmentation"),
    ({"loss": "huber"}, "loss"),
])
def test_invalid_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_defaults():
    cfg = TrainConfig()
    assert cfg.augmentation == "flips" and AUGMENTATIONS["flips"] == FLIP_TRANSFORMS
    assert cfg.loss == "l1"


@pytest.mark.parametrize("loss", ["l1", "l2"])
def test_recorded_training_loss_is_the_chosen_loss(loss, tmp_path):
    """With a negligible learning rate the epoch's recorded loss is the chosen loss of
    the initial model over the (flip-augmented) pairs, computed naively here."""
    pairs, _ = _flyscan_pairs(8)
    torch.manual_seed(0)
    model = build_model("tiny")
    ds = PatchPairDataset(pairs, seed=3, transforms=FLIP_TRANSFORMS)
    ds.set_epoch(0)
    model.eval()
    with torch.no_grad():
        diffs = [model(lr[None])[0] - hr for lr, hr in (ds[i] for i in range(len(ds)))]
    expected = {"l1": float(np.mean([d.abs().mean() for d in diffs])),
                "l2": float(np.mean([(d ** 2).mean() for d in diffs]))}
    # amp=False: float32 like the naive reference (a CPU with native bf16 would train in bf16)
    cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-12, seed=3, num_threads=1, loss=loss,
                      amp=False)
    ckpt = fit(model, pairs, None, cfg, tmp_path)
    got = ckpt["history"]["train_l1"][0]
    assert got == pytest.approx(expected[loss], rel=1e-4)
    other = "l2" if loss == "l1" else "l1"
    assert got != pytest.approx(expected[other], rel=1e-2)


# --- precision chosen for the hardware --------------------------------------------------

@pytest.fixture
def native_bf16_cpu(monkeypatch):
    """A CPU that computes bf16 natively, whatever this machine is."""
    from xrf_sr_kedro.inference import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda *a, **k: True)
    for var in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(var, raising=False)


def test_training_autocast_follows_the_hardware(native_bf16_cpu, monkeypatch):
    from xrf_sr_kedro.training.precision import training_autocast

    cpu = torch.device("cpu")
    assert training_autocast(True, cpu) == (torch.bfloat16, False)
    assert training_autocast(False, cpu) == (None, False)
    # the same CPU with bf16 ruled out (as on an AVX2-only machine): float32
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert training_autocast(True, cpu) == (None, False)


def test_bf16_training_keeps_float32_weights_and_the_same_loss(native_bf16_cpu, tmp_path):
    """Under bf16 autocast the weights stay float32 and the recorded loss is the float32
    loss to bf16 rounding (about 3 significant digits), not another quantity."""
    pairs, _ = _flyscan_pairs(8)
    losses = {}
    for amp in (False, True):
        torch.manual_seed(0)
        model = build_model("tiny")
        cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-12, seed=3, num_threads=1,
                          loss="l2", amp=amp)
        ckpt = fit(model, pairs, None, cfg, tmp_path / str(amp))
        assert all(v.dtype == torch.float32 for v in ckpt["model_state"].values())
        assert next(model.parameters()).is_contiguous()  # handed back in the default layout
        losses[amp] = ckpt["history"]["train_l1"][0]
    assert losses[True] == pytest.approx(losses[False], rel=2e-2)
    assert losses[True] != losses[False]  # bf16 did run
