import numpy as np
import pytest
import torch

from naive_flyscan import naive_flyscan
from xrf_sr_kedro.physics.flyscan import flyscan, flyscan_adjoint, flyscan_kernel
from xrf_sr_kedro.physics.probe import gaussian_probe

RNG = np.random.default_rng(1234)
PROBES = {
    "odd_random": RNG.random((7, 7)),
    "even_random": RNG.random((8, 8)),
    "rect_random": RNG.random((6, 9)),
    "gaussian": gaussian_probe(30.0, 7.5, size_px=12).intensity,
}


@pytest.mark.parametrize("probe_name", list(PROBES))
@pytest.mark.parametrize("step_px", [1, 3, 4])
@pytest.mark.parametrize("fast_axis", ["x", "y"])
@pytest.mark.parametrize("mode,n_substeps", [("fly", None), ("step", None), ("fly", 3)])
def test_equals_naive_per_spot_loop(probe_name, step_px, fast_axis, mode, n_substeps):
    probe = PROBES[probe_name]
    x = np.random.default_rng(7).random((19, 22))
    fast = flyscan(x, probe, step_px, fast_axis, mode, n_substeps)
    ref = naive_flyscan(x, probe, step_px, fast_axis, mode, n_substeps)
    assert fast.dtype == np.float32
    assert fast.shape == (19 // step_px, 22 // step_px)
    np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_linear():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 32, 40))
    p = PROBES["even_random"]
    lhs = flyscan(2.5 * a - 0.7 * b, p, 4)
    rhs = 2.5 * flyscan(a, p, 4) - 0.7 * flyscan(b, p, 4)
    np.testing.assert_allclose(lhs, rhs, atol=1e-5)


