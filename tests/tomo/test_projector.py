import numpy as np
import pytest
import torch

from xrf_sr_kedro.tomo import ParallelBeamProjector


@pytest.mark.parametrize(
    "n, n_det, offset, angles",
    [
        (24, None, 0.0, np.linspace(0, 180, 13, endpoint=False)),
        (31, 40, 2.7, np.linspace(-90, 90, 17)),
        (20, 16, -1.5, np.array([0.0, 45.0, 90.0, 133.3, 200.0, -30.0])),
    ],
)
def test_dot_product_adjoint(n, n_det, offset, angles):
    g = torch.Generator().manual_seed(0)
    p = ParallelBeamProjector(n, angles, n_det=n_det, center_offset_px=offset,
                              device="cpu", dtype=torch.float64)
    x = torch.rand((3, n, n), generator=g, dtype=torch.float64)
    y = torch.rand((3, len(angles), p.n_det), generator=g, dtype=torch.float64)
    lhs = float((p.forward(x) * y).sum())
    rhs = float((x * p.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_adjoint_in_float32_blocks(monkeypatch):
    # Force the block-by-block (not stored) path; same operator.
    p_store = ParallelBeamProjector(16, np.arange(0, 180, 10.0), device="cpu")
    p_stream = ParallelBeamProjector(16, np.arange(0, 180, 10.0), device="cpu",
                                     max_matrix_bytes=0)
    monkeypatch.setattr("xrf_sr_kedro.tomo.projector._ENTRIES_PER_CHUNK", 1000)
    x = torch.rand((2, 16, 16), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(p_store.forward(x), p_stream.forward(x), atol=1e-5)
    y = p_store.forward(x)
    assert torch.allclose(p_store.adjoint(y), p_stream.adjoint(y), atol=1e-4)


def test_angle_zero_sums_rows_and_line_integral_of_disk(disk_phantom):
    n = 32
    p = ParallelBeamProjector(n, [0.0, 90.0, 37.0], device="cpu", dtype=torch.float64)
    vol = torch.rand((1, n, n), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sino = p.forward(vol)
    assert torch.allclose(sino[0, 0], vol[0].sum(0))  # theta = 0: along the first axis
    assert torch.allclose(sino[0, 1], vol[0].sum(1).flip(0))  # theta = 90: along the second
    # Mass inside the field of view is conserved at every angle (Joseph: to ~0.2 %).
    disk = torch.from_numpy(disk_phantom(n))[None]
    d = p.forward(disk)
    assert torch.allclose(d.sum(-1), disk.sum().expand(1, 3), rtol=5e-3)


def test_center_offset_shifts_projection():
    n = 32
    vol = torch.zeros((1, n, n), dtype=torch.float64)
    vol[0, :, 16] = 1.0  # a line along the first axis at column 16
    p0 = ParallelBeamProjector(n, [0.0], device="cpu", dtype=torch.float64)
    p3 = ParallelBeamProjector(n, [0.0], center_offset_px=3.0, device="cpu", dtype=torch.float64)
    assert int(p0.forward(vol)[0, 0].argmax()) == 16
    assert int(p3.forward(vol)[0, 0].argmax()) == 19  # axis at detector centre + 3 px


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        ParallelBeamProjector(8, [0.0, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        ParallelBeamProjector(8, [[0.0, 1.0]])
    p = ParallelBeamProjector(8, [0.0, 90.0], device="cpu")
    with pytest.raises(ValueError, match=r"vol must have shape \(n_slices, 8, 8\)"):
        p.forward(torch.zeros(1, 8, 9))
    with pytest.raises(ValueError, match="sino must have shape"):
        p.adjoint(torch.zeros(1, 3, 8))
