"""``reg_par`` is relative to the data's scale: the same value smooths alike at any count level."""

from __future__ import annotations

import numpy as np
import torch

from xrf_sr_kedro.tomo.iterative import ospml_quad
from xrf_sr_kedro.tomo.projector import ParallelBeamProjector
from xrf_sr_kedro.tomo.recon import penalty_scale, reconstruct
from xrf_sr_kedro.tomo.reproject import reproject


def _projections(n=32, rows=2, n_angles=16):
    yy, xx = np.mgrid[:n, :n] + 0.5 - n / 2
    vol = np.zeros((rows, n, n), np.float32)
    vol[:, yy**2 + xx**2 < 100] = 1.0
    vol[:, (yy - 3) ** 2 + (xx + 2) ** 2 < 9] = 3.0
    angles = np.arange(n_angles) * 180.0 / n_angles
    return reproject(vol, angles, device="cpu", progress=False), angles


def test_scaling_the_data_scales_the_reconstruction():
    proj, angles = _projections()
    kw = dict(algorithm="ospml_quad", n_iter=5, n_subsets=4, reg_par=2.0, device="cpu",
              progress=False)
    low = reconstruct(proj, angles, **kw)
    high = reconstruct(100.0 * proj, angles, **kw)
    np.testing.assert_allclose(high, 100.0 * low, rtol=1e-3, atol=1e-4 * high.max())


def test_the_weight_is_reg_par_over_the_mean_of_the_positive_data():
    proj, angles = _projections()
    scale = penalty_scale(proj)
    assert scale == proj[proj > 0].mean()
    got = reconstruct(proj, angles, algorithm="ospml_quad", n_iter=3, n_subsets=4, reg_par=2.0,
                      device="cpu", progress=False)
    sino = torch.from_numpy(np.ascontiguousarray(proj.transpose(1, 0, 2)))
    projector = ParallelBeamProjector(proj.shape[2], angles, n_det=proj.shape[2], device="cpu")
    ref = ospml_quad(sino, projector, 3, 4, 2.0 / scale, progress=False).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * ref.max())
    # an absolute weight would smooth the 100x data 100x less: not what reconstruct does
    absolute = ospml_quad(100.0 * sino, projector, 3, 4, 2.0 / scale, progress=False).numpy()
    assert np.abs(absolute - 100.0 * ref).max() > 1e-3 * np.abs(100.0 * ref).max()
