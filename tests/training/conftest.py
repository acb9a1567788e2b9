from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xrf_sr_kedro.types import PatchPairs


def smooth_pairs(n: int, lr_px: int = 8, scale: int = 4, seed: int = 0) -> PatchPairs:
    """Smooth random HR patches in [0, 1] and their 4x4-averaged LR partners."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 1, lr_px // 2 + 1, lr_px // 2 + 1)).astype(np.float32))
    hr = F.interpolate(coarse, size=(lr_px * scale, lr_px * scale), mode="bilinear",
                       align_corners=True)
    lr = F.avg_pool2d(hr, scale)
    return PatchPairs(lr.numpy(), hr.numpy(), lr_pixel_size_nm=120.0, hr_pixel_size_nm=30.0)


@pytest.fixture
def pairs() -> PatchPairs:
    return smooth_pairs(16, seed=0)


@pytest.fixture
def val_pairs() -> PatchPairs:
    return smooth_pairs(4, seed=1)
