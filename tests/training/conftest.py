from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.types import PatchPairs


def smooth_pairs(n: int, lr_px: int = 8, scale: int = 4, seed: int = 0) -> PatchPairs:
    """Smooth random HR patches in [0, 1] and their 4x4-averaged LR partners."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 1, lr_px // 2 + 1, lr_px // 2 + 1)).astype(np.float32))
    hr = F.interpolate(coarse, size=(lr_px * scale, lr_px * scale), mode="bilinear",
                       align_corners=True)
    lr = F.avg_pool2d(hr, scale)
    return PatchPairs(lr.numpy(), hr.numpy(), lr_pixel_size_nm=120.0, hr_pixel_size_nm=30.0)


def _blob_maps(rng: np.random.Generator, n: int, size: int, n_blobs: int = 6,
               max_radius_px: float = 8.0) -> np.ndarray:
    """``n`` maps of ``size`` px: a 0.1 floor with ``n_blobs`` discs of radius 3 to
    ``max_radius_px`` and value 0.5-1, drawn from ``rng`` (the caller's stream goes on)."""
    yy, xx = np.mgrid[:size, :size]
    maps = []
    for _ in range(n):
        x = np.full((size, size), 0.1)
        for _ in range(n_blobs):
            cy, cx, r = *rng.uniform(8, size - 8, 2), rng.uniform(3, max_radius_px)
            x[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = rng.uniform(0.5, 1.0)
        maps.append(x)
    return np.stack(maps)


def _blob_counts(n: int = 6, size: int = 64, counts: float = 200.0, seed: int = 0):
    """Blobs on a 7.5 nm grid (``size`` px), fly-scanned at 30 nm and Poisson-counted:
    ``(counts (n, size / 4, size / 4) int64, probe)``."""
    rng = np.random.default_rng(seed)
    maps = _blob_maps(rng, n, size)
    probe = gaussian_probe(40.0, 7.5)
    clean = flyscan(maps, probe, 4)
    return rng.poisson(clean / clean.mean() * counts).astype(np.int64), probe


@pytest.fixture
def blob_counts():
    """Factory of measured-like counts for the self-supervised tests (see :func:`_blob_counts`)."""
    return _blob_counts


@pytest.fixture
def blob_maps():
    """Factory of blob maps on the fine grid (see :func:`_blob_maps`)."""
    return _blob_maps


@pytest.fixture
def pairs() -> PatchPairs:
    return smooth_pairs(16, seed=0)


@pytest.fixture
def val_pairs() -> PatchPairs:
    return smooth_pairs(4, seed=1)
