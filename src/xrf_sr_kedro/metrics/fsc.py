"""Fourier ring / shell correlation (FRC / FSC) and the resolution it implies.

The FSC of two maps ``a`` and ``b`` (2-D maps: Fourier *ring* correlation; 3-D
volumes: Fourier *shell* correlation) is the normalised cross-correlation of
their Fourier transforms over shells of equal spatial frequency:

.. math::

    \\mathrm{FSC}(r) = \\frac{\\mathrm{Re}\\sum_{k \\in r} A(k) B^*(k)}
                        {\\sqrt{\\sum_{k \\in r} |A(k)|^2 \\; \\sum_{k \\in r} |B(k)|^2}}

The resolution is the inverse of the spatial frequency at which the curve first
falls below a threshold: the van Heel & Schatz (2005) one-bit or half-bit
information curves (which depend on the number of Fourier voxels in the shell)
or the fixed 0.143.

Conventions used here (also in ``docs/evaluation.md``):

* Shells are one voxel wide: shell ``i`` holds the Fourier voxels whose radial
  frequency ``|k|`` (cycles/voxel) satisfies ``round(|k| * N) == i`` with ``N``
  the largest array side, so shell ``i`` sits at ``i / (N * voxel_size_nm)``
  cycles/nm.  Shells run from 0 (DC) up to the Nyquist frequency
  ``1 / (2 * voxel_size_nm)``; voxels in the corners beyond Nyquist are left out.
* ``n_voxels`` counts the voxels of the *full* (not half, real-to-complex)
  Fourier transform in the shell; this is the ``n`` of the threshold formulas.
* Resolution is ``1 / freq_per_nm`` at the first crossing (a full period, so a
  curve that never crosses gives the Nyquist limit ``2 * voxel_size_nm``).

References
----------
van Heel M. & Schatz M. (2005), "Fourier shell correlation threshold criteria",
J. Struct. Biol. 151, 250-262.
Rosenthal P. B. & Henderson R. (2003), J. Mol. Biol. 333, 721-745 (the 0.143 criterion).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from scipy.signal.windows import tukey

logger = logging.getLogger(__name__)

__all__ = [
    "fourier_shell_correlation",
    "fourier_ring_correlation",
    "split_half_fsc",
    "resolution_nm",
    "split_half_band_limit_nm",
    "one_bit_threshold",
    "half_bit_threshold",
    "apodization_window",
    "THRESHOLD_COLUMNS",
]

#: Threshold name accepted by :func:`resolution_nm` -> column of the FSC table.
THRESHOLD_COLUMNS: dict[str, str] = {
    "one_bit": "one_bit",
    "half_bit": "half_bit",
    "0.143": "fixed_0143",
}

ThresholdName = Literal["one_bit", "half_bit", "0.143"]


def one_bit_threshold(n_voxels: np.ndarray | float) -> np.ndarray:
    """One-bit information threshold as a function of voxels per shell.

    ``T = (0.5 + 2.4142 / sqrt(n)) / (1.5 + 1.4142 / sqrt(n))``
    (van Heel & Schatz 2005): each half data set carries an SNR of 0.5 so the
    full data set carries one bit of information per voxel.  ``T(1) = 1`` and
    ``T -> 1/3`` for large shells.  ``n < 1`` is treated as 1.
    """
    n = np.maximum(np.asarray(n_voxels, dtype=np.float64), 1.0)
    root_n = np.sqrt(n)
    return (0.5 + 2.4142 / root_n) / (1.5 + 1.4142 / root_n)


def half_bit_threshold(n_voxels: np.ndarray | float) -> np.ndarray:
    """Half-bit information threshold as a function of voxels per shell.

    ``T = (0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))``
    (van Heel & Schatz 2005).  ``T(1) = 1`` and ``T -> 0.1716`` for large shells.
    ``n < 1`` is treated as 1.
    """
    n = np.maximum(np.asarray(n_voxels, dtype=np.float64), 1.0)
    root_n = np.sqrt(n)
    return (0.2071 + 1.9102 / root_n) / (1.2071 + 0.9102 / root_n)


def apodization_window(shape: tuple[int, ...], edge_fraction: float = 0.1) -> np.ndarray:
    """Separable cosine-edge (Tukey) window, 1 in the interior.

    Parameters
    ----------
    shape : tuple of int
        Array shape.
    edge_fraction : float
        Fraction of each side tapered at *each* end (Tukey ``alpha = 2 *
        edge_fraction``); 0.1 tapers the outer 10 % on every side.
    """
    if not 0.0 <= edge_fraction <= 0.5:
        raise ValueError(f"edge_fraction must be in [0, 0.5], got {edge_fraction}")
    window = np.ones(shape, dtype=np.float64)
    for axis, n in enumerate(shape):
        w = tukey(n, alpha=2.0 * edge_fraction, sym=False) if n > 2 else np.ones(n)
        view = [1] * len(shape)
        view[axis] = n
        window = window * w.reshape(view)
    return window


def _as_real_array(x, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _shell_index_and_weight(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """Shell index of every rfftn voxel and its multiplicity in the full FFT."""
    n_ref = max(shape)
    k2 = None
    for axis, n in enumerate(shape):
        if axis == len(shape) - 1:
            f = np.fft.rfftfreq(n)
        else:
            f = np.fft.fftfreq(n)
        view = [1] * len(shape)
        view[axis] = f.size
        term = (f**2).reshape(view)
        k2 = term if k2 is None else k2 + term
    radius = np.sqrt(k2)  # cycles / voxel
    shell = np.rint(radius * n_ref).astype(np.int64)
    n_last = shape[-1]
    m = n_last // 2 + 1
    weight_1d = np.full(m, 2.0)
    weight_1d[0] = 1.0
    if n_last % 2 == 0:
        weight_1d[-1] = 1.0  # the Nyquist column is its own conjugate partner
    view = [1] * len(shape)
    view[-1] = m
    weight = np.broadcast_to(weight_1d.reshape(view), shell.shape)
    return shell, weight, n_ref


def fourier_shell_correlation(
    a,
    b,
    voxel_size_nm: float,
    apodize: bool = False,
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Fourier ring (2-D) or shell (3-D) correlation of ``a`` and ``b``.

    Parameters
    ----------
    a, b : ndarray or torch.Tensor, shape (H, W) or (Z, Y, X), the same for both
        Two maps or volumes of the same object (e.g. split-half
        reconstructions, or an estimate and the ground truth).
    voxel_size_nm : float
        Pixel / voxel edge length in nm (cubic voxels).
    apodize : bool
        Multiply both arrays by a cosine-edge (Tukey) window that tapers the
        outer 10 % of every side, so the edge discontinuity of the periodic FFT
        does not add correlated high-frequency power.
    mask : ndarray, same shape as ``a``, optional
        Real-space weights in [0, 1] (binary or soft) multiplied into both
        arrays, e.g. the sample support or the reconstruction circle.

    Returns
    -------
    table : pandas.DataFrame
        One row per shell, from DC (shell 0) to Nyquist, with columns

        * ``shell`` -- shell index ``i`` (one voxel wide on the longest side),
        * ``freq_per_nm`` -- spatial frequency ``i / (N * voxel_size_nm)``,
        * ``freq_fraction_nyquist`` -- the same as a fraction of Nyquist,
        * ``fsc`` -- correlation in [-1, 1]; NaN where a shell has no power,
        * ``n_voxels`` -- voxels of the full Fourier transform in the shell,
        * ``one_bit``, ``half_bit`` -- van Heel & Schatz (2005) thresholds,
        * ``fixed_0143`` -- the constant 0.143.

        ``table.attrs`` holds ``voxel_size_nm`` and ``shape``.

    Notes
    -----
    When ``apodize`` or ``mask`` is used, each array's (weighted) mean is
    subtracted first so the window does not spread the DC term into the low
    shells; shell 0 then holds no power and its ``fsc`` is NaN.  Without them
    no mean is removed (the mean only affects shell 0).
    The sums use a real-to-complex FFT with each voxel weighted by its
    multiplicity, which equals the sums over the full transform exactly.

    References
    ----------
    van Heel & Schatz (2005), J. Struct. Biol. 151, 250-262.
    Saxton & Baumeister (1982), J. Microsc. 127, 127-138 (FRC).
    """
    a_arr, b_arr, voxel_size_nm = _prepare_pair(a, b, voxel_size_nm, apodize, mask)
    return _shell_table(a_arr, b_arr, voxel_size_nm, select=None)


