"""Rotation-centre finding, and the centre carried through a reconstruction chain.

Offsets follow :mod:`.projector`: ``center_offset_px`` is the rotation axis minus
the detector centre in detector pixels (TomoPy ``center - n_det / 2``), positive
towards higher column index.

Four estimates, combined by :func:`find_center`:

* **Vo's method** (``algotom.prep.calculation.find_center_vo``, algotom 1.7.0):
  the sinogram and its mirror form a 360-degree sinogram whose Fourier
  transform has least energy in a double wedge at the right centre. Robust to
  noise and to per-projection jitter; needs 180 degrees of evenly spaced angles.
* **Opposite-angle correlation**: the projection at ``theta + 180`` is the mirror
  image of the one at ``theta`` about the axis; sub-pixel phase correlation of
  each such pair (within ``pair_tolerance_deg``) gives ``2 * offset``.
* **Centre-of-mass sinusoid** (:func:`sinusoid_offset`): for XRF counts the
  centre of mass of each projection traces ``c - X sin + Y cos``; the fitted
  ``c`` is sub-pixel and needs no 180-degree pairs.
* **Trial-centre scan**: FBP slices reconstructed at trial offsets, scored by
  their negativity (negative over positive mass: a wrong centre draws arcs
  whose filtered side lobes are negative); a coarse 1 px scan over the search
  window, then a fine scan about its minimum, and a parabola through the best
  three scores gives the sub-pixel minimum. This checks the other two and gives
  the images for the report.

On small detectors with few angles (tested: 96-144 px, 36 or 180 angles)
algotom's Vo search misses by tens of pixels (its masks and downsampling are
tuned for detectors of thousands of pixels), so :func:`find_center` reports its
estimate but decides by the scan; the scan's coarse stage covers the whole
search window, so a wrong first estimate cannot trap it.

:func:`center_offset_px_for` and :func:`center_metadata` keep the centre with
the data: a stack's metadata holds ``center_offset_nm`` (physical, so it holds on
any pixel grid), ``center_offset_px`` (on that stack's grid) and
``center_method``; an upsampled (enhanced) stack with 4x finer pixels gets 4x
the pixel offset.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fbp import fbp

logger = logging.getLogger(__name__)

__all__ = [
    "CentreResult",
    "center_metadata",
    "center_offset_px_for",
    "centre_scan",
    "find_center",
    "find_center_vo_offset",
    "opposite_angle_offset",
    "sinusoid_offset",
]


@dataclass(frozen=True)
class CentreResult:
    """A rotation centre with how it was found.

    Attributes
    ----------
    offset_px : float
        Rotation axis minus detector centre, detector pixels.
    method : str
        E.g. ``"vo+trial-scan"``.
    estimates_px : dict
        Each method's estimate (``vo``, ``opposite_angles``, ``trial_scan``), px.
    trial_offsets_px : ndarray, shape (n_trials,)
    trial_scores : ndarray, shape (n_trials,)
        Lower is better (normalised total variation).
    trial_images : ndarray, shape (n_trials, N, N)
        The FBP slice at each trial offset, for the report.
    """

    offset_px: float
    method: str
    estimates_px: dict[str, float] = field(default_factory=dict)
    trial_offsets_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trial_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trial_images: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))


def _check_sino(sino: Any, angles_deg: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sino, dtype=np.float64)
    a = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    if s.ndim != 2:
        raise ValueError(f"sinogram must be 2-D (n_angles, n_det), got shape {s.shape}")
    if s.shape[0] != a.shape[0]:
        raise ValueError(f"sinogram has {s.shape[0]} angles but angles_deg has {a.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise ValueError("sinogram contains NaN or inf")
    return s, a


def _half_turn(sino: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``sino`` covering one half-open 180-degree range from the first angle, sorted."""
    order = np.argsort(angles)
    a, s = angles[order], sino[order]
    keep = a < a[0] + 180.0 - 1e-6
    return s[keep], a[keep]


