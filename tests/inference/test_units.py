"""Enhanced maps in counts per fine pixel: total conserved, unit named, consumers right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from xrf_sr_kedro.inference.consistency import consistency_report, data_consistency
from xrf_sr_kedro.inference.refine import refine_stack
from xrf_sr_kedro.inference.stack import enhance_stack
from xrf_sr_kedro.inference.units import (
    fine_pixel_units,
    fine_pixels_per_measured_pixel,
    per_fine_pixel,
    per_measured_pixel,
)
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.types import ProbeIntensity, XRFStack


class Bicubic(nn.Module):
    """A stand-in network: bicubic 4x (the engine's arithmetic is what is tested)."""

    in_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)


def _sample(shape=(1, 2, 96, 96), seed=0) -> np.ndarray:
    """A smooth positive sample surrounded by zeros (a projection in air), fine grid."""
    rng = np.random.default_rng(seed)
    x = np.zeros(shape, dtype=np.float32)
    inner = ndimage.gaussian_filter(rng.random((*shape[:2], 64, 64)), sigma=(0, 0, 3, 3))
    x[..., 16:80, 16:80] = 50.0 * inner + 2.0
    return x


def _measured(probe: ProbeIntensity, metadata=None) -> tuple[np.ndarray, XRFStack]:
    truth = _sample()
    counts = flyscan(truth, probe.intensity, 4)  # counts per measured pixel (30 nm)
    return truth, XRFStack(counts, pixel_size_nm=30.0, elements=("Fe_K",),
                           angles_deg=np.array([0.0, 90.0]), metadata=metadata or {})


def test_enhanced_maps_sum_to_the_measured_counts_and_say_their_unit() -> None:
    probe = gaussian_probe(25.0, 7.5)
    _, measured = _measured(probe)
    # mean matching (no probe): the engine's output is 16x the measured total; the stack
    # divides by 16 so each map's total equals the measured one exactly
    plain = enhance_stack(Bicubic(), measured, {"config": {"scale": 4}})
    np.testing.assert_allclose(plain.data.sum(axis=(2, 3)), measured.data.sum(axis=(2, 3)),
                               rtol=1e-5)
    # through the forward model (with the probe) the total is conserved up to what the
    # zero-padded scan loses at the border: nothing for a sample surrounded by air
    exact = enhance_stack(Bicubic(), measured, {"config": {"scale": 4}},
                          probe_intensity=probe.intensity)
    np.testing.assert_allclose(exact.data.sum(axis=(2, 3)), measured.data.sum(axis=(2, 3)),
                               rtol=1e-3)
    for out in (plain, exact):
        assert out.units == "counts per fine pixel (7.5 x 7.5 nm)"
        assert out.pixel_size_nm == pytest.approx(7.5)
        assert fine_pixels_per_measured_pixel(out) == 16
        assert out.metadata["enhancement"]["units"] == out.units
        assert out.metadata["enhancement"]["input_units"] == "counts per measured pixel"
    # a 4x4 block of fine pixels holds what its measured pixel holds
    blocks = plain.data.reshape(1, 2, 24, 4, 24, 4).sum(axis=(3, 5))
    assert abs(blocks.sum() - measured.data.sum()) < 1e-4 * measured.data.sum()


def test_anisotropic_pixels_name_both_fine_sizes() -> None:
    probe = gaussian_probe(25.0, 7.5)
    _, measured = _measured(probe, {"pixel_size_y_nm": 60.0, "pixel_size_x_nm": 30.0})
    out = enhance_stack(Bicubic(), measured, {"config": {"scale": 4}})
    assert out.units == "counts per fine pixel (15 x 7.5 nm)"
    assert (out.metadata["pixel_size_y_nm"], out.metadata["pixel_size_x_nm"]) == (15.0, 7.5)
    assert fine_pixel_units("fitted counts", 25.0, 25.0) == (
        "fitted counts per fine pixel (25 x 25 nm)")


