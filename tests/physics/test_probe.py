import numpy as np
import pytest

from xrf_sr_kedro.physics.probe import (
    gaussian_probe,
    probe_from_modes,
    probe_fwhm_nm,
    probe_fwhm_xy_nm,
    zone_plate_probe,
)


def test_zone_plate_default_matches_paper_focus():
    probe = zone_plate_probe()  # 30 nm zones, 250 um, 10 keV
    assert probe.intensity.shape == (64, 64)
    assert probe.pixel_size_nm == 7.5
    assert probe.intensity.sum() == pytest.approx(1.0, abs=1e-5)
    assert abs(probe.metadata["fwhm_nm"] - 40.0) <= 0.15 * 40.0
    assert probe.metadata["focal_length_mm"] == pytest.approx(60.5, rel=0.01)
    # beam centre on the grid's geometric centre (symmetric grid)
    np.testing.assert_allclose(probe.intensity, probe.intensity[::-1, ::-1], atol=1e-7)


def test_zone_plate_physics_trends():
    coherent = zone_plate_probe(central_stop_um=0.0, source_fwhm_nm=0.0)
    # diffraction limit of an open circular pupil: FWHM = 1.03 lambda f / D = 1.03 dr
    assert coherent.metadata["fwhm_nm"] == pytest.approx(1.03 * 30.0, rel=0.05)
    finer = zone_plate_probe(outer_zone_width_nm=15.0, source_fwhm_nm=0.0, pixel_size_nm=2.0)
    assert finer.metadata["fwhm_nm"] < 0.6 * coherent.metadata["fwhm_nm"]
    defocused = zone_plate_probe(defocus_um=60.0)
    assert defocused.metadata["fwhm_nm"] > 1.5 * zone_plate_probe().metadata["fwhm_nm"]


def test_gaussian_probe_fwhm_and_normalisation():
    p = gaussian_probe(40.0, 7.5)
    assert p.intensity.sum() == pytest.approx(1.0, abs=1e-6)
    assert p.intensity.shape[0] % 2 == 0
    assert probe_fwhm_nm(p) == pytest.approx(40.0, rel=0.05)
    fine = gaussian_probe(40.0, 1.0, size_px=101)
    fx, fy = probe_fwhm_xy_nm(fine)
    assert fx == pytest.approx(40.0, rel=0.01) and fy == pytest.approx(40.0, rel=0.01)


def _gaussian_mode(n, sigma_px, cy, cx):
    yy, xx = np.mgrid[:n, :n]
    amp = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (4 * sigma_px**2))
    return amp * np.exp(1j * 0.3 * xx)  # |P|^2 is a Gaussian of std sigma_px


def test_probe_from_modes_resamples_with_flux_and_centres():
    mode = _gaussian_mode(48, 2.0, 20.0, 27.0)  # intensity sigma 2 px at 5 nm: FWHM 23.5 nm
    modes = np.stack([mode, 0.5 * mode])
    p = probe_from_modes(modes, pixel_size_nm=5.0)
    assert p.metadata["n_modes"] == 2
    assert p.metadata["fwhm_nm"] == pytest.approx(2.3548 * 2 * 5.0, rel=0.05)
    coarse = probe_from_modes(modes, pixel_size_nm=5.0, target_pixel_size_nm=10.0, size_px=16)
    assert coarse.pixel_size_nm == 10.0 and coarse.intensity.shape == (16, 16)
    assert coarse.metadata["kept_flux_fraction"] == pytest.approx(1.0, abs=1e-6)
    # centroid within half a pixel of the geometric centre
    yy, xx = np.mgrid[:16, :16]
    cy = (coarse.intensity * yy).sum()
    cx = (coarse.intensity * xx).sum()
    assert abs(cy - 7.5) <= 0.5 and abs(cx - 7.5) <= 0.5
    fine = probe_from_modes(mode, pixel_size_nm=5.0, target_pixel_size_nm=2.5)
    assert fine.metadata["fwhm_nm"] == pytest.approx(23.5, rel=0.08)


def test_probe_validation():
    with pytest.raises(ValueError, match="modes must have shape"):
        probe_from_modes(np.ones((2, 2, 3, 3)), 5.0)
    with pytest.raises(ValueError, match="fwhm_nm"):
        gaussian_probe(-1.0, 7.5)
    with pytest.raises(ValueError, match="central_stop_um"):
        zone_plate_probe(central_stop_um=300.0)


def test_resample_probe_keeps_flux_and_width():
    from xrf_sr_kedro.physics.probe import gaussian_probe, probe_fwhm_nm, resample_probe

    probe = gaussian_probe(60.0, pixel_size_nm=7.5)
    assert resample_probe(probe, 7.5) is probe
    finer = resample_probe(probe, 3.75)
    coarser = resample_probe(probe, 15.0)
    for p in (finer, coarser):
        assert p.intensity.sum() == pytest.approx(1.0, rel=1e-6)
        assert probe_fwhm_nm(p) == pytest.approx(60.0, rel=0.15)
    assert finer.pixel_size_nm == 3.75 and coarser.pixel_size_nm == 15.0
