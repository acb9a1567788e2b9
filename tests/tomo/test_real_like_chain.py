"""The real-like chain at small size: spectra files -> I0 -> centre -> alignment -> volume.

The same chain as benchmarks/real_like.py (which runs it at 96 px with a 20 px
offset and 2 px shifts); here 48 px, an 8 px offset and 1 px rms shifts.
"""

import numpy as np
import pytest

from xrf_sr_kedro.io.spectra import read_spectra
from xrf_sr_kedro.physics.real_like import ELEMENTS, simulate_real_like, write_real_like_files
from xrf_sr_kedro.tomo.align import align_stack, rigid_components
from xrf_sr_kedro.tomo.centre import find_center
from xrf_sr_kedro.tomo.recon import reconstruct

OFFSET_PX = 8.0


def _error(stack, offset_px, truth):
    errs = []
    for p, t in zip(stack.data, truth):
        v = reconstruct(p, stack.angles_deg, algorithm="sirt", n_iter=40,
                        center_offset_px=offset_px, device="cpu", progress=False)
        a = float((v * t).sum() / (v * v).sum())
        errs.append(np.linalg.norm(a * v - t) / np.linalg.norm(t))
    return float(np.mean(errs))


@pytest.fixture(scope="module")
def measurement(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real_like")
    m = simulate_real_like(n_det=48, n_rows=10, center_offset_px=OFFSET_PX, shift_rms_px=1.0,
                           seed=3)
    write_real_like_files(m, folder / "measured")
    write_real_like_files(m, folder / "aligned", perfectly_aligned=True)
    return m, folder


def test_i0_drift_is_removed(measurement):
    m, folder = measurement
    with_i0 = read_spectra(folder / "measured" / "scan_*.h5", ELEMENTS, i0_scaler="US_IC")
    without = read_spectra(folder / "measured" / "scan_*.h5", ELEMENTS)
    # total counts per projection follow I0 without normalisation, and are flat with it
    totals = lambda s: s.data.sum(axis=(0, 2, 3)) / s.data.sum(axis=(0, 2, 3)).mean()  # noqa: E731
    assert np.corrcoef(totals(without), m.i0)[0, 1] > 0.9
    assert np.std(totals(with_i0)) < 0.3 * np.std(totals(without))
    np.testing.assert_allclose(with_i0.metadata["i0_per_frame_mean"] / np.float64(1e5), m.i0, rtol=0.01)


def test_centre_alignment_and_volume_from_files(measurement):
    m, folder = measurement
    stack = read_spectra(folder / "measured" / "scan_*.h5", ELEMENTS, i0_scaler="US_IC")
    reference = read_spectra(folder / "aligned" / "scan_*.h5", ELEMENTS, i0_scaler="US_IC")
    centre = find_center(stack.data[1], stack.angles_deg)
    aligned, result = align_stack(stack, "Fe_K", centre.offset_px)
    centre = find_center(aligned.data[1], stack.angles_deg)
    aligned, result = align_stack(stack, "Fe_K", centre.offset_px, initial_shifts_px=result.shifts_px)

    assert abs(centre.offset_px - OFFSET_PX) < 0.5
    assert centre.trial_images.shape[0] == centre.trial_offsets_px.size > 3
    err = result.shifts_px + m.shifts_px  # applied shift = -displacement
    err[:, 0] -= err[:, 0].mean()
    err[:, 1] -= rigid_components(err[:, 1], stack.angles_deg)
    rms = np.sqrt((err**2).sum(axis=1).mean())
    assert rms < 0.5 < np.sqrt((m.shifts_px**2).sum(axis=1).mean())
    assert aligned.metadata["alignment"]["reference_element"] == "Fe_K"
    # the sinogram after alignment is closer to the perfectly aligned one than before
    ref_sino = reference.data[1][:, np.argmax(reference.data[1].sum(axis=(0, 2)))]
    before = np.linalg.norm(result.sinogram_before - ref_sino)
    after = np.linalg.norm(result.sinogram_after - ref_sino)
    assert after < 0.7 * before

    chain = _error(aligned, centre.offset_px, m.truth)
    perfect = _error(reference, OFFSET_PX, m.truth)
    unaligned = _error(stack, OFFSET_PX, m.truth)
    assert chain < 1.10 * perfect
    assert unaligned > 1.2 * perfect  # the test can tell: no alignment is much worse
