"""The evaluation domain package on small synthetic data (no Kedro)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter

from xrf_sr_kedro.evaluation.projections import ProjectionSettings, evaluate_projections, refinement_counterpart
from xrf_sr_kedro.inference.refine import RefinementSettings, poisson_nll
from xrf_sr_kedro.evaluation.tuning import TVTuning, tune_tv_on_region, tune_tv_on_simulated_region
from xrf_sr_kedro.evaluation.report import build_report
from xrf_sr_kedro.evaluation.scoring import MetricSettings
from xrf_sr_kedro.evaluation.table import COLUMNS, make_row, markdown_table
from xrf_sr_kedro.evaluation.volumes import VolumeExperiment, evaluate_volumes
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.types import Volume, XRFStack

N = 96  # truth voxels of 7.5 nm: rod pairs of 30, 45, 60 nm fit the calibration band


@pytest.fixture(scope="module")
def truth():
    return battery_phantom(N, 7.5, seed=0)


@pytest.fixture(scope="module")
def stacks(truth):
    angles = np.array([-60.0, 0.0, 60.0])
    proj = np.stack([reproject(v, angles, progress=False) for v in truth.data])  # (el, angle, z, det)
    truth_proj = XRFStack(proj, 7.5, truth.elements, angles)
    probe = gaussian_probe(20.0, 7.5)
    rng = np.random.default_rng(0)
    lr = flyscan(proj, probe.intensity, 4)
    lr = np.clip(lr, 0, None)  # FFT round-off
    raw = XRFStack(rng.poisson(200 * lr / lr.mean()).astype(np.float32), 30.0, truth.elements, angles)
    return truth_proj, raw, probe


def test_a_perfect_method_beats_every_control_in_2d(truth, stacks):
    truth_proj, raw, probe = stacks
    settings = ProjectionSettings(n_projections_2d=3, rl_iterations=5, tv_iterations=40)
    # the "selected" network's output is replaced by the truth itself: it must top every column
    table, figures = evaluate_projections(
        truth_proj, raw, truth_proj, {}, probe, truth.metadata["features"], 0.01, settings, MetricSettings()
    )
    assert list(table.columns) == COLUMNS
    assert table.method.tolist() == ["raw", "bicubic", "richardson_lucy", "tv_deconvolution", "selected"]
    perfect = table.set_index("method").loc["selected"]
    others = table[table.method != "selected"]
    assert perfect.psnr_db == np.inf and perfect.ssim == pytest.approx(1.0)
    assert perfect.fsc_vs_truth_nm == pytest.approx(15.0)  # Nyquist of 7.5 nm pixels
    assert perfect.finest_resolved_pair_nm == 30.0  # the finest rod pair of the phantom
    # 30 nm raw pixels cannot show a 30 nm pair (it needs 2 px a period)
    assert table.set_index("method").loc["raw"].finest_resolved_pair_nm != 30.0
    assert (others.fsc_vs_truth_nm > perfect.fsc_vs_truth_nm).all()
    assert {"projections_calibration_band.png", "projections_frc_directional.png"} <= set(figures)


def test_refinement_row_is_the_selected_output_refined_only_when_the_pipeline_did_not(truth, stacks):
    truth_proj, raw, probe = stacks
    settings = ProjectionSettings(n_projections_2d=3, rl_iterations=5, tv_iterations=40)
    refinement = RefinementSettings(anchor_weight=1.0, n_iter=5)
    blurred = replace(truth_proj, data=gaussian_filter(truth_proj.data, (0, 0, 3, 3)),
                      metadata={"refinement": {"enabled": False}})
    table, _ = evaluate_projections(truth_proj, raw, blurred, {}, probe, truth.metadata["features"], 0.01,
                                    settings, MetricSettings(), refinement)
    assert table.method.tolist()[-2:] == ["selected", "selected_refined"]
    rows = table.set_index("method")
    # the row is computed, not copied: refinement pulls the output towards the counts
    assert rows.loc["selected_refined"].psnr_db != rows.loc["selected"].psnr_db
    # the pipeline's output already refined: no second refinement row
    done = replace(blurred, metadata={"refinement": {"anchor_weight": 1.0, "n_iter": 5}})
    table, _ = evaluate_projections(truth_proj, raw, done, {}, probe, truth.metadata["features"], 0.01,
                                    settings, MetricSettings(), refinement)
    assert "selected_refined" not in table.method.tolist()


def test_refinement_counterpart_lowers_the_poisson_nll_of_the_counts(stacks):
    truth_proj, raw, probe = stacks
    zn = raw.select_elements(["Zn_K"]).data[0]  # counts per scan point
    # an over-smoothed estimate on the counts scale of the measurement (one fine pixel a point)
    proj = truth_proj.select_elements(["Zn_K"]).data[0]
    blurred = gaussian_filter(proj, (0, 3, 3)) * (zn.mean() / flyscan(proj, probe.intensity, 4).mean())
    selected = replace(truth_proj.select_elements(["Zn_K"]), data=blurred[None])
    refined = refinement_counterpart(selected, raw.select_elements(["Zn_K"]), probe,
                                     RefinementSettings(anchor_weight=1.0, n_iter=5))
    assert refined.shape == blurred.shape
    assert refined.sum() == pytest.approx(blurred.sum(), rel=1e-4)  # the total is kept
    for k in range(len(zn)):
        assert poisson_nll(refined[k], zn[k], probe.intensity, 4, 1.0) < poisson_nll(
            blurred[k], zn[k], probe.intensity, 4, 1.0)
    assert refinement_counterpart(selected, raw, probe, None) is None


def test_directional_fsc_and_rayleigh_see_blur_along_the_axis_in_3d(truth):
    meta = {"n_projections": 91}
    zn = truth.data[:1]
    blurred = gaussian_filter(zn, (0, 3.0, 0, 0)) + 0.01 * np.random.default_rng(1).standard_normal(zn.shape)
    sharp = zn + 0.01 * np.random.default_rng(2).standard_normal(zn.shape)
    experiments = [
        VolumeExperiment("sharp", "a", Volume(sharp, 7.5, ("Zn_K",), metadata=meta)),
        VolumeExperiment("blurred along z", "b", Volume(blurred, 7.5, ("Zn_K",), metadata=meta)),
    ]
    table, figures = evaluate_volumes(truth, experiments, "Zn_K", MetricSettings())
    a, b = (table.iloc[i] for i in range(2))
    assert b.fsc_vs_truth_axial_nm > 1.5 * a.fsc_vs_truth_axial_nm
    assert b.fsc_vs_truth_equatorial_nm < 1.3 * a.fsc_vs_truth_equatorial_nm
    assert a.finest_resolved_pair_nm == 30.0
    assert {"tomography_fsc_directional.png", "tomography_calibration_band.png"} <= set(figures)
    assert np.isnan(a.fsc_split_half_nm)  # no halves given


def test_split_halves_are_read_up_to_their_band_limit(truth):
    """Identical halves agree up to the voxel's Nyquist limit (15 nm at 7.5 nm voxels); with
    a band limit the row reads the limit and the split-half figure draws it."""
    zn = truth.data[:1] + 0.01 * np.random.default_rng(3).standard_normal(truth.data[:1].shape)
    volume = Volume(zn, 7.5, ("Zn_K",), metadata={"n_projections": 91})
    rng = np.random.default_rng(4)
    noisy = [Volume(zn + 20.0 * zn.std() * rng.standard_normal(zn.shape), 7.5, ("Zn_K",), metadata={"n_projections": 91})
             for _ in range(2)]
    rows = [VolumeExperiment("e", "whole band", volume, halves=(volume, volume)),
            VolumeExperiment("e", "band-limited", volume, halves=(volume, volume), split_band_limit_nm=60.0),
            VolumeExperiment("e", "noisy", volume, halves=tuple(noisy), split_band_limit_nm=60.0)]
    table, figures = evaluate_volumes(truth, rows, "Zn_K", MetricSettings())
    assert table.fsc_split_half_nm.tolist()[:2] == pytest.approx([15.0, 60.0])
    assert table.fsc_split_half_nm.iloc[2] > 70.0  # independent noise parts the halves inside the band
    legend = [t.get_text() for t in figures["tomography_fsc_split_half.png"].axes[0].get_legend().get_texts()]
    assert any(t.startswith("band-limited") and "<= 60.0 nm" in t for t in legend)
    assert any(t.startswith("noisy") and "<=" not in t for t in legend)  # a crossing is a measurement
    assert any(t.startswith("band limit (band-limited") and "noisy" in t and "60.0 nm" in t for t in legend)


def test_tv_weight_tuning_uses_only_the_tuning_region():
    rng = np.random.default_rng(0)
    fine = rng.random((2, 4, 32, 32)).astype(np.float32)
    coarse = XRFStack(fine.reshape(2, 4, 8, 4, 8, 4).mean(axis=(3, 5)), 200.0, ("Zn_K", "Mn_K"))
    fine = XRFStack(fine, 50.0, ("Zn_K", "Mn_K"))
    best, sweep = tune_tv_on_region(coarse, fine, gaussian_probe(40.0, 7.5), "Zn_K", [0.001, 0.1], n_frames=2, n_iter=5)
    assert best in (0.001, 0.1) and len(sweep) == 2
    with pytest.raises(ValueError, match="integer multiple"):
        tune_tv_on_region(XRFStack(coarse.data, 190.0, coarse.elements), fine, gaussian_probe(40.0, 7.5), "Zn_K", [0.1])


def test_simulated_tuning_region_is_another_sample_and_needs_a_noise_model(truth, stacks):
    _, raw, probe = stacks
    meta = {"step_px": 4, "mean_counts": {"Zn_K": 200.0}, "background_counts": 0.0, "readout_sigma_counts": 0.0}
    raw = XRFStack(raw.data, raw.pixel_size_nm, raw.elements, raw.angles_deg, metadata=meta)
    tuning = TVTuning(weights=(1e-4, 0.01, 1.0), n_frames=2, n_iter=60)
    best, sweep = tune_tv_on_simulated_region(truth, raw, probe, "Zn_K", tuning)
    assert best == sweep.weight[sweep.psnr_db.idxmax()] and sweep.weight.tolist() == [1e-4, 0.01, 1.0]
    other = battery_phantom(N, 7.5, seed=int(truth.metadata["seed"]) + tuning.seed_offset)
    assert not np.array_equal(other.data, truth.data)
    with pytest.raises(ValueError, match="fine_tuning_region"):
        tune_tv_on_simulated_region(truth, XRFStack(raw.data, 30.0, raw.elements), probe, "Zn_K", tuning)


def test_rows_markdown_and_report():
    with pytest.raises(ValueError, match="unknown result column"):
        make_row("e", "m", "2D", fsc_nm=3.0)
    rows = pd.DataFrame([make_row("e", "raw", "2D", psnr_db=20.0), make_row("t", "raw", "3D", "tomography_raw")])
    md = markdown_table(rows)
    assert md.splitlines()[0].startswith("| experiment | method | dims | fsc_split_half_nm")
    assert "| 60.8 |" in md and "| 20 |" in md
    results, markdown, html, figs, metrics = build_report(rows[:1], {}, rows[1:], {}, "one_bit",
                                                          pd.DataFrame({"weight": [0.01], "psnr_db": [25.0]}))
    assert len(results) == 2 and "<table" in html and "TV weight sweep" in html and "one-bit" in html
    assert "Unseen natural images" not in html  # no section without scores
    natural = pd.DataFrame({"network": ["pretrained"], "network_psnr_db": [27.8], "bicubic_psnr_db": [24.89],
                            "gain_db": [2.918]})
    html = build_report(rows[:1], {}, rows[1:], {}, "one_bit", natural_images=natural)[2]
    section = html[html.index("Unseen natural images"):]
    assert "gain_db" in section and "<td>2.92</td>" in section and "<td>pretrained</td>" in section
    assert metrics == {"2D.raw.e.psnr_db": [{"value": 20.0, "step": 0}]}