def find_center_vo_offset(
    sino: Any, angles_deg: Any, search_radius_px: float | None = None
) -> float:
    """Vo's Fourier double-wedge centre (algotom 1.7.0) as an offset in px.

    Parameters
    ----------
    sino : array_like, shape (n_angles, n_det)
        One sinogram (a detector row through the sample), any 180-degree range of
        evenly spaced angles; projections beyond 180 degrees are ignored.
    angles_deg : array_like, shape (n_angles,)
    search_radius_px : float, optional
        Search window about the detector centre (default: a quarter of the width).

    Returns
    -------
    float
        Offset in px (algotom's column-index centre minus ``(n_det - 1) / 2``).

    References
    ----------
    N. T. Vo, M. Drakopoulos, R. C. Atwood, C. Reinhard (2014), "Reliable method for
    calculating the center of rotation in parallel-beam tomography", Opt. Express
    22, 19078.
    """
    from algotom.prep.calculation import find_center_vo

    s, a = _check_sino(sino, angles_deg)
    s, _ = _half_turn(s, a)
    n_det = s.shape[1]
    r = n_det / 4.0 if search_radius_px is None else float(search_radius_px)
    mid = (n_det - 1) / 2.0
    start, stop = int(np.floor(mid - r)), int(np.ceil(mid + r))
    centre = find_center_vo(s.astype(np.float32), start=start, stop=stop, step=0.25, ncore=1)
    return float(centre) - mid


def _phase_shift_1d(a: np.ndarray, b: np.ndarray, upsample: int = 100) -> float:
    """Sub-pixel shift ``t`` with ``b(x) ~ a(x - t)``."""
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(
        b[None, :], a[None, :], upsample_factor=upsample, normalization=None
    )
    return float(shift[1])


def opposite_angle_offset(
    sino: Any, angles_deg: Any, pair_tolerance_deg: float = 0.05
) -> float | None:
    """Centre offset from projections 180 degrees apart (mean over pairs).

    Returns ``None`` when no pair of angles lies within ``pair_tolerance_deg`` of
    180 degrees apart (e.g. 36 angles over [0, 180)).
    """
    s, a = _check_sino(sino, angles_deg)
    n_det = s.shape[1]
    estimates = []
    for i in range(a.shape[0]):
        diff = np.abs(((a - a[i]) % 360.0) - 180.0)
        j = int(np.argmin(diff))
        if diff[j] <= pair_tolerance_deg and j > i:
            # p_j(d) = p_i(2 c - d) in index coords; flip(p_j)(d) = p_i(d - (2c - (n-1)))
            t = _phase_shift_1d(s[i], s[j, ::-1])
            estimates.append(-t / 2.0)
    if not estimates:
        return None
    # p_j(d) = p_i(2c - d) in index coords, so flip(p_j)(d) = p_i(d - t) with
    # t = n_det - 1 - 2c: the axis c = (n_det - 1 - t) / 2, offset -t / 2.
    del n_det
    return float(np.median(estimates))


def sinusoid_offset(sino: Any, angles_deg: Any) -> float:
    """Centre offset from the centre of mass of each projection (sub-pixel, no pairs needed).

    For linear projections (XRF counts) of a sample that stays in the field of
    view, the centre of mass of the projection at ``theta`` is
    ``c - X sin(theta) + Y cos(theta)`` (``X, Y``: the sample's centre of mass,
    :mod:`.projector` convention); a least-squares fit of ``c + a sin + b cos``
    gives the axis ``c``. Per-projection jitter enters only through its own
    ``1, sin, cos`` components, which no method can tell from a centre or a
    sample position.
    """
    s, a = _check_sino(sino, angles_deg)
    n_det = s.shape[1]
    # fitted maps clip their noise at 0, which leaves a positive floor that would pull
    # the centre of mass towards the detector centre: subtract the floor, measured
    # where the sample is not (columns below 2 % of the mean projection's peak)
    profile = s.mean(axis=0)
    empty = profile < 0.02 * profile.max()
    w = s - (s[:, empty].mean(axis=1, keepdims=True) if empty.sum() >= 4 else 0.0)
    mass = w.sum(axis=1)
    if np.any(mass <= 0):
        raise ValueError("a projection has no positive signal; cannot take its centre of mass")
    com = (w * (np.arange(n_det) + 0.5 - n_det / 2.0)).sum(axis=1) / mass
    th = np.deg2rad(a)
    design = np.stack([np.ones_like(th), np.sin(th), np.cos(th)], axis=1)
    coef, *_ = np.linalg.lstsq(design, com, rcond=None)
    return float(coef[0])