def _prepare_pair(a, b, voxel_size_nm: float, apodize: bool, mask) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate ``a``, ``b`` and apply the mask / apodisation (weighted mean removed)."""
    a_arr = _as_real_array(a, "a")
    b_arr = _as_real_array(b, "b")
    if a_arr.ndim not in (2, 3):
        raise ValueError(f"a must be 2-D (H, W) or 3-D (Z, Y, X), got shape {a_arr.shape}")
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a and b must have the same shape, got {a_arr.shape} and {b_arr.shape}")
    if min(a_arr.shape) < 2:
        raise ValueError(f"every side of a must be at least 2 voxels, got shape {a_arr.shape}")
    voxel_size_nm = float(voxel_size_nm)
    if not np.isfinite(voxel_size_nm) or voxel_size_nm <= 0:
        raise ValueError(f"voxel_size_nm must be a positive finite number, got {voxel_size_nm!r}")
    if not (np.all(np.isfinite(a_arr)) and np.all(np.isfinite(b_arr))):
        raise ValueError("a and b must be finite (no NaN or inf)")

    weights = None
    if mask is not None:
        m = _as_real_array(mask, "mask")
        if m.shape != a_arr.shape:
            raise ValueError(f"mask must have the shape of a {a_arr.shape}, got {m.shape}")
        if np.any(m < 0) or np.any(m > 1):
            raise ValueError("mask values must lie in [0, 1]")
        if not np.any(m > 0):
            raise ValueError("mask is zero everywhere")
        weights = m
    if apodize:
        window = apodization_window(a_arr.shape)
        weights = window if weights is None else weights * window
    if weights is not None:
        wsum = weights.sum()
        a_arr = (a_arr - (weights * a_arr).sum() / wsum) * weights
        b_arr = (b_arr - (weights * b_arr).sum() / wsum) * weights

    return a_arr, b_arr, voxel_size_nm


def _shell_table(
    a_arr: np.ndarray, b_arr: np.ndarray, voxel_size_nm: float, select: np.ndarray | None,
    spectra: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The FSC table of prepared arrays; ``select`` (rfftn grid, bool) keeps a subset
    of the Fourier voxels (a cone or a band) in every shell.  ``spectra``: the arrays'
    ``rfftn``, when the caller already has them (several tables of one pair)."""
    fa, fb = spectra if spectra is not None else (np.fft.rfftn(a_arr), np.fft.rfftn(b_arr))
    shell, mult, n_ref = _shell_index_and_weight(a_arr.shape)
    n_shells = n_ref // 2 + 1
    keep = shell < n_shells
    if select is not None:
        keep = keep & select
    idx = shell[keep]
    w = mult[keep]
    cross = np.bincount(idx, weights=(w * (fa * np.conj(fb)).real[keep]), minlength=n_shells)
    pow_a = np.bincount(idx, weights=(w * np.abs(fa[keep]) ** 2), minlength=n_shells)
    pow_b = np.bincount(idx, weights=(w * np.abs(fb[keep]) ** 2), minlength=n_shells)
    n_vox = np.rint(np.bincount(idx, weights=w, minlength=n_shells)).astype(np.int64)
    denom = np.sqrt(pow_a * pow_b)
    # A shell is "without power" when it holds (numerically) nothing compared
    # with the overall power of either map.
    tiny = 1e-24 * max(pow_a.sum(), pow_b.sum(), np.finfo(float).tiny)
    with np.errstate(invalid="ignore", divide="ignore"):
        fsc = np.where(
            (pow_a > tiny) & (pow_b > tiny), cross / np.where(denom > 0, denom, 1.0), np.nan
        )
    fsc = np.clip(fsc, -1.0, 1.0)

    shells = np.arange(n_shells)
    freq_per_nm = shells / (n_ref * voxel_size_nm)
    nyquist_per_nm = 0.5 / voxel_size_nm
    table = pd.DataFrame(
        {
            "shell": shells,
            "freq_per_nm": freq_per_nm,
            "freq_fraction_nyquist": freq_per_nm / nyquist_per_nm,
            "fsc": fsc,
            "n_voxels": n_vox,
            "one_bit": one_bit_threshold(n_vox),
            "half_bit": half_bit_threshold(n_vox),
            "fixed_0143": np.full(n_shells, 0.143),
        }
    )
    table.attrs["voxel_size_nm"] = voxel_size_nm
    table.attrs["shape"] = tuple(int(s) for s in a_arr.shape)
    return table


