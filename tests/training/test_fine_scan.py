"""Fine-tuning on a fine scan of a second region, compared through the probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xrf_sr_kedro.io.checkpoint import config_as_dict, model_from_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.training.fine_scan import (
    FineScanSettings,
    fine_scan_maps,
    fine_tune_on_fine_scan,
    through_probe_loss,
)
from xrf_sr_kedro.types import XRFStack

SIZE = 96  # fine px (7.5 nm); coarse maps of 24 px


def _checkpoint(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = build_model("tiny")
    return {"model_state": model.state_dict(), "config": config_as_dict(model.config)}


def _region(blob_maps, n: int = 10, dwell: float = 1.0, seed: int = 0):
    """Blobs on the 7.5 nm grid scanned at 30 nm (200 counts a point) and at 7.5 nm
    (``dwell`` x 200 counts a point), Poisson-counted: ``(coarse, fine, probe)``."""
    rng = np.random.default_rng(seed)
    maps = blob_maps(rng, n, SIZE, n_blobs=8, max_radius_px=9)
    probe = gaussian_probe(40.0, 7.5)
    scans = []
    for step, counts, pixel in ((4, 200.0, 30.0), (1, 200.0 * dwell, 7.5)):
        clean = flyscan(maps, probe, step)
        data = rng.poisson(clean / clean.mean() * counts).astype(np.float32)[None]
        scans.append(XRFStack(data=data, pixel_size_nm=pixel, elements=("Zn_K",),
                              angles_deg=np.linspace(0, 180, n, endpoint=False)))
    return scans[0], scans[1], probe


def _weights_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_loss_scans_the_output_by_the_probe_like_a_naive_reference():
    rng = np.random.default_rng(1)
    coarse = torch.from_numpy(rng.random((2, 1, 8, 8)).astype(np.float32))
    fine = torch.from_numpy(rng.random((2, 1, 32, 32)).astype(np.float32))
    probe = torch.from_numpy(np.outer(np.hanning(9), np.hanning(7) + 0.1).astype(np.float32))
    probe = probe / probe.sum()
    model = torch.nn.Upsample(scale_factor=4, mode="nearest")
    got = float(through_probe_loss(model, coarse, fine, probe, margin_px=3))
    # naive: upsample, extend by reflection by half the probe, scan (numpy path), crop, compare
    out = np.repeat(np.repeat(coarse.numpy(), 4, axis=-2), 4, axis=-1)
    pad = 4
    padded = np.pad(out, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    pred = flyscan(padded, probe.numpy(), 1)[..., pad:-pad, pad:-pad]
    want = float(np.mean(((pred - fine.numpy())[..., 3:-3, 3:-3]) ** 2))
    assert got == pytest.approx(want, rel=1e-5)


def test_flipping_maps_and_probe_together_keeps_the_loss_exact():
    """The training flips crops and probe together: with a flip-equivariant model the
    loss must not change, even for a lopsided probe."""
    rng = np.random.default_rng(2)
    coarse = torch.from_numpy(rng.random((1, 1, 8, 8)).astype(np.float32))
    fine = torch.from_numpy(rng.random((1, 1, 32, 32)).astype(np.float32))
    probe = torch.from_numpy(rng.random((7, 5)).astype(np.float32))
    probe = probe / probe.sum()
    model = torch.nn.Upsample(scale_factor=4, mode="nearest")
    base = float(through_probe_loss(model, coarse, fine, probe, margin_px=2))
    for axes in ((-2,), (-1,), (-2, -1)):
        flipped = float(through_probe_loss(model, coarse.flip(axes), fine.flip(axes), probe.flip(axes),
                                           margin_px=2))
        assert flipped == pytest.approx(base, rel=1e-5)
    # and the probe matters: flipping the maps but not the lopsided probe changes the loss
    assert float(through_probe_loss(model, coarse.flip(-1), fine.flip(-1), probe, margin_px=2)) != \
        pytest.approx(base, rel=1e-3)


def test_a_short_dwell_fine_scan_is_brought_to_the_coarse_scale(blob_maps):
    coarse, fine, _ = _region(blob_maps, n=2)
    short = XRFStack(data=fine.data / 16.0, pixel_size_nm=7.5, elements=("Zn_K",),
                     angles_deg=fine.angles_deg)
    c, f = fine_scan_maps(coarse, fine, 4)
    c2, f2 = fine_scan_maps(coarse, short, 4)
    np.testing.assert_allclose(f2, f, rtol=1e-5, atol=1e-6)
    assert c.min() == 0.0 and c.max() == pytest.approx(1.0)
    # both scans conserve the mean signal, so the normalised fine maps have the coarse means
    np.testing.assert_allclose(f.mean(axis=(-2, -1)), c.mean(axis=(-2, -1)), rtol=1e-5)


def test_off_returns_the_network_unchanged(blob_maps):
    ckpt = _checkpoint()
    coarse, fine, probe = _region(blob_maps, n=2)
    out, metrics = fine_tune_on_fine_scan(ckpt, coarse, fine, probe, FineScanSettings(steps=0))
    assert _weights_equal(out["model_state"], ckpt["model_state"]) and metrics == {}
    assert out["fine_scan"] == {"steps": 0, "kept": False}


def test_tuning_is_kept_when_it_explains_held_out_frames_better(blob_maps):
    ckpt = _checkpoint()
    coarse, fine, probe = _region(blob_maps, dwell=1 / 16)
    settings = FineScanSettings(steps=40, batch=4, crop_px=16, margin_px=4, learning_rate=2e-3)
    out, metrics = fine_tune_on_fine_scan(ckpt, coarse, fine, probe, settings)
    record = out["fine_scan"]
    assert record["kept"] and record["held_out_loss_after"] < 0.8 * record["held_out_loss_before"]
    assert not _weights_equal(out["model_state"], ckpt["model_state"])
    model_from_checkpoint(out)  # a loadable checkpoint of the same architecture
    assert metrics["kept"][0]["value"] == 1.0 and len(metrics["train_loss"]) == 1


def test_a_worse_tuning_is_discarded(blob_maps):
    ckpt = _checkpoint()
    coarse, fine, probe = _region(blob_maps)
    settings = FineScanSettings(steps=10, batch=4, crop_px=16, margin_px=4, learning_rate=1.0)
    out, _ = fine_tune_on_fine_scan(ckpt, coarse, fine, probe, settings)
    assert not out["fine_scan"]["kept"]
    assert out["fine_scan"]["held_out_loss_after"] >= out["fine_scan"]["held_out_loss_before"]
    assert _weights_equal(out["model_state"], ckpt["model_state"])


def test_bad_scans_are_refused_before_training(blob_maps):
    ckpt = _checkpoint()
    coarse, fine, probe = _region(blob_maps, n=4)
    on = FineScanSettings(steps=5, crop_px=16)
    other = XRFStack(data=fine.data, pixel_size_nm=7.5, elements=("Mn_K",), angles_deg=fine.angles_deg)
    with pytest.raises(ValueError, match="same elements and projections"):
        fine_tune_on_fine_scan(ckpt, coarse, other, probe, on)
    half = XRFStack(data=fine.data[..., ::2, ::2], pixel_size_nm=15.0, elements=("Zn_K",),
                    angles_deg=fine.angles_deg)
    with pytest.raises(ValueError, match="not a 4x zoom of fine_scan_coarse_xrf"):
        fine_tune_on_fine_scan(ckpt, coarse, half, probe, on)
    bad = fine.data.copy()
    bad[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="fine_scan_fine_xrf: the maps contain NaN"):
        fine_tune_on_fine_scan(ckpt, coarse, XRFStack(data=bad, pixel_size_nm=7.5, elements=("Zn_K",),
                                                      angles_deg=fine.angles_deg), probe, on)
    with pytest.raises(ValueError, match="crop_px \\(32\\) is larger"):
        fine_tune_on_fine_scan(ckpt, coarse, fine, probe, FineScanSettings(steps=5, crop_px=32))
    with pytest.raises(ValueError, match="cannot be split"):
        fine_tune_on_fine_scan(ckpt, coarse, fine, probe, FineScanSettings(steps=5, crop_px=16,
                                                                            holdout_every=5))
    with pytest.raises(ValueError, match="holdout_every"):
        FineScanSettings(holdout_every=1)
