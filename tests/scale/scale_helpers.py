"""Helpers of the slab-streaming tests (imported by name, like tests/physics/naive_flyscan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrf_sr_kedro.io.chunked import stack_writer


def write_stack(
    path: Path, n_elements: int, n_angles: int, n_rows: int, width: int, seed: int = 0,
    chunk_rows: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """A non-negative random stack file; returns (data (E, A, H, W), angles_deg)."""
    rng = np.random.default_rng(seed)
    data = (10.0 * rng.random((n_elements, n_angles, n_rows, width))).astype(np.float32)
    angles = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    names = ["Zn_K", "Fe_K", "Ca_K"][:n_elements]
    with stack_writer(path, data.shape, 50.0, names, angles, chunk_rows=chunk_rows) as w:
        for r0 in range(0, n_rows, 5):  # rows in slabs that do not match the chunks
            w[:, :, r0:r0 + 5] = data[:, :, r0:r0 + 5]
    return data, angles
