"""Naive per-spot reference of the fly-scan model, written straight from the
documented convention (see xrf_sr_kedro.physics.flyscan) without a combined kernel."""

from __future__ import annotations

import math

import numpy as np


def _split(t: float) -> list[tuple[int, float]]:
    lo = math.floor(t + 1e-9)
    f = t - lo
    if f < 1e-9:
        return [(lo, 1.0)]
    return [(lo, 1.0 - f), (lo + 1, f)]


def naive_flyscan(x, probe, step_px, fast_axis="x", mode="fly", n_substeps=None):
    """Loop over scan spots and sub-steps; sum probe x sample at each placement."""
    x = np.asarray(x, dtype=np.float64)
    probe = np.asarray(probe, dtype=np.float64)
    s = step_px
    n = 1 if mode == "step" else (s if n_substeps is None else n_substeps)
    H, W = x.shape
    ph, pw = probe.shape
    pad = max(ph, pw) + 2 * s + 4
    xp = np.pad(x, pad)  # zero outside the image
    out = np.zeros((H // s, W // s))
    for i in range(H // s):
        for j in range(W // s):
            cy, cx = i * s + (s - 1) / 2, j * s + (s - 1) / 2
            acc = 0.0
            for m in range(n):
                d = -s / 2 + (m + 0.5) * s / n if n > 1 else 0.0
                py, px = (cy + d, cx) if fast_axis == "y" else (cy, cx + d)
                for yy, wy in _split(py - (ph - 1) / 2):
                    for xx, wx in _split(px - (pw - 1) / 2):
                        win = xp[yy + pad : yy + pad + ph, xx + pad : xx + pad + pw]
                        acc += wy * wx * float(np.sum(probe * win))
            out[i, j] = acc / n
    return out