def fourier_ring_correlation(
    a, b, pixel_size_nm: float, apodize: bool = False, mask: np.ndarray | None = None
) -> pd.DataFrame:
    """Fourier ring correlation of two 2-D maps (alias of the 2-D FSC)."""
    if np.ndim(a) != 2:
        raise ValueError(f"a must be 2-D (H, W), got shape {np.shape(a)}")
    return fourier_shell_correlation(a, b, pixel_size_nm, apodize=apodize, mask=mask)


def split_half_fsc(
    recon_even,
    recon_odd,
    voxel_size_nm: float,
    apodize: bool = False,
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Split-half FSC: correlation of two independent half-data reconstructions.

    The tomography pipeline reconstructs the volume twice, once from the even-
    and once from the odd-numbered projections (each half still covers the full
    angular range, with twice the angular step); their noise is independent, so
    the FSC between them measures the reproducible signal.  This is just
    :func:`fourier_shell_correlation` of the two halves.

    Notes
    -----
    Each half holds half the data, so the split-half FSC describes a
    half-data reconstruction; the van Heel & Schatz thresholds are calibrated
    for exactly this comparison (their SNR is that of each half).
    """
    return fourier_shell_correlation(recon_even, recon_odd, voxel_size_nm, apodize=apodize, mask=mask)


def split_half_band_limit_nm(measured_pixel_nm: float, voxel_size_nm: float) -> float:
    """The finest resolution a split-half FSC can show for halves made from data sampled
    at ``measured_pixel_nm`` and put on ``voxel_size_nm`` voxels: twice the coarser of the two.

    Beyond the measured data's Nyquist frequency ``1 / (2 * measured_pixel_nm)`` the two
    halves of an upsampled volume hold nothing the test can tell apart from signal:

    * **spectral images.**  An upsampler by ``s`` leaves copies of the band it was given at
      multiples of the measured sampling frequency ``1 / measured_pixel_nm`` (its kernel
      only attenuates them).  The halves share the scan raster and the strong low
      frequencies of the sample, so their copies agree.  Measured on the default run's
      270-reprojection chain (30 nm -> 7.5 nm): the *bicubic* halves correlate at 0.97-0.99
      between 0.43 and 0.55 of the fine Nyquist frequency, the network's at 0.81-0.97;
      read over the whole band, the network's halves never fall below the one-bit
      threshold (15 nm, the fine voxel's Nyquist limit).
    * **the prior's own detail.**  A chain whose input is sampled at the measured pixel
      (the reprojections of a reconstruction at that voxel size) carries nothing beyond
      its Nyquist frequency; what the network puts there is a deterministic function of
      what the halves share, so the halves agree on it whether or not the truth does.
      Only the FSC against a truth measures it.

    Below the limit the halves' agreement is set by their independent noise, as for the
    raw reconstruction, whose own voxels give it the same limit.
    """
    for name, value in (("measured_pixel_nm", measured_pixel_nm), ("voxel_size_nm", voxel_size_nm)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of nm, got {value!r}")
    return 2.0 * max(float(measured_pixel_nm), float(voxel_size_nm))


def _voxel_size_from_table(table: pd.DataFrame) -> float:
    if "voxel_size_nm" in table.attrs:
        return float(table.attrs["voxel_size_nm"])
    nz = table["freq_fraction_nyquist"].to_numpy() > 0
    if not np.any(nz):
        raise ValueError("table has no shell above DC; cannot infer the voxel size")
    freq = table["freq_per_nm"].to_numpy()[nz]
    nyquist = float(np.median(freq / table["freq_fraction_nyquist"].to_numpy()[nz]))
    return 0.5 / nyquist


def resolution_nm(
    table: pd.DataFrame,
    threshold: ThresholdName = "one_bit",
    min_shell: int = 1,
    band_limit_nm: float | None = None,
) -> float:
    """Resolution (nm) where the FSC first falls below a threshold.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`fourier_shell_correlation`.
    threshold : {"one_bit", "half_bit", "0.143"}
        Threshold curve.
    min_shell : int
        Shells below this index are ignored (default 1: the DC shell, which
        holds one voxel, whose threshold is 1 and which carries only the mean).
    band_limit_nm : float, optional
        Search only the shells at frequencies up to ``1 / band_limit_nm``; a curve that
        does not fall below the threshold there reads ``band_limit_nm`` (read: "this
        fine or finer, as far as the test can tell").  For the split halves of an
        upsampled volume: twice the measured pixel, the Nyquist limit of the data the
        halves were made from (see :func:`split_half_band_limit_nm`).

    Returns
    -------
    resolution_nm : float
        ``1 / f`` with ``f`` (cycles/nm) the first frequency at or above shell
        ``min_shell`` where ``fsc - threshold`` changes sign from positive to
        not positive, interpolated linearly between the two shells around the
        crossing.  Special cases:

        * the curve never falls below the threshold: the Nyquist limit
          ``2 * voxel_size_nm`` (the finest resolution the sampling can show), or
          ``band_limit_nm`` when it is given;
        * the curve is already below at shell ``min_shell``: ``1 / f`` of that
          shell (nothing finer is supported; for ``min_shell = 1`` this is the
          field of view).

        Shells with NaN correlation (no power in either map) count as below
        the threshold: there is no information there.  Shells that hold no
        Fourier voxel at all (``n_voxels == 0``: in a directional FSC of a
        non-cubic array, e.g. the axial cone of a slab, only every other shell
        meets the shorter axis's frequencies) are skipped, not counted as a
        crossing; the crossing is interpolated between populated shells.
    """
    if threshold not in THRESHOLD_COLUMNS:
        raise ValueError(
            f"threshold must be one of {sorted(THRESHOLD_COLUMNS)}, got {threshold!r}"
        )
    required = {"freq_per_nm", "freq_fraction_nyquist", "fsc", THRESHOLD_COLUMNS[threshold]}
    missing = required - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}; pass fourier_shell_correlation output")
    if int(min_shell) < 1:
        raise ValueError(f"min_shell must be >= 1 (shell 0 is DC), got {min_shell}")
    min_shell = int(min_shell)
    voxel_size_nm = _voxel_size_from_table(table)
    if "n_voxels" in table.columns:
        populated = (table["n_voxels"].to_numpy() > 0) | (np.arange(len(table)) < min_shell)
        min_shell -= int(np.count_nonzero(~populated[:min_shell]))
        table = table[populated]
    freq = table["freq_per_nm"].to_numpy(dtype=np.float64)
    fsc = table["fsc"].to_numpy(dtype=np.float64)
    thr = table[THRESHOLD_COLUMNS[threshold]].to_numpy(dtype=np.float64)
    diff = np.where(np.isfinite(fsc), fsc - thr, -np.inf)
    if min_shell >= len(freq):
        raise ValueError(f"min_shell={min_shell} leaves no shell (table has {len(freq)} shells)")
    limit_nm = 2.0 * voxel_size_nm
    if band_limit_nm is not None:
        # A relative 1e-6 allows a limit equal to the Nyquist limit of a voxel size inferred from the table.
        if not (np.isfinite(band_limit_nm) and band_limit_nm >= limit_nm * (1 - 1e-6)):
            raise ValueError(f"band_limit_nm must be finite and at least the Nyquist limit {limit_nm:g} nm, "
                             f"got {band_limit_nm!r}")
        limit_nm = max(float(band_limit_nm), limit_nm)
        in_band = int(np.count_nonzero(freq <= 1.0 / limit_nm * (1 + 1e-9)))
        freq, diff = freq[:in_band], diff[:in_band]
        if min_shell >= len(freq):
            return limit_nm
    below = np.nonzero(diff[min_shell:] <= 0)[0]
    if below.size == 0:
        return limit_nm
    i = min_shell + int(below[0])
    if i == min_shell:
        logger.debug("FSC below the %s threshold already at shell %d", threshold, i)
        return float(1.0 / freq[i])
    d0, d1 = diff[i - 1], diff[i]
    if np.isfinite(d1):
        frac = d0 / (d0 - d1)
    else:
        frac = 1.0
    f_cross = freq[i - 1] + frac * (freq[i] - freq[i - 1])
    return float(1.0 / f_cross)
