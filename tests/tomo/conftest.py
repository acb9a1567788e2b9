import numpy as np
import pytest


def _disk_phantom(n: int) -> np.ndarray:
    """Non-negative phantom: a large disk with two smaller disks of other values."""
    yy, xx = np.mgrid[0:n, 0:n] + 0.5 - n / 2
    img = np.zeros((n, n))
    img[xx**2 + yy**2 < (0.38 * n) ** 2] = 1.0
    img[(xx - 0.12 * n) ** 2 + (yy + 0.1 * n) ** 2 < (0.12 * n) ** 2] = 2.0
    img[(xx + 0.15 * n) ** 2 + (yy - 0.12 * n) ** 2 < (0.08 * n) ** 2] = 0.3
    return img


@pytest.fixture
def disk_phantom():
    return _disk_phantom