def _negativity(img: np.ndarray) -> float:
    """Negative mass of an FBP slice over its positive mass (0 for a perfect slice)."""
    return float(-img[img < 0].sum() / max(img[img > 0].sum(), 1e-12))


def centre_scan(
    sino: Any, angles_deg: Any, offsets_px: Any
) -> tuple[np.ndarray, np.ndarray]:
    """FBP slices of ``sino`` at each trial offset and their scores (lower is better).

    Returns
    -------
    images : ndarray, shape (n_trials, n_det, n_det)
    scores : ndarray, shape (n_trials,)
        Negative over positive mass of the slice inside the inscribed circle: a
        wrong centre smears each feature into arcs whose FBP side lobes are
        negative, so the score has its minimum at the right centre.
    """
    s, a = _check_sino(sino, angles_deg)
    n = s.shape[1]
    yy, xx = np.mgrid[:n, :n] + 0.5 - n / 2.0
    inside = (yy**2 + xx**2) <= (n / 2.0) ** 2
    # an axis at offset c is the axis at 0 of the sinogram moved by -c: shift the
    # sinogram (Fourier, zero-padded: no interpolation smoothing that would favour
    # half-pixel offsets) and reuse one projector for every trial
    pad = n
    spec = np.fft.fft(np.pad(s, ((0, 0), (pad, pad))), axis=1)
    freq = np.fft.fftfreq(n + 2 * pad)
    images, scores = [], []
    for off in np.asarray(offsets_px, dtype=np.float64):
        moved = np.fft.ifft(spec * np.exp(2j * np.pi * freq * off), axis=1).real[:, pad : pad + n]
        img = fbp(moved[None].astype(np.float32), a, device="cpu")
        img = img[0].cpu().numpy() * inside
        images.append(img.astype(np.float32))
        scores.append(_negativity(img))
    return np.stack(images), np.asarray(scores)


def _parabola_min(x: np.ndarray, y: np.ndarray) -> float:
    k = int(np.argmin(y))
    if k == 0 or k == len(y) - 1:
        return float(x[k])
    x0, x1, x2 = x[k - 1 : k + 2]
    y0, y1, y2 = y[k - 1 : k + 2]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    aa = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    bb = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / den
    if aa <= 0:
        return float(x[k])
    return float(np.clip(-bb / (2 * aa), x0, x2))