def test_helpers_are_inverse() -> None:
    x = np.random.default_rng(1).random((3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(per_measured_pixel(per_fine_pixel(x, 16), 16), x, rtol=1e-6)
    assert per_fine_pixel(x, 16).sum() == pytest.approx(x.sum() / 16, rel=1e-5)


def test_consistency_maps_counts_per_fine_pixel_to_counts_per_measured_pixel() -> None:
    probe = gaussian_probe(25.0, 7.5)
    truth, measured = _measured(probe)
    record = {"enhancement": {"fine_pixels_per_measured_pixel": 16}}
    # the truth in counts per fine pixel, labelled so, re-degrades to the measurement
    fine = XRFStack(per_fine_pixel(truth, 16), 7.5, ("Fe_K",), measured.angles_deg,
                    units="counts per fine pixel (7.5 x 7.5 nm)", metadata=record)
    report = data_consistency(measured, fine, probe, 4)
    assert report["relative_l2_overall"] < 1e-5
    assert abs(report["total_signal_error_overall"]) < 1e-5
    # the same values without the record are taken as counts per measured pixel: 16x off
    unlabelled = XRFStack(fine.data, 7.5, ("Fe_K",), measured.angles_deg)
    report = data_consistency(measured, unlabelled, probe, 4)
    assert report["total_signal_error_overall"] == pytest.approx(1 / 16 - 1, rel=1e-4)
    with pytest.raises(ValueError, match="step_px=2"):
        data_consistency(measured, fine, probe, 2)


def test_consistency_report_and_figures_after_enhancement() -> None:
    probe = gaussian_probe(25.0, 7.5)
    _, measured = _measured(probe)
    enhanced = enhance_stack(Bicubic(), measured, {"config": {"scale": 4}},
                             probe_intensity=probe.intensity)
    metrics, figures = consistency_report(measured, enhanced, probe, n_example_maps=1,
                                          shown_min_counts=None)
    assert abs(metrics["consistency_total_signal_error_overall"][0]["value"]) < 1e-4
    # bicubic of a smooth sample re-degrades close to the measurement (16x off otherwise)
    assert metrics["consistency_relative_l2_overall"][0]["value"] < 0.1
    labels = [ax.get_ylabel() for ax in figures["Fe_K_frame000.png"].axes if ax.get_ylabel()]
    assert labels == ["counts", "counts per fine pixel (7.5 x 7.5 nm)", "residual (counts)"]
    title = figures["Fe_K_frame000.png"].get_suptitle()
    assert title.startswith("Fe_K, frame 0 of 2 (0.0 deg)\n")


def test_refinement_does_not_depend_on_the_unit_and_keeps_it() -> None:
    probe = gaussian_probe(25.0, 7.5)
    truth, measured = _measured(probe)
    rng = np.random.default_rng(3)
    noisy = rng.poisson(np.clip(measured.data, 0, None)).astype(np.float32)
    counts = XRFStack(noisy, 30.0, ("Fe_K",), measured.angles_deg)
    enhanced = enhance_stack(Bicubic(), counts, {"config": {"scale": 4}},
                             probe_intensity=probe.intensity)
    intensive = XRFStack(per_measured_pixel(enhanced.data, 16), 7.5, ("Fe_K",),
                         counts.angles_deg)
    refined = refine_stack(enhanced, counts, probe, anchor_weight=1.0, n_iter=4)
    reference = refine_stack(intensive, counts, probe, anchor_weight=1.0, n_iter=4)
    assert not np.allclose(refined.data, enhanced.data)  # it did refine
    np.testing.assert_allclose(refined.data, per_fine_pixel(reference.data, 16), rtol=1e-4,
                               atol=1e-5 * float(refined.data.max()))
    assert refined.units == enhanced.units
    np.testing.assert_allclose(refined.data.sum(axis=(2, 3)), enhanced.data.sum(axis=(2, 3)),
                               rtol=1e-4)
