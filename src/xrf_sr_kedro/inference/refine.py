"""Physics-consistent refinement of an enhanced map (issue 13, item 4).

The network's output ``x0`` (fine grid) need not explain the measured counts.  This
step minimises, over non-negative ``x`` with the total ``sum(x) = sum(x0)``::

    F(x) = NLL(x) + (anchor_weight / 2) * (g / m) * ||x - x0||^2
    NLL(x) = sum_k [ (g A x + b)_k - y_k * log((g A x + b)_k) ]

with ``A`` the exact fly-scan operator (:func:`~xrf_sr_kedro.physics.flyscan.flyscan`,
adjoint :func:`~xrf_sr_kedro.physics.flyscan.flyscan_adjoint`), ``y`` the measured
counts, ``g`` counts per unit of the map, ``b`` the background counts and ``m`` the
mean of ``g A x0 + b`` (counts per point), which makes ``anchor_weight``
dimensionless: at 1 the anchor's curvature is about the Poisson term's at the mean
count.  The iteration is an EM-preconditioned gradient step
``x - t * x / (g A^T 1) * grad F`` (the Richardson-Lucy step when the anchor is
off), clipped at zero and rescaled to the total, with a backtracking step length
``t``: a step is accepted only if it lowers ``F``, so ``F`` never increases and
(since the anchor is zero at ``x0``) the NLL at the result is at most the NLL at
``x0``.  ``anchor_weight = inf`` returns ``x0`` unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from xrf_sr_kedro.physics.flyscan import FastAxis, ScanMode, flyscan, flyscan_adjoint
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)

_EPS = 1e-9


def poisson_nll(
    x: np.ndarray,
    counts: np.ndarray,
    probe: np.ndarray,
    step_px: int,
    counts_per_unit: float,
    background_counts: float = 0.0,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> float:
    """Poisson negative log-likelihood (nats, constant ``log y!`` dropped) of ``counts``."""
    lam = counts_per_unit * flyscan(x, probe, step_px, fast_axis, mode, n_substeps) + background_counts
    lam = np.maximum(lam, _EPS)
    return float(np.sum(lam - counts * np.log(lam)))


def refine_poisson(
    sr: np.ndarray,
    counts: np.ndarray,
    probe: np.ndarray,
    step_px: int,
    counts_per_unit: float,
    background_counts: float = 0.0,
    anchor_weight: float = 1.0,
    n_iter: int = 10,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray:
    """Refine an enhanced map so that it explains the measured counts.

    Parameters
    ----------
    sr : ndarray (H, W)
        Network output on the fine grid, in the map's units (concentration or
        signal, not normalised).
    counts : ndarray (H / step_px, W / step_px)
        Measured counts per scan point (background included).
    probe : ndarray (ph, pw)
        Probe intensity on the fine grid, unit sum.
    step_px : int
        Scan step in fine pixels.
    counts_per_unit : float
        Counts per scan point per unit of ``sr`` (``g``; for the simulation,
        ``mean_counts / mean(noise-free LR map)``).
    background_counts : float
        Mean background counts per point (``b``).
    anchor_weight : float
        Dimensionless weight of the quadratic anchor to ``sr`` (>= 0, ``inf``
        returns ``sr``).
    n_iter : int
        Iterations (each: one forward, one adjoint, and one forward per tried step).
    fast_axis, mode, n_substeps
        The scan, as for :func:`~xrf_sr_kedro.physics.flyscan.flyscan`.

    Returns
    -------
    ndarray (H, W), float32
        Non-negative, same total as ``max(sr, 0)``.
    """
    x0 = np.asarray(sr, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    if x0.ndim != 2 or y.ndim != 2:
        raise ValueError(f"sr and counts must be 2-D maps, got {x0.shape} and {y.shape}")
    s = int(step_px)
    if (x0.shape[0] // s, x0.shape[1] // s) != y.shape:
        raise ValueError(f"counts {y.shape} do not match sr {x0.shape} at step {s}")
    g = float(counts_per_unit)
    b = float(background_counts)
    if not (math.isfinite(g) and g > 0):
        raise ValueError(f"counts_per_unit must be positive, got {counts_per_unit!r}")
    if not (math.isfinite(b) and b >= 0):
        raise ValueError(f"background_counts must be >= 0, got {background_counts!r}")
    if not anchor_weight >= 0:
        raise ValueError(f"anchor_weight must be >= 0, got {anchor_weight!r}")
    if math.isinf(anchor_weight) or n_iter <= 0:
        return np.asarray(sr, dtype=np.float32)
    scan = dict(fast_axis=fast_axis, mode=mode, n_substeps=n_substeps)
    x0p = np.clip(x0, 0, None)
    total = x0p.sum()
    if total <= 0:
        return x0p.astype(np.float32)

    def fwd(x: np.ndarray) -> np.ndarray:
        return np.maximum(g * flyscan(x, probe, s, **scan).astype(np.float64) + b, _EPS)

    m = float(fwd(x0p).mean())
    mu = float(anchor_weight) * g / m

    def objective(x: np.ndarray, lam: np.ndarray) -> float:
        return float(np.sum(lam - y * np.log(lam)) + 0.5 * mu * np.sum((x - x0p) ** 2))

    sens = g * flyscan_adjoint(np.ones_like(y), probe, s, x0.shape, **scan).astype(np.float64)
    sens = np.maximum(sens, _EPS * max(sens.max(), 1.0))
    x = x0p.copy()
    lam = fwd(x)
    f = objective(x, lam)
    t = 1.0
    for it in range(int(n_iter)):
        grad = g * flyscan_adjoint(1.0 - y / lam, probe, s, x.shape, **scan) + mu * (x - x0p)
        direction = -(np.maximum(x, _EPS * total / x.size) / sens) * grad
        accepted = False
        for _ in range(12):
            cand = np.clip(x + t * direction, 0, None)
            csum = cand.sum()
            if csum > 0:
                cand *= total / csum
                lam_c = fwd(cand)
                f_c = objective(cand, lam_c)
                if f_c < f:
                    x, lam, f, accepted = cand, lam_c, f_c, True
                    t = min(t * 1.5, 4.0)
                    break
            t *= 0.5
        if not accepted:
            logger.debug("refine_poisson: no decrease at iteration %d; stopping", it)
            break
    return x.astype(np.float32)


def refine_maps(
    enhanced: np.ndarray,
    measured_counts: np.ndarray,
    probe: np.ndarray,
    step_px: int,
    background_counts: float = 0.0,
    anchor_weight: float = 1.0,
    n_iter: int = 10,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
    n_substeps: int | None = None,
) -> np.ndarray:
    """:func:`refine_poisson` for every map of an enhanced stack on the counts scale.

    The engine's output (``inference.engine.enhance_maps``) is on the counts scale
    of its input (background included, since the measured map's min/max set the
    normalisation), so ``counts_per_unit = 1`` and the signal is ``enhanced -
    background_counts``; the background is added back after refinement.

    Parameters
    ----------
    enhanced : ndarray (..., H, W)
        Enhanced maps (counts per scan point on the fine grid).
    measured_counts : ndarray (..., H / step_px, W / step_px)
        The maps they were enhanced from (counts per scan point).
    probe, step_px, background_counts, anchor_weight, n_iter, fast_axis, mode, n_substeps
        As for :func:`refine_poisson`.

    Returns
    -------
    ndarray, float32, the shape of ``enhanced``
    """
    sr = np.asarray(enhanced, dtype=np.float32)
    y = np.asarray(measured_counts, dtype=np.float32)
    if sr.shape[:-2] != y.shape[:-2]:
        raise ValueError(f"enhanced {sr.shape} and measured_counts {y.shape} do not pair up")
    if math.isinf(anchor_weight) or n_iter <= 0:
        return sr.copy()
    out = np.empty_like(sr)
    flat_sr = sr.reshape(-1, *sr.shape[-2:])
    flat_y = y.reshape(-1, *y.shape[-2:])
    flat_out = out.reshape(-1, *sr.shape[-2:])
    for k in range(flat_sr.shape[0]):
        x0 = np.clip(flat_sr[k] - background_counts, 0, None)
        flat_out[k] = background_counts + refine_poisson(
            x0, flat_y[k], probe, step_px, 1.0, background_counts, anchor_weight, n_iter,
            fast_axis, mode, n_substeps,
        )
    return out


def refine_stack(
    enhanced: XRFStack,
    measured: XRFStack,
    probe: ProbeIntensity,
    anchor_weight: float = 10.0,
    n_iter: int = 10,
    background_counts: float | None = None,
    fast_axis: FastAxis = "x",
    mode: ScanMode = "fly",
) -> XRFStack:
    """:func:`refine_maps` on an enhanced :class:`~xrf_sr_kedro.types.XRFStack`.

    The step is ``measured.pixel_size_nm / enhanced.pixel_size_nm``; the probe is
    resampled to the enhanced pixel size if needed; ``background_counts`` (counts per
    measured pixel) defaults to ``measured.metadata["background_counts"]`` (0 if
    absent).  An enhanced stack in counts per fine pixel
    (:mod:`xrf_sr_kedro.inference.units`) is refined on the measured-pixel scale
    :func:`refine_maps` works on and returned in counts per fine pixel again, with its
    units.  The result records the settings under ``metadata["refinement"]``.
    """
    from xrf_sr_kedro.inference.units import (
        fine_pixels_per_measured_pixel, per_fine_pixel, per_measured_pixel,
    )
    from xrf_sr_kedro.physics.probe import resample_probe

    ratio = measured.pixel_size_nm / enhanced.pixel_size_nm
    s = int(round(ratio))
    if s < 1 or abs(ratio - s) > 0.02 * s:
        raise ValueError(
            f"enhanced pixel {enhanced.pixel_size_nm} nm is not an integer fraction of the "
            f"measured {measured.pixel_size_nm} nm"
        )
    if enhanced.elements != measured.elements:
        raise ValueError(f"elements differ: {enhanced.elements} vs {measured.elements}")
    if not math.isclose(probe.pixel_size_nm, enhanced.pixel_size_nm, rel_tol=1e-3):
        probe = resample_probe(probe, enhanced.pixel_size_nm)
    b = float(measured.metadata.get("background_counts", 0.0) if background_counts is None
              else background_counts)
    n_fine = fine_pixels_per_measured_pixel(enhanced)
    data = per_fine_pixel(refine_maps(per_measured_pixel(enhanced.data, n_fine), measured.data,
                                      probe.intensity, s, b, anchor_weight, n_iter, fast_axis,
                                      mode), n_fine)
    meta = dict(enhanced.metadata, refinement={
        "method": "Poisson likelihood through the fly-scan operator, anchored to the network",
        "anchor_weight": float(anchor_weight), "n_iter": int(n_iter), "background_counts": b,
    })
    return replace(enhanced, data=data, metadata=meta)


#: Anchor weight and iterations of the optional refinement (docs/models.md: off by
#: default; at 150 counts a point it costs a good network ~0.1-0.3 dB).
DEFAULT_ANCHOR_WEIGHT = 10.0
DEFAULT_REFINE_ITERATIONS = 10


@dataclass(frozen=True)
class RefinementSettings:
    """Whether the enhanced maps are refined through the fly-scan operator, and how.

    ``enabled=False`` passes the network output through unchanged.
    """

    enabled: bool = False
    anchor_weight: float = DEFAULT_ANCHOR_WEIGHT
    n_iter: int = DEFAULT_REFINE_ITERATIONS
    fast_axis: FastAxis = "x"
    mode: ScanMode = "fly"

    def __post_init__(self) -> None:
        if not (self.anchor_weight > 0):
            raise ValueError(f"refinement.anchor_weight must be positive, got {self.anchor_weight!r}")
        if not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise ValueError(f"refinement.n_iter must be a positive int, got {self.n_iter!r}")


def was_refined(stack: XRFStack) -> bool:
    """Whether ``stack`` came out of :func:`refine_stack` (its ``metadata["refinement"]``
    holds the settings; :func:`refine_if_enabled` with refinement off records
    ``{"enabled": False}``, and a stack that never met this module has no record)."""
    record = stack.metadata.get("refinement")
    return bool(record) and bool(record.get("enabled", True))


def refine_if_enabled(
    enhanced: XRFStack, measured: XRFStack, probe: ProbeIntensity, settings: RefinementSettings
) -> XRFStack:
    """:func:`refine_stack` when ``settings.enabled``, else ``enhanced`` unchanged
    (``metadata["refinement"] = {"enabled": False}``)."""
    if not settings.enabled:
        logger.info("refinement off: the network output is the enhanced stack")
        return replace(enhanced, metadata=dict(enhanced.metadata, refinement={"enabled": False}))
    logger.info("refining %d maps (anchor weight %g, %d iterations)",
                enhanced.data.shape[0] * enhanced.data.shape[1], settings.anchor_weight, settings.n_iter)
    return refine_stack(enhanced, measured, probe, settings.anchor_weight, settings.n_iter,
                        fast_axis=settings.fast_axis, mode=settings.mode)
