"""Small projection stacks on disk for the slab-streaming tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scale_helpers import write_stack


@pytest.fixture
def small_stack(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Two elements, 24 angles, 13 rows of 32 px."""
    path = tmp_path / "stack.h5"
    data, angles = write_stack(path, 2, 24, 13, 32)
    return path, data, angles
