"""3-D controls, the shared slab and the independent split halves (no Kedro)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from xrf_sr_kedro.evaluation.controls import (
    VolumeSettings,
    bicubic_reprojections_volume,
    oracle_raw_sweep,
    slab_stack,
    slab_view,
    split_measured,
    tune_raw_reconstruction,
)
from xrf_sr_kedro.evaluation.experiments import CONTROLS_270, SplitHalves, tomography_experiments
from xrf_sr_kedro.evaluation.scoring import MetricSettings
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.tomo.recon import ReconSettings
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.types import Volume, XRFStack

N = 32  # truth voxels of 7.5 nm; measured pixels of 30 nm: 8 rows
RECON = ReconSettings(n_iter=2, n_subsets=2)


@pytest.fixture(scope="module")
def truth():
    return battery_phantom(N, 7.5, seed=3)


@pytest.fixture(scope="module")
def raw(truth):
    angles = np.linspace(-90.0, 90.0, 9)[:-1]
    zn = truth.data[truth.elements.index("Zn_K")]
    proj = reproject(zn, angles, progress=False) * 7.5
    lr = np.clip(flyscan(proj, gaussian_probe(20.0, 7.5).intensity, 4), 0, None)
    data = np.random.default_rng(0).poisson(200 * lr / lr.mean()).astype(np.float32)[None]
    meta = {"step_px": 4, "mean_counts": {"Zn_K": 200.0}, "background_counts": 0.0, "readout_sigma_counts": 0.0}
    return XRFStack(data, 30.0, ("Zn_K",), angles, metadata=meta)


def test_split_halves_share_no_measured_projection(raw):
    even, odd = split_measured(raw)
    frames_even, frames_odd = set(even.metadata["frames"]), set(odd.metadata["frames"])
    assert not frames_even & frames_odd
    assert frames_even | frames_odd == set(range(raw.n_frames))
    assert not set(even.angles_deg.tolist()) & set(odd.angles_deg.tolist())
    for half in (even, odd):  # each half holds exactly the measured frames it names
        np.testing.assert_array_equal(half.data, raw.data[:, half.metadata["frames"]])
    # and no measured map appears in both halves
    assert not any(np.array_equal(a, b) for a in even.data[0] for b in odd.data[0])


def test_slab_view_crops_full_volumes_and_labels_slab_volumes():
    full = Volume(np.arange(16 * 4 * 4, dtype=float).reshape(1, 16, 4, 4), 7.5, ("Zn_K",))
    slab = (30.0, 90.0)
    cropped = slab_view(full, slab, 120.0)
    np.testing.assert_array_equal(cropped.data, full.data[:, 4:12])
    assert cropped.metadata["slab_nm"] == [30.0, 90.0]
    already = slab_view(replace(full, data=full.data[:, :8]), slab, 120.0)
    assert already.data.shape[1] == 8 and already.metadata["slab_nm"] == [30.0, 90.0]
    with pytest.raises(ValueError, match="evaluation.volumes.slab_nm"):
        slab_view(replace(full, data=full.data[:, :5]), slab, 120.0)


def test_bicubic_reprojections_are_reconstructed_on_the_fine_grid_of_the_slab(raw):
    volume = bicubic_reprojections_volume(raw, (120.0, 240.0), 4, "Zn_K", RECON)
    assert volume.voxel_size_nm == pytest.approx(7.5)
    assert volume.data.shape == (1, 16, 32, 32)  # 4 rows x 4, 8 px x 4
    assert volume.metadata["slab_nm"] == [120.0, 240.0]
    assert np.isfinite(volume.data).all() and volume.data.std() > 0


def test_raw_reconstruction_is_tuned_without_the_evaluation_truth(truth, raw):
    volumes = VolumeSettings(slab_nm=(120.0, 240.0), n_iter=(1, 4), reg_par=(0.01,))
    metrics = MetricSettings()
    choice, table = tune_raw_reconstruction(truth, raw, gaussian_probe(20.0, 7.5), "Zn_K", RECON, volumes, metrics)
    assert len(table) == 2 and set(table.n_iter) == {1, 4}
    best = table.loc[table.fsc_vs_truth_nm.astype(float).idxmin()]
    assert choice == {"n_iter": int(best.n_iter), "reg_par": float(best.reg_par)}
    # the evaluated truth's values are never read: a truth of NaNs gives the same choice
    blind = replace(truth, data=np.full_like(truth.data, np.nan))
    again, table_blind = tune_raw_reconstruction(blind, raw, gaussian_probe(20.0, 7.5), "Zn_K", RECON, volumes,
                                                 metrics)
    assert again == choice
    pd.testing.assert_frame_equal(table, table_blind)
    # the oracle sweep does read the evaluation truth (and says so)
    oracle = oracle_raw_sweep(truth, raw, "Zn_K", RECON, volumes, metrics)
    assert (oracle.region == "oracle: the evaluation truth").all()
    assert not np.allclose(oracle.psnr_db, table.psnr_db)


def test_every_row_is_scored_on_the_shared_slab(raw):
    full = Volume(np.ones((1, 32, 32, 32)), 7.5, ("Zn_K",), metadata={"n_projections": 8})
    coarse = Volume(np.ones((1, 8, 8, 8)), 30.0, ("Zn_K",), metadata={"n_projections": 8})
    part = Volume(np.ones((1, 16, 32, 32)), 7.5, ("Zn_K",), metadata={"n_projections": 27})
    halves = SplitHalves(raw=(coarse, coarse), reprojection_270=(part, part), limited=(part, part))
    rows = tomography_experiments(coarse, replace(full, metadata={"n_projections": 27}), full, halves,
                                  {m: part for m in CONTROLS_270}, (120.0, 240.0), 240.0)
    assert [r.method for r in rows] == ["raw", *CONTROLS_270, "selected", "selected"]
    for row in rows:
        assert row.volume.metadata["slab_nm"] == [120.0, 240.0]
        assert row.volume.data.shape[1] * row.volume.voxel_size_nm == pytest.approx(120.0)
    assert rows[0].halves is not None and rows[-2].halves is not None and rows[-1].halves is not None
    assert all(r.halves is None for r in rows[1:-2])
    # every row's halves are read up to the measured (raw voxel) Nyquist limit: 2 x 30 nm
    assert [rows[i].split_band_limit_nm for i in (0, -2, -1)] == [60.0, 60.0, 60.0]
    with pytest.raises(ValueError, match="controls missing"):
        tomography_experiments(coarse, full, full, halves, {}, (120.0, 240.0), 240.0)


def test_slab_stack_keeps_the_rows_and_records_the_slab(raw):
    part = slab_stack(raw, (60.0, 180.0))
    np.testing.assert_array_equal(part.data, raw.data[:, :, 2:6])
    assert part.metadata["slab_nm"] == [60.0, 180.0]
