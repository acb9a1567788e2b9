"""Figures for the evaluation report: FSC curves, image panels, volume slices.

Every function builds a :class:`matplotlib.figure.Figure` on the Agg canvas
directly (no ``pyplot``, no global backend switch, no display needed) and
returns it;
save it with ``fig.savefig("name.png", dpi=150)`` or hand it to a Kedro
``MatplotlibWriter`` dataset.  Nothing here imports Kedro.

Axes are in nm wherever a pixel size is given, so maps on different grids
(a raw map and its 4x enhancement) are shown at the same physical size and
carry a scale bar in nm.  Every map and volume figure has a robust colour range
(the 0.5-99.5 percentiles, :func:`_robust_limits`, so a few hot pixels do not
saturate the rest) and a colour bar labelled with the values' physical unit
(the ``units`` of the stack or volume: ``counts``, ``counts per fine pixel
(7.5 x 7.5 nm)``, ...); a figure given no unit says ``unit not given``.
"""

from __future__ import annotations

import logging
import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from xrf_sr_kedro.io.chunked import LazyElement
from xrf_sr_kedro.metrics.fsc import THRESHOLD_COLUMNS, resolution_nm

logger = logging.getLogger(__name__)

__all__ = ["plot_fsc", "plot_side_by_side", "plot_orthogonal_slices", "plot_before_after"]

MAP_CMAP = "magma"
RESIDUAL_CMAP = "RdBu_r"
_THRESHOLD_LABELS = {"one_bit": "one-bit", "half_bit": "half-bit", "0.143": "0.143"}
#: Colour-bar label of a figure whose caller gave no unit (never a made-up "a.u.").
NO_UNIT = "unit not given"


def _unit_label(units: str | None) -> str:
    return NO_UNIT if units is None or not str(units).strip() else str(units)


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _as_2d(image, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.squeeze(np.asarray(image, dtype=np.float64))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image (H, W), got shape {np.shape(image)}")
    return arr


def _robust_limits(arrays: list[np.ndarray], lo: float = 0.5, hi: float = 99.5) -> tuple[float, float]:
    values = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if values.size == 0:
        return 0.0, 1.0
    vmin, vmax = np.percentile(values, [lo, hi])
    if not vmax > vmin:
        vmin, vmax = float(values.min()), float(values.max())
        if not vmax > vmin:
            vmax = vmin + 1.0
    return float(vmin), float(vmax)


def _nice_length(target: float) -> float:
    """Largest 1-2-5 x 10^k value not above ``target``."""
    if target <= 0:
        return 1.0
    exponent = math.floor(math.log10(target))
    for mantissa in (5.0, 2.0, 1.0):
        value = mantissa * 10.0**exponent
        if value <= target:
            return value
    return 10.0**exponent


def _format_nm(length_nm: float) -> str:
    if length_nm >= 1000:
        um = length_nm / 1000.0
        return f"{um:g} µm"
    return f"{length_nm:g} nm"


def _add_scale_bar(ax, width_nm: float, color: str = "white") -> None:
    length = _nice_length(width_nm / 4.0)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        _format_nm(length),
        loc="lower right",
        pad=0.4,
        borderpad=0.5,
        sep=3,
        color=color,
        frameon=False,
        size_vertical=max(width_nm / 120.0, 1e-12),
        fontproperties=FontProperties(size=8),
    )
    ax.add_artist(bar)


