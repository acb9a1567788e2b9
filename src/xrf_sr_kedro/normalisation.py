"""The one intensity normalisation shared by training data, training and inference.

A low-resolution map ``lr`` is mapped to [0, 1] by ``(lr - lo) / (hi - lo)`` with
``lo, hi`` its own minimum and maximum.  The high-resolution partner of a training
pair is mapped with the *same* ``lo, hi`` (so the network learns the physical
relation between the two scans, not two unrelated contrast stretches), and an
enhanced map is mapped back with the ``lo, hi`` of the map it came from.
"""

from __future__ import annotations

import numpy as np


def minmax_range(lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-map ``(lo, hi)`` over the last two axes, shaped to broadcast against ``lr``.

    Maps that are constant get ``hi = lo + 1`` so that normalisation is defined.
    """
    lr = np.asarray(lr)
    lo = lr.min(axis=(-2, -1), keepdims=True)
    hi = lr.max(axis=(-2, -1), keepdims=True)
    hi = np.where(hi > lo, hi, lo + 1)
    return lo, hi


def normalise(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Map ``x`` to the unit range defined by ``lo, hi`` (see module docstring)."""
    return ((np.asarray(x) - lo) / (hi - lo)).astype(np.float32)


def denormalise(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalise`."""
    return (np.asarray(x) * (hi - lo) + lo).astype(np.float32)
