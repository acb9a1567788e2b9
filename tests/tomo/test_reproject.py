import numpy as np
import pytest

from xrf_sr_kedro.tomo import ParallelBeamProjector, even_angles_deg, reconstruct, reproject


def test_even_angles_include_both_ends():
    a = even_angles_deg(91)
    assert a.shape == (91,) and a[0] == -90.0 and a[-1] == 90.0
    np.testing.assert_allclose(np.diff(a), 2.0)
    assert even_angles_deg(270).shape == (270,)
    with pytest.raises(ValueError, match="positive integer"):
        even_angles_deg(0)


def test_reprojection_matches_measured_projections(disk_phantom):
    n, n_rows = 40, 3
    angles = even_angles_deg(45)
    vol = np.stack([disk_phantom(n) * (1 + 0.2 * k) for k in range(n_rows)]).astype(np.float32)
    import torch

    p = ParallelBeamProjector(n, angles, device="cpu")
    measured = p.forward(torch.from_numpy(vol)).numpy().transpose(1, 0, 2)  # DX order
    rec = reconstruct(measured, angles, "sirt", n_iter=200, slice_batch=2, device="cpu",
                      progress=False)
    again = reproject(rec, angles, slice_batch=2, device="cpu", progress=False)
    assert again.shape == measured.shape == (45, n_rows, n)
    assert np.linalg.norm(again - measured) / np.linalg.norm(measured) < 0.02


def test_limited_projection_path(disk_phantom):
    # Reconstruct from every second projection, reproject to all of them.
    n = 32
    angles = even_angles_deg(31)
    vol = disk_phantom(n)[None].astype(np.float32)
    full = reproject(vol, angles, device="cpu", progress=False)
    rec = reconstruct(full[::2], angles[::2], "ospml_quad", n_iter=10, n_subsets=4,
                      reg_par=0.01, device="cpu", progress=False)
    upsampled = reproject(rec, angles, device="cpu", progress=False)
    assert np.linalg.norm(upsampled - full) / np.linalg.norm(full) < 0.05


def test_reproject_validates_volume():
    with pytest.raises(ValueError, match=r"volume must have shape \(n_slices, N, N\)"):
        reproject(np.zeros((2, 8, 9)), [0.0])
    with pytest.raises(ValueError, match="NaN"):
        reproject(np.zeros((2, 8, 8)), [0.0, np.nan])