@pytest.mark.parametrize("fast_axis", ["x", "y"])
@pytest.mark.parametrize("mode", ["fly", "step"])
def test_unit_sum_probe_conserves_mean(fast_axis, mode):
    probe = gaussian_probe(40.0, 7.5).intensity  # sums to 1
    k = flyscan_kernel(probe, 4, fast_axis, mode)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    # constant image: exact away from the border (zero padding outside)
    lr = flyscan(np.full((96, 96), 3.0), probe, 4, fast_axis, mode)
    m = (k.shape[0] // 4) + 1
    np.testing.assert_allclose(lr[m:-m, m:-m], 3.0, rtol=1e-5)
    # smooth sample fully inside the field of view: mean conserved
    yy, xx = np.mgrid[:128, :128]
    x = np.exp(-((yy - 64.0) ** 2 + (xx - 60.0) ** 2) / (2 * 14.0**2))
    lr = flyscan(x, probe, 4, fast_axis, mode)
    assert lr.mean() == pytest.approx(x.mean(), rel=1e-4)


@pytest.mark.parametrize("fast_axis", ["x", "y"])
@pytest.mark.parametrize("step_px", [3, 4])
def test_point_source_gives_kernel_at_documented_position(fast_axis, step_px):
    probe = PROBES["rect_random"]
    s = step_px
    k = flyscan_kernel(probe, s, fast_axis, "fly")
    kh, kw = k.shape
    assert (kh - s) % 2 == 0 and (kw - s) % 2 == 0
    y0, x0 = 21, 17
    x = np.zeros((45, 42))
    x[y0, x0] = 1.0
    lr = flyscan(x, probe, s, fast_axis)
    expected = np.zeros_like(lr, dtype=np.float64)
    for i in range(lr.shape[0]):
        for j in range(lr.shape[1]):
            u = y0 - i * s + (kh - s) // 2
            v = x0 - j * s + (kw - s) // 2
            if 0 <= u < kh and 0 <= v < kw:
                expected[i, j] = k[u, v]
    np.testing.assert_allclose(lr, expected, atol=1e-6)


def test_fly_kernel_is_probe_times_motion():
    probe = PROBES["even_random"]
    k = flyscan_kernel(probe, 4, "x", "fly")
    # even probe, n = s = 4: trapezoid [1/2, 1, 1, 1, 1/2] / 4 along x
    motion = np.array([0.5, 1, 1, 1, 0.5]) / 4
    full = np.zeros((8, 12))
    for o, w in enumerate(motion):
        full[:, o : o + 8] += w * probe
    inner = k[np.any(k, axis=1)][:, np.any(k, axis=0)]
    np.testing.assert_allclose(inner, full)
    step = flyscan_kernel(probe, 4, "x", "step")
    np.testing.assert_allclose(step[np.any(step, axis=1)][:, np.any(step, axis=0)], probe)


@pytest.mark.parametrize("fast_axis", ["x", "y"])
@pytest.mark.parametrize("shape,step_px", [((24, 31), 4), ((17, 17), 3), ((10, 12), 1)])
def test_adjoint(fast_axis, shape, step_px):
    rng = np.random.default_rng(3)
    probe = PROBES["rect_random"]
    x = rng.standard_normal(shape)
    y = rng.standard_normal((shape[0] // step_px, shape[1] // step_px))
    ax = flyscan(x, probe, step_px, fast_axis).astype(np.float64)
    aty = flyscan_adjoint(y, probe, step_px, shape, fast_axis).astype(np.float64)
    assert aty.shape == shape
    assert np.vdot(ax, y) == pytest.approx(np.vdot(x, aty), rel=1e-5)


def test_torch_batch_matches_numpy_and_is_differentiable():
    rng = np.random.default_rng(5)
    probe = gaussian_probe(40.0, 7.5, size_px=16).intensity
    x = rng.random((3, 1, 32, 36)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = flyscan(xt, torch.tensor(probe), 4, "y")
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    assert tuple(yt.shape) == (3, 1, 8, 9)
    np.testing.assert_allclose(yt.detach().numpy(), flyscan(x, probe, 4, "y"), atol=1e-6)
    w = torch.tensor(rng.random((3, 1, 8, 9)), dtype=torch.float32)
    (yt * w).sum().backward()
    grad_expected = flyscan_adjoint(w.numpy(), probe, 4, (32, 36), "y")
    np.testing.assert_allclose(xt.grad.numpy(), grad_expected, atol=1e-6)
    at = flyscan_adjoint(w, probe, 4, (32, 36), "y")
    assert isinstance(at, torch.Tensor)
    np.testing.assert_allclose(at.numpy(), grad_expected, atol=1e-6)


def test_input_validation():
    with pytest.raises(ValueError, match="probe must be 2-D"):
        flyscan(np.zeros((16, 16)), np.ones((2, 3, 3)), 4)
    with pytest.raises(ValueError, match="step_px"):
        flyscan(np.zeros((16, 16)), np.ones((3, 3)), 0)
    with pytest.raises(ValueError, match="fast_axis"):
        flyscan(np.zeros((16, 16)), np.ones((3, 3)), 2, fast_axis="z")
    with pytest.raises(ValueError, match="n_substeps"):
        flyscan(np.zeros((16, 16)), np.ones((3, 3)), 2, mode="step", n_substeps=4)
    with pytest.raises(ValueError, match="lr must have shape"):
        flyscan_adjoint(np.zeros((3, 3)), np.ones((3, 3)), 4, (16, 16))


@pytest.mark.parametrize("fast_axis", ["x", "y"])
def test_torch_fft_path_matches_scipy_path(monkeypatch, fast_axis):
    """The torch.fft implementation (used on GPUs) agrees with the scipy one."""
    import xrf_sr_kedro.physics.flyscan as fs

    rng = np.random.default_rng(9)
    probe = PROBES["rect_random"]
    x = rng.random((2, 1, 27, 22))
    y = rng.random((2, 1, 27 // 4, 22 // 4))
    ref_fwd = flyscan(x, probe, 4, fast_axis)
    ref_adj = flyscan_adjoint(y, probe, 4, (27, 22), fast_axis)
    monkeypatch.setattr(fs, "_TORCH_CPU_VIA_SCIPY", False)
    xt = torch.tensor(x, requires_grad=True)
    out = flyscan(xt, probe, 4, fast_axis)
    np.testing.assert_allclose(out.detach().numpy(), ref_fwd, atol=1e-6)
    (out * torch.tensor(y)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), ref_adj, atol=1e-6)
    adj = flyscan_adjoint(torch.tensor(y), probe, 4, (27, 22), fast_axis)
    np.testing.assert_allclose(adj.numpy(), ref_adj, atol=1e-6)
