"""Validation of projection angles, shared by the projector, FBP, reprojection and recon."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_angles_deg"]


def as_angles_deg(angles_deg: Any) -> np.ndarray:
    """``angles_deg`` as a float64 1-D array of degrees, or a ValueError naming the fault.

    Parameters
    ----------
    angles_deg : array_like, shape (n_angles,)
        Projection angles in degrees; must be non-empty and finite.

    Returns
    -------
    ndarray, shape (n_angles,), float64, degrees
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    if angles.ndim != 1 or angles.size == 0:
        raise ValueError(
            f"angles_deg must be a non-empty 1-D sequence of degrees, got shape {angles.shape}"
        )
    bad = ~np.isfinite(angles)
    if bad.any():
        raise ValueError(
            f"angles_deg contains {int(bad.sum())} NaN/inf value(s) at index "
            f"{np.flatnonzero(bad)[:5].tolist()}"
        )
    return angles
