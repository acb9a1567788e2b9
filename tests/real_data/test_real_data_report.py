"""The real-data report (evaluation.real_data_report) says what the run found and warns
where it should: the centre and its method, no alignment, no I0, and the low-count guard
on each side of the measured threshold."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.evaluation.real_data_report import real_data_report
from xrf_sr_kedro.physics.dose import SHOWN_MAX_COUNTS, SHOWN_MIN_COUNTS
from xrf_sr_kedro.physics.real_like import simulate_real_like
from xrf_sr_kedro.tomo.prepare import prepare_stack
from xrf_sr_kedro.types import Volume, XRFStack


def _measured(sample_counts: float) -> XRFStack:
    """Poisson counts of the aligned real-like projections, scaled so the sample (pixels above
    the median) holds ``sample_counts`` per point; no I0 recorded."""
    m = simulate_real_like(n_det=64, n_rows=8, n_angles=12, center_offset_px=6.0,
                           shift_rms_px=0.0, seed=4)
    lam = m.aligned_counts.astype(float)
    lam *= sample_counts / lam[lam > np.median(lam)].mean()
    counts = np.random.default_rng(5).poisson(lam).astype(np.float32)
    return XRFStack(counts, m.pixel_size_nm, ("Mn_K", "Fe_K"), m.angles_deg, "counts")


def _report(measured: XRFStack) -> str:
    prepared = prepare_stack(measured, "Fe_K", centre=6.0, align=False)
    volume = Volume(np.zeros((2, 8, 64, 64), np.float32), measured.pixel_size_nm,
                    measured.elements, "counts")
    return real_data_report(prepared, measured, volume, SHOWN_MIN_COUNTS, SHOWN_MAX_COUNTS)


@pytest.mark.parametrize("sample_counts, warned", [(20.0, True), (400.0, False)])
def test_low_count_warning_follows_the_shown_range(sample_counts, warned):
    text = _report(_measured(sample_counts))
    for element in ("Mn_K", "Fe_K"):
        assert (f"Low-count warning ({element})" in text) == warned
    assert ("inside the shown range" in text) == (not warned)
    assert "between\n**100 and 1000** counts" in text


def test_fixed_centre_no_alignment_and_no_i0_are_said():
    text = _report(_measured(400.0))
    assert "**+6.00 px** (+600.0 nm)" in text
    assert "fixed (parameter)" in text
    assert "trial_centres.png" not in text  # no search, no trial images to link
    assert "Alignment off" in text and "shifts_per_angle.png" not in text
    assert "NOT normalised by the incident flux" in text
    assert "12 projections (0 to 165 degrees)" in text
    assert "The enhancement did not run" in text
    assert "| raw volume (raw_volume) | 2 x 8 x 64 x 64 | 100 nm voxels | counts |" in text