def _show(ax, image: np.ndarray, pixel_size_nm: float | None, norm, cmap: str, title: str,
          bar_color: str = "white"):
    h, w = image.shape
    if pixel_size_nm is None:
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    else:
        extent = (0.0, w * pixel_size_nm, h * pixel_size_nm, 0.0)
    im = ax.imshow(image, cmap=cmap, norm=norm, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if pixel_size_nm is not None:
        _add_scale_bar(ax, w * pixel_size_nm, bar_color)
    return im


# ----------------------------------------------------------------------- FSC
def plot_fsc(
    curves: dict[str, pd.DataFrame],
    title: str,
    threshold: str = "one_bit",
    limits_nm: dict[str, float] | None = None,
    min_shells: dict[str, int] | None = None,
    band_limits_nm: dict[str, float] | None = None,
) -> Figure:
    """FSC curves against spatial frequency, with threshold and resolution.

    Parameters
    ----------
    curves : dict of str -> pandas.DataFrame
        Label -> output of :func:`~xrf_sr_kedro.metrics.fsc.fourier_shell_correlation`.
        Curves may come from different grids (raw and enhanced); the x axis is
        the spatial frequency in cycles/nm so they share it.
    title : str
        Figure title.
    threshold : {"one_bit", "half_bit", "0.143"}
        Threshold drawn (dashed, in each curve's colour, since the bit-based
        thresholds depend on the shell size) and used for the resolution shown
        in the legend and marked on the curve.
    limits_nm : dict of str -> float, optional
        Label -> a resolution limit (nm) drawn as a dotted vertical line at its
        frequency, e.g. ``{"Crowther limit": 66.3}``.
    min_shells : dict of str -> int, optional
        Label -> first shell used for that curve's resolution (default 1), e.g. to
        skip the nearly empty first shells of a directional FSC.
    band_limits_nm : dict of str -> float, optional
        Label -> the finest resolution that curve's reading may show
        (:func:`~xrf_sr_kedro.metrics.fsc.resolution_nm`'s ``band_limit_nm``; a curve
        that does not cross within it reads the limit, shown as "<= limit").

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    if threshold not in THRESHOLD_COLUMNS:
        raise ValueError(f"threshold must be one of {sorted(THRESHOLD_COLUMNS)}, got {threshold!r}")
    if not curves:
        raise ValueError("curves must hold at least one FSC table")
    col = THRESHOLD_COLUMNS[threshold]
    fig = _new_figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    colors = matplotlib.colormaps["tab10"].colors
    f_max = 0.0
    for k, (label, table) in enumerate(curves.items()):
        for needed in ("freq_per_nm", "fsc", col):
            if needed not in table.columns:
                raise ValueError(f"curve {label!r} lacks column {needed!r}")
        color = colors[k % len(colors)]
        f = table["freq_per_nm"].to_numpy()
        f_max = max(f_max, float(f.max()))
        band = (band_limits_nm or {}).get(label)
        res = resolution_nm(table, threshold, min_shell=(min_shells or {}).get(label, 1), band_limit_nm=band)
        ax.plot(f[1:], table["fsc"].to_numpy()[1:], "-", color=color, lw=1.6,
                label=f"{label}: {'<= ' if band is not None and np.isclose(res, band) else ''}{res:.1f} nm")
        if threshold != "0.143":
            ax.plot(f[1:], table[col].to_numpy()[1:], "--", color=color, lw=0.9, alpha=0.7)
        ax.plot([1.0 / res], [np.interp(1.0 / res, f, table[col].to_numpy())], "o",
                color=color, ms=5, mec="black", mew=0.6)
    if threshold == "0.143":
        ax.axhline(0.143, color="0.3", ls="--", lw=0.9, label="threshold 0.143")
    else:
        ax.plot([], [], "--", color="0.3", lw=0.9,
                label=f"{_THRESHOLD_LABELS[threshold]} threshold (per curve)")
    for k, (name, limit) in enumerate((limits_nm or {}).items()):
        if np.isfinite(limit) and limit > 0:
            ax.axvline(1.0 / limit, color="black", ls=(0, (1, 1 + k)), lw=1.0,
                       label=f"{name}: {limit:.1f} nm")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlim(0.0, f_max)
    ax.set_ylim(-0.2, 1.05)
    ax.set_xlabel("spatial frequency (nm$^{-1}$)")
    ax.set_ylabel("Fourier shell correlation")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", title=f"resolution ({_THRESHOLD_LABELS[threshold]})",
              title_fontsize=8)

    def to_period(x):
        # 1/x with the DC end clamped so the secondary axis stays finite.
        x = np.asarray(x, dtype=float)
        return 1.0 / np.maximum(np.abs(x), 1e-9)

    top = ax.secondary_xaxis("top", functions=(to_period, to_period))
    top.set_xlabel("period (nm)")
    # 1-2-5 periods from the Nyquist period up to ~12x it.
    p_min = 1.0 / f_max
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(p_min)) - 1, math.floor(math.log10(p_min)) + 3)
        for m in (1.0, 2.0, 5.0)
        if p_min * 0.999 <= m * 10.0**e <= 12.0 * p_min
    ]
    top.set_xticks(ticks)
    return fig


# ----------------------------------------------------------------------- panels
def plot_side_by_side(
    images: dict[str, np.ndarray],
    title: str,
    pixel_sizes_nm: dict[str, float] | None = None,
    units: str | None = None,
    shared_scale: bool = True,
    ncols: int | None = None,
) -> Figure:
    """Maps of one element side by side (e.g. truth / raw / bicubic / RL / enhanced).

    Parameters
    ----------
    images : dict of str -> ndarray (H, W)
        Panel title -> map.  Maps may have different shapes (grids).
    title : str
        Figure title, e.g. ``"Zn_K, projection 0"``.
    pixel_sizes_nm : dict of str -> float, optional
        Pixel size (nm) of each panel; when given every panel is drawn at its
        physical size with a scale bar in nm.  Missing keys are an error.
    units : str, optional
        Physical unit of the values: the label of the colour bar(s).
    shared_scale : bool
        One colour scale (0.5-99.5 percentile of all panels pooled) and one
        colour bar for all panels; otherwise a scale and bar per panel.
    ncols : int, optional
        Panels per row (default: all in one row); further panels wrap to new rows.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    if not images:
        raise ValueError("images must hold at least one image")
    arrays = {name: _as_2d(img, f"images[{name!r}]") for name, img in images.items()}
    if pixel_sizes_nm is not None:
        missing = [n for n in arrays if n not in pixel_sizes_nm]
        if missing:
            raise ValueError(f"pixel_sizes_nm lacks entries for {missing}")
    n = len(arrays)
    ncols = n if ncols is None else max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig = _new_figure(2.6 * ncols + (0.8 if shared_scale else 0.6 * ncols), 3.0 * nrows)
    grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in grid[n:]:
        ax.set_visible(False)
    axes = grid[:n]
    norm = Normalize(*_robust_limits(list(arrays.values()))) if shared_scale else None
    im = None
    for ax, (name, img) in zip(axes, arrays.items()):
        px = None if pixel_sizes_nm is None else float(pixel_sizes_nm[name])
        panel_norm = norm if shared_scale else Normalize(*_robust_limits([img]))
        label = name if px is None else f"{name} ({px:g} nm px)"
        im = _show(ax, img, px, panel_norm, MAP_CMAP, label)
        if not shared_scale:
            fig.colorbar(im, ax=ax, shrink=0.8, label=_unit_label(units))
    if shared_scale:
        fig.colorbar(im, ax=list(axes), shrink=0.85, label=_unit_label(units))
    fig.suptitle(title)
    return fig


def plot_orthogonal_slices(
    volume: np.ndarray,
    voxel_size_nm: float,
    title: str,
    units: str | None = None,
    index: tuple[int, int, int] | None = None,
) -> Figure:
    """Central slices of a volume in the three orthogonal directions.

    Parameters
    ----------
    volume : ndarray or LazyElement, shape (Z, Y, X)
        One element's volume (Z along the rotation axis); a lazy view of a
        volume file (:meth:`~xrf_sr_kedro.io.chunked.ChunkedVolume.element`) is
        read only at the three planes shown.
    voxel_size_nm : float
        Voxel edge length in nm.
    title : str
        Figure title.
    units : str, optional
        Physical unit of the values (the volume's ``units``): the colour bar's label.
    index : (z, y, x), optional
        Slice positions in voxels; the centre by default.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Panels ``XY (z = ...)``, ``XZ (y = ...)`` and ``YZ (x = ...)`` with a
        shared colour scale, positions in nm and a scale bar.
    """
    # a lazy view (io.chunked.LazyElement) is indexed as is: only the three planes are read
    vol = volume if isinstance(volume, LazyElement) else np.asarray(volume, dtype=np.float64)
    if vol.ndim != 3:
        raise ValueError(f"volume must be 3-D (Z, Y, X), got shape {vol.shape}")
    voxel_size_nm = float(voxel_size_nm)
    if not np.isfinite(voxel_size_nm) or voxel_size_nm <= 0:
        raise ValueError(f"voxel_size_nm must be positive, got {voxel_size_nm!r}")
    nz, ny, nx = vol.shape
    z, y, x = index if index is not None else (nz // 2, ny // 2, nx // 2)
    if not (0 <= z < nz and 0 <= y < ny and 0 <= x < nx):
        raise ValueError(f"index {index} lies outside the volume of shape {vol.shape}")
    slices = {
        f"XY (z = {z * voxel_size_nm:.0f} nm)": vol[z],
        f"XZ (y = {y * voxel_size_nm:.0f} nm)": vol[:, y, :],
        f"YZ (x = {x * voxel_size_nm:.0f} nm)": vol[:, :, x],
    }
    widths = [nx, nx, ny]
    fig = _new_figure(8.8, 3.2)
    axes = fig.subplots(1, 3, width_ratios=widths)
    norm = Normalize(*_robust_limits(list(slices.values())))
    im = None
    for ax, (name, img) in zip(axes, slices.items()):
        im = _show(ax, img, voxel_size_nm, norm, MAP_CMAP, name)
    fig.colorbar(im, ax=list(axes), shrink=0.85, label=_unit_label(units))
    fig.suptitle(f"{title} (voxel {voxel_size_nm:g} nm)")
    return fig


def plot_before_after(
    before: np.ndarray,
    after: np.ndarray,
    residual: np.ndarray | None = None,
    title: str = "Before / after enhancement",
    pixel_size_before_nm: float | None = None,
    pixel_size_after_nm: float | None = None,
    units: str | None = None,
    units_after: str | None = None,
) -> Figure:
    """A measured map, its enhancement and (optionally) the consistency residual.

    Parameters
    ----------
    before : ndarray (h, w)
        Measured (raw) map.
    after : ndarray (H, W)
        Enhanced map, usually on a finer grid.
    residual : ndarray (h, w), optional
        ``redegraded - measured`` from
        :func:`~xrf_sr_kedro.metrics.image.consistency_residual`; drawn with a
        diverging colour map centred on zero, on the ``before`` grid.
    title : str
        Figure title.
    pixel_size_before_nm, pixel_size_after_nm : float, optional
        Pixel sizes (nm) for physical axes and scale bars.  When only
        ``pixel_size_before_nm`` is given the ``after`` pixel size is inferred
        from the shape ratio.
    units : str, optional
        Unit of the measured map and the residual (e.g. ``counts``).
    units_after : str, optional
        Unit of the enhanced map (default ``units``); an enhanced stack holds
        counts per fine pixel (e.g. ``counts per fine pixel (7.5 x 7.5 nm)``),
        1/16 of the measured values for 4x, so each panel has its own colour bar.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    b = _as_2d(before, "before")
    a = _as_2d(after, "after")
    r = None if residual is None else _as_2d(residual, "residual")
    if pixel_size_before_nm is not None and pixel_size_after_nm is None:
        pixel_size_after_nm = float(pixel_size_before_nm) * b.shape[1] / a.shape[1]
    panels = [("before", b, pixel_size_before_nm), ("after", a, pixel_size_after_nm)]
    if r is not None:
        panels.append(("residual (re-degraded - measured)", r, pixel_size_before_nm))
    fig = _new_figure(3.3 * len(panels), 3.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, img, px) in zip(axes, panels):
        label = name if px is None else f"{name}\n({px:g} nm px)"
        if name.startswith("residual"):
            bound = max(float(np.nanpercentile(np.abs(img), 99.5)), 1e-12)
            norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)
            im = _show(ax, img, px, norm, RESIDUAL_CMAP, label, bar_color="black")
            fig.colorbar(im, ax=ax, shrink=0.8, label=f"residual ({_unit_label(units)})")
        else:
            unit = units_after if name == "after" and units_after is not None else units
            im = _show(ax, img, px, Normalize(*_robust_limits([img])), MAP_CMAP, label)
            fig.colorbar(im, ax=ax, shrink=0.8, label=_unit_label(unit))
    fig.suptitle(title)
    return fig