def find_center(
    projections: Any,
    angles_deg: Any,
    rows: Any = None,
    search_radius_px: float | None = None,
    fine_half_width_px: float = 1.5,
    fine_step_px: float = 0.25,
    agree_px: float = 3.0,
) -> CentreResult:
    """Find the rotation centre of a projection stack, checked by a trial scan.

    Parameters
    ----------
    projections : array_like, shape (n_angles, n_rows, n_det)
        One element's projections (Data Exchange order), I0-normalised.
    angles_deg : array_like, shape (n_angles,)
    rows : sequence of int, optional
        Detector rows to use (default: the 5 rows with the most signal); their
        sinograms are summed.
    search_radius_px : float, optional
        Offsets searched, +- this about the detector centre (default: width / 4).
    fine_half_width_px, fine_step_px : float
        Fine trial offsets ``coarse minimum +- half width`` in these steps.
    agree_px : float
        The sub-pixel estimate (opposite angles when 180-degree pairs exist, else
        the centre-of-mass sinusoid) is kept when within this of the trial scan;
        otherwise the trial scan is used, with a warning. Per-projection jitter
        blurs the scan by about a pixel before alignment, so find the centre
        again on aligned projections.

    Returns
    -------
    CentreResult
        ``offset_px``: the opposite-angle (or centre-of-mass sinusoid) estimate
        when the trial scan agrees, else the trial scan; ``estimates_px`` holds
        every estimate (Vo's for the record); ``trial_images`` are the fine-scan
        slices.
    """
    p = np.asarray(projections, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"projections must be 3-D (n_angles, n_rows, n_det), got {p.shape}")
    if rows is None:
        power = p.sum(axis=(0, 2))
        rows = np.sort(np.argsort(power)[-min(5, p.shape[1]) :])
    sino = p[:, list(rows), :].sum(axis=1)
    n_det = sino.shape[1]
    radius = n_det / 4.0 if search_radius_px is None else float(search_radius_px)
    estimates: dict[str, float] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimates["vo"] = find_center_vo_offset(sino, angles_deg, radius)
    except Exception as exc:  # noqa: BLE001 - third-party search; the scan decides
        logger.warning("Vo's centre search failed (%s); using the trial scan alone", exc)
    opp = opposite_angle_offset(sino, angles_deg)
    if opp is not None:
        estimates["opposite_angles"] = opp
    estimates["sinusoid_com"] = sinusoid_offset(sino, angles_deg)
    coarse = np.arange(-np.floor(radius), np.floor(radius) + 1e-9, 1.0)
    _, coarse_scores = centre_scan(sino, angles_deg, coarse)
    start = float(coarse[int(np.argmin(coarse_scores))])
    offsets = start + np.arange(-fine_half_width_px, fine_half_width_px + 1e-9, fine_step_px)
    images, scores = centre_scan(sino, angles_deg, offsets)
    estimates["trial_scan"] = _parabola_min(offsets, scores)
    method = "opposite_angles" if opp is not None else "sinusoid_com"
    best = estimates[method]
    if abs(best - estimates["trial_scan"]) > agree_px:
        logger.warning(
            "rotation centre: %s estimate %+.2f px disagrees with the trial scan %+.2f px by "
            "more than %.1f px (sample leaving the field of view? strong self-absorption?); "
            "using the trial scan; look at the trial-centre images",
            method, best, estimates["trial_scan"], agree_px,
        )
        method, best = "trial_scan", estimates["trial_scan"]
    logger.info(
        "rotation centre: %s; chosen %.2f px from the detector centre (%s)",
        ", ".join(f"{k} {v:+.2f} px" for k, v in estimates.items()), best, method,
    )
    return CentreResult(
        offset_px=best,
        method=f"{method} (checked by trial scan)",
        estimates_px=estimates,
        trial_offsets_px=offsets,
        trial_scores=scores,
        trial_images=images,
    )


# ---------------------------------------------------------------------------
# the centre through the chain (measured -> reprojected -> enhanced -> volume)
# ---------------------------------------------------------------------------


def center_offset_px_for(
    metadata: Mapping[str, Any], pixel_size_nm: float, default_offset_px: float = 0.0
) -> float:
    """The centre offset (px) a stack must be reconstructed or projected with.

    Parameters
    ----------
    metadata : mapping
        The stack's metadata. ``center_offset_nm`` (physical offset, nm) wins;
        else ``center_offset_px`` with ``center_pixel_size_nm`` (the grid it was
        measured on); else ``default_offset_px``.
    pixel_size_nm : float
        The stack's pixel size, nm.
    default_offset_px : float
        Offset on this stack's own grid when the metadata has none (the
        ``center_offset_px`` parameter for measured data).

    Returns
    -------
    float
        Offset in pixels of ``pixel_size_nm``: 4x the coarse offset on a 4x finer grid.
    """
    if pixel_size_nm <= 0:
        raise ValueError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
    if metadata.get("center_offset_nm") is not None:
        return float(metadata["center_offset_nm"]) / float(pixel_size_nm)
    if metadata.get("center_offset_px") is not None and metadata.get("center_pixel_size_nm"):
        return (
            float(metadata["center_offset_px"])
            * float(metadata["center_pixel_size_nm"])
            / float(pixel_size_nm)
        )
    return float(default_offset_px)


def center_metadata(offset_px: float, pixel_size_nm: float, method: str) -> dict[str, Any]:
    """Metadata keys that carry a centre offset with a stack or volume."""
    return {
        "center_offset_px": float(offset_px),
        "center_offset_nm": float(offset_px) * float(pixel_size_nm),
        "center_pixel_size_nm": float(pixel_size_nm),
        "center_method": str(method),
    }
