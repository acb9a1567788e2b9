import numpy as np
import pytest
import torch

from xrf_sr_kedro.tomo import ParallelBeamProjector


GEOMETRIES = [
    (24, None, 0.0, np.linspace(0, 180, 13, endpoint=False)),
    (31, 40, 2.7, np.linspace(-90, 90, 17)),
    (20, 16, -1.5, np.array([0.0, 45.0, 90.0, 133.3, 200.0, -30.0])),
]
METHODS = ["matrix", "matrix_free"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n, n_det, offset, angles", GEOMETRIES)
def test_dot_product_adjoint(n, n_det, offset, angles, method):
    g = torch.Generator().manual_seed(0)
    p = ParallelBeamProjector(n, angles, n_det=n_det, center_offset_px=offset,
                              device="cpu", dtype=torch.float64, method=method)
    x = torch.rand((3, n, n), generator=g, dtype=torch.float64)
    y = torch.rand((3, len(angles), p.n_det), generator=g, dtype=torch.float64)
    lhs = float((p.forward(x) * y).sum())
    rhs = float((x * p.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_adjoint_in_float32_blocks(monkeypatch):
    # Above max_matrix_bytes "auto" runs matrix-free: the same operator.
    p_store = ParallelBeamProjector(16, np.arange(0, 180, 10.0), device="cpu")
    p_stream = ParallelBeamProjector(16, np.arange(0, 180, 10.0), device="cpu",
                                     max_matrix_bytes=0)
    monkeypatch.setattr("xrf_sr_kedro.tomo.projector._ENTRIES_PER_CHUNK", 1000)
    x = torch.rand((2, 16, 16), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(p_store.forward(x), p_stream.forward(x), atol=1e-5)
    y = p_store.forward(x)
    assert torch.allclose(p_store.adjoint(y), p_stream.adjoint(y), atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_angle_zero_sums_rows_and_line_integral_of_disk(disk_phantom, method):
    n = 32
    p = ParallelBeamProjector(n, [0.0, 90.0, 37.0], device="cpu", dtype=torch.float64,
                              method=method)
    vol = torch.rand((1, n, n), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sino = p.forward(vol)
    assert torch.allclose(sino[0, 0], vol[0].sum(0))  # theta = 0: along the first axis
    assert torch.allclose(sino[0, 1], vol[0].sum(1).flip(0))  # theta = 90: along the second
    # Mass inside the field of view is conserved at every angle (Joseph: to ~0.2 %).
    disk = torch.from_numpy(disk_phantom(n))[None]
    d = p.forward(disk)
    assert torch.allclose(d.sum(-1), disk.sum().expand(1, 3), rtol=5e-3)


@pytest.mark.parametrize("method", METHODS)
def test_center_offset_shifts_projection(method):
    n = 32
    vol = torch.zeros((1, n, n), dtype=torch.float64)
    vol[0, :, 16] = 1.0  # a line along the first axis at column 16
    kw = {"device": "cpu", "dtype": torch.float64, "method": method}
    p0 = ParallelBeamProjector(n, [0.0], **kw)
    p3 = ParallelBeamProjector(n, [0.0], center_offset_px=3.0, **kw)
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


def _naive_joseph(img: np.ndarray, theta_deg: float, n_det: int, offset: float) -> np.ndarray:
    """Joseph's method written out ray by ray from the module docstring (float64)."""
    n = img.shape[0]
    t = np.deg2rad(theta_deg)
    c, s = np.cos(t), np.sin(t)
    pos = np.arange(n) + 0.5 - n / 2
    out = np.zeros(n_det)
    for d in range(n_det):
        s_d = d + 0.5 - n_det / 2 - offset
        for k in range(n):
            if abs(c) >= abs(s):  # row k = i, interpolate along j
                f = (s_d + pos[k] * s) / c + n / 2 - 0.5
                line = img[k, :]
            else:  # column k = j, interpolate along i
                f = (pos[k] * c - s_d) / s + n / 2 - 0.5
                line = img[:, k]
            j0 = int(np.floor(f))
            for j, w in ((j0, 1 - (f - j0)), (j0 + 1, f - j0)):
                if 0 <= j < n:
                    out[d] += w * line[j] / max(abs(c), abs(s))
    return out


@pytest.mark.parametrize("method", METHODS)
def test_agrees_with_naive_ray_by_ray_reference_with_centre_offset(method):
    n, n_det, offset = 13, 17, 1.8
    angles = [0.0, 20.0, 45.0, 71.0, 90.0, 118.0, 160.0, 243.0]
    img = np.random.default_rng(3).random((n, n))
    p = ParallelBeamProjector(n, angles, n_det=n_det, center_offset_px=offset,
                              device="cpu", dtype=torch.float64, method=method)
    sino = p.forward(torch.from_numpy(img)[None])[0].numpy()
    ref = np.stack([_naive_joseph(img, a, n_det, offset) for a in angles])
    np.testing.assert_allclose(sino, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n, n_det, offset, angles", GEOMETRIES)
def test_matrix_free_equals_matrix_path(n, n_det, offset, angles):
    g = torch.Generator().manual_seed(4)
    kw = {"n_det": n_det, "center_offset_px": offset, "device": "cpu", "dtype": torch.float64}
    pm = ParallelBeamProjector(n, angles, method="matrix", **kw)
    pf = ParallelBeamProjector(n, angles, method="matrix_free", chunk_bytes=3000, **kw)
    x = torch.rand((5, n, n), generator=g, dtype=torch.float64)
    y = torch.rand((5, len(angles), pm.n_det), generator=g, dtype=torch.float64)
    torch.testing.assert_close(pf.forward(x), pm.forward(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(pf.adjoint(y), pm.adjoint(y), rtol=1e-12, atol=1e-12)
    # a subset keeps the method (OSEM/OSPML build projectors through it)
    assert pf.subset([0, 2]).method == "matrix_free"


def test_matrix_free_adjoint_to_float32_rounding():
    n, angles = 64, np.linspace(0, 180, 36, endpoint=False)
    p = ParallelBeamProjector(n, angles, center_offset_px=-3.3, device="cpu",
                              method="matrix_free")
    g = torch.Generator().manual_seed(5)
    x = torch.rand((4, n, n), generator=g)
    y = torch.rand((4, 36, n), generator=g)
    lhs = float((p.forward(x).double() * y.double()).sum())
    rhs = float((x.double() * p.adjoint(y).double()).sum())
    assert abs(lhs - rhs) <= 1e-6 * abs(lhs)


def test_auto_uses_the_matrix_only_when_it_fits():
    small = ParallelBeamProjector(64, np.arange(0, 180, 5.0), device="cpu")
    assert small.method == "auto" and small.uses_matrix
    big = ParallelBeamProjector(2048, np.arange(0, 180, 5.0), device="cpu")
    assert big.matrix_bytes() > big.max_matrix_bytes and not big.uses_matrix
    capped = ParallelBeamProjector(64, np.arange(0, 180, 5.0), device="cpu",
                                   max_matrix_bytes=1000)
    assert not capped.uses_matrix
    with pytest.raises(ValueError, match="method must be one of"):
        ParallelBeamProjector(8, [0.0], method="sparse")


_PEAK_SCRIPT = """
import resource, sys, numpy as np, torch
from xrf_sr_kedro.tomo import ParallelBeamProjector
torch.set_num_threads(1)
n, n_angles, n_slices = 256, int(sys.argv[1]), 4
p = ParallelBeamProjector(n, np.linspace(0, 180, n_angles, endpoint=False), device="cpu",
                          method="matrix_free", chunk_bytes=2**20)
x = torch.rand(n_slices, n, n)
y = torch.rand(n_slices, n_angles, n)
ParallelBeamProjector(16, [0.0, 1.0], device="cpu", method="matrix_free").forward(x[:, :16, :16])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
p.adjoint(p.forward(x)); p.adjoint(y)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_matrix_free_memory_does_not_grow_with_angles():
    # 4 slices of 256 px: with 8 or 720 angles the matrix-free kernel needs a few
    # copies of the batch (~1 MB each); the matrix of 720 angles alone is ~1.5 GB.
    import os
    import subprocess
    import sys

    def peak_growth(n_angles: int) -> int:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(n_angles)], env=env,
                             capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    few, many = peak_growth(8), peak_growth(720)
    matrix = ParallelBeamProjector(256, np.arange(720) / 4.0, device="cpu").matrix_bytes()
    assert matrix > 1e9
    sino_bytes = 4 * 720 * 256 * 4
    assert many - few < 4 * sino_bytes + 8 * 2**20, (few, many)
    assert many < 48 * 2**20, many
