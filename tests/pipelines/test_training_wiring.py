"""Which data train and choose the network, and which network the 3-D chain and the enhancement use."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.pipelines.enhancement.pipeline import create_pipeline as enhancement
from xrf_sr_kedro.pipelines.fine_tuning.pipeline import create_pipeline as fine_tuning
from xrf_sr_kedro.pipelines.pretraining.pipeline import create_pipeline as pretraining
from xrf_sr_kedro.pipelines.simulation import nodes as sim
from xrf_sr_kedro.pipelines.simulation.pipeline import create_pipeline as simulation
from xrf_sr_kedro.pipelines.tomography.pipeline import create_pipeline as tomography
from xrf_sr_kedro.types import PatchPairs


def test_the_selected_network_feeds_enhancement_and_both_3d_chains():
    assert "selected_model" in enhancement().inputs() and "fine_tuned_model" not in enhancement().inputs()
    tomo = tomography()
    users = [n.name for n in tomo.nodes if "selected_model" in n.inputs]
    assert len(users) == 2 and not any("fine_tuned_model" in n.inputs for n in tomo.nodes)
    chooser = [n for n in fine_tuning().nodes if "region_selected_model" in n.outputs]
    assert len(chooser) == 1
    assert set(chooser[0].inputs) == {"pretrained_model", "fine_tuned_model", "validation_region_pairs"}
    # then the fine-tuning on a second region's fine scan (no truth of the evaluated sample) ...
    (scan,) = [n for n in fine_tuning().nodes if "fine_scan_model" in n.outputs]
    assert set(scan.inputs) == {"region_selected_model", "fine_scan_coarse_xrf", "fine_scan_fine_xrf",
                                "probe_intensity", "params:fine_tuning.fine_scan"}
    # ... and the optional adaptation to the measured counts (no truth) writes selected_model
    (adapter,) = [n for n in fine_tuning().nodes if "selected_model" in n.outputs]
    assert set(adapter.inputs) == {"fine_scan_model", "raw_xrf", "probe_intensity",
                                   "params:fine_tuning.self_supervised"}
    # the second region is simulated from the probe and its own parameters, never the evaluated sample's
    (region,) = [n for n in simulation().nodes if "simulated_fine_scan_fine_xrf" in n.outputs]
    assert set(region.inputs) == {"probe_intensity", "params:simulation.fine_scan_region"}


def test_pretraining_trains_on_application_pairs_and_chooses_on_the_validation_region():
    (node,) = pretraining().nodes
    assert node.inputs[:3] == ["application_training_pairs", "validation_region_pairs",
                               "pretraining_validation_pairs"]
    outputs = simulation().all_outputs()
    assert {"application_training_pairs", "validation_region_pairs"} <= outputs
    # the validation region is made from the probe and its own parameters only
    (region,) = [n for n in simulation().nodes if "validation_region_pairs" in n.outputs]
    assert set(region.inputs) == {"probe_intensity", "params:simulation.validation_region"}


def test_enhancement_writes_enhanced_xrf_after_the_refinement_node():
    pipe = enhancement()
    (last,) = [n for n in pipe.nodes if "enhanced_xrf" in n.outputs]
    assert "params:enhancement.refinement" in last.inputs and "network_enhanced_xrf" in last.inputs


def _natural(n: int, lr_px: int) -> PatchPairs:
    rng = np.random.default_rng(0)
    hr = rng.random((n, 1, 4 * lr_px, 4 * lr_px)).astype(np.float32)
    lr = hr.reshape(n, 1, lr_px, 4, lr_px, 4).mean(axis=(3, 5))
    return PatchPairs(lr, hr, lr_pixel_size_nm=30.0, hr_pixel_size_nm=7.5, metadata={"source": "natural"})


def test_application_training_pairs_mix_half_natural_and_refuse_the_validation_seed():
    probe = gaussian_probe(40.0, 7.5)
    params = sim.ApplicationPairsParams(n_samples=3, size_px=32, seed=5, validation_seed=2)
    mix = sim.make_application_training_pairs(_natural(40, 8), probe, params)
    n_micro = mix.metadata["counts"][0]
    assert mix.metadata["counts"] == [n_micro, n_micro] and n_micro >= 3
    assert mix.lr.shape[1:] == (1, 8, 8) and mix.hr.shape[1:] == (1, 32, 32)
    with pytest.raises(ValueError, match="seed"):
        sim.make_application_training_pairs(
            _natural(40, 8), probe, sim.ApplicationPairsParams(n_samples=3, size_px=32, seed=2, validation_seed=2)
        )
    region = sim.make_validation_region_pairs(probe, sim.ValidationRegionParams(n_samples=2, size_px=32))
    assert region.lr.shape[1:] == (1, 8, 8) and np.allclose(region.metadata["mean_counts"], 150.0)


def test_dose_matched_fine_tuning_reads_only_the_measured_dose_and_validates_on_the_region():
    from xrf_sr_kedro.pipelines.fine_tuning import nodes as ft
    from xrf_sr_kedro.types import XRFStack

    (chooser,) = [n for n in fine_tuning().nodes if "fine_tuning_train_set" in n.outputs]
    assert "params:fine_tuning.dose_matched_pairs" in chooser.inputs and "raw_xrf" in chooser.inputs
    rng = np.random.default_rng(0)
    raw = XRFStack(rng.poisson(150.0, (2, 3, 16, 16)).astype(np.float32), 30.0, ("Zn_K", "Mn_K"), units="counts")
    region = PatchPairs(np.zeros((2, 1, 8, 8), np.float32), np.zeros((2, 1, 32, 32), np.float32), 30.0, 7.5)
    settings = ft.DoseMatchedParams(n_volumes=1, angles_per_volume=1, size_px=32)
    application = ft.ApplicationPairsParams(n_samples=3, size_px=32, seed=5)
    train, val = ft.choose_fine_tuning_data(region, region, region, region, raw, gaussian_probe(20.0, 7.5),
                                            "dose_matched_pairs", application, settings)
    assert val is region and train.metadata["source"] == "dose_matched_packings"
    lo, hi = train.metadata["counts_range"]
    assert lo == pytest.approx(75.0, rel=0.03) and hi == pytest.approx(300.0, rel=0.03)
    # the paper's recipe never makes them
    train, _ = ft.choose_fine_tuning_data(region, region, region, region, raw, gaussian_probe(20.0, 7.5),
                                          "scan_pairs", application, settings)
    assert train is region


def test_application_pairs_for_fine_tuning_are_the_pretraining_set_made_only_when_chosen():
    """fine_tuning.data: application_pairs makes simulation.application_pairs' set from the
    natural pairs (the same pairs as the pretraining's node); the default run, which does not
    pretrain, therefore never needs application_training_pairs."""
    from xrf_sr_kedro.pipelines.fine_tuning import nodes as ft
    from xrf_sr_kedro.types import XRFStack

    (chooser,) = [n for n in fine_tuning().nodes if "fine_tuning_train_set" in n.outputs]
    assert "application_training_pairs" not in chooser.inputs
    assert {"pretraining_pairs", "params:simulation.application_pairs"} <= set(chooser.inputs)
    probe = gaussian_probe(40.0, 7.5)
    natural = _natural(40, 8)
    raw = XRFStack(np.ones((2, 3, 16, 16), np.float32), 30.0, ("Zn_K", "Mn_K"), units="counts")
    region = PatchPairs(np.zeros((2, 1, 8, 8), np.float32), np.zeros((2, 1, 32, 32), np.float32), 30.0, 7.5)
    params = dict(n_samples=3, size_px=32, seed=5, validation_seed=2)
    train, val = ft.choose_fine_tuning_data(region, region, natural, region, raw, probe, "application_pairs",
                                            ft.ApplicationPairsParams(**params), ft.DoseMatchedParams())
    expected = sim.make_application_training_pairs(natural, probe, sim.ApplicationPairsParams(**params))
    assert val is region and train.metadata["counts"] == expected.metadata["counts"]
    np.testing.assert_array_equal(train.lr, expected.lr)
    np.testing.assert_array_equal(train.hr, expected.hr)


def test_the_fine_scan_dwells_its_fraction_of_the_coarse_scans_time():
    """A short-dwell fine scan has that fraction of the counts a point (signal and
    background), not a different sample: the same region at the two steps."""
    probe = gaussian_probe(40.0, 7.5)
    region = dict(size_vox=32, voxel_size_nm=7.5, n_angles=2, fine_step_px=1, coarse_step_px=4,
                  mean_counts={"Zn_K": 400.0, "Mn_K": 400.0}, background_counts=40.0, readout_sigma_counts=0.0)
    coarse, fine = sim.simulate_fine_tuning_scans(probe, sim.FineTuneRegionParams(**region, fine_dwell_fraction=0.25))
    _, full = sim.simulate_fine_tuning_scans(probe, sim.FineTuneRegionParams(**region))
    assert fine.shape_hw == (32, 32) and coarse.shape_hw == (8, 8) and fine.pixel_size_nm == 7.5
    ratio = fine.data.mean() / full.data.mean()
    assert ratio == pytest.approx(0.25, rel=0.05)
    # the mean counts a point of the coarse scan are unchanged: signal 400 + background 40
    assert coarse.data.mean() == pytest.approx(440.0, rel=0.05)
    with pytest.raises(ValueError, match="fine_dwell_fraction"):
        sim.simulate_fine_tuning_scans(probe, sim.FineTuneRegionParams(**region, fine_dwell_fraction=0.0))
