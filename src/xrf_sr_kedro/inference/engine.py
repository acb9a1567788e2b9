"""Tiled, count-conserving enhancement of XRF maps with a trained network.

The network works on [0, 1]-normalised maps (:mod:`xrf_sr_kedro.normalisation`).
:func:`enhance_maps` normalises every low-resolution (LR) map with its own
``(lo, hi)``, exactly as the training pairs were normalised, runs the network,
maps the output back to physical units with the same ``(lo, hi)``, clips negative
intensities (and counts them) and finally rescales each enhanced map so that its
total signal matches the measurement once it is degraded again by the forward
model:

    sum(flyscan(enhanced, probe, step=scale)) == sum(measured)

For a unit-sum probe the fly-scan forward model conserves the mean intensity, so
this is ``mean(enhanced) == mean(measured)``; the factor applied to each map is
reported as ``conservation_scale``.

Tiling
------
Maps larger than ``tile_px`` (LR pixels) are cut into equally sized tiles that
overlap by at least ``overlap_px``; the number of tiles per axis is the smallest
that keeps tiles within ``tile_px``, and the tiles are then spread evenly, so a map
just above ``tile_px`` costs little more than one pass.  Each tile's output is
weighted by a separable window that is zero in the outer ``overlap_px // 4`` LR
pixels of every edge shared with a neighbour, rises as a raised cosine (Hann
ramp) over the next ``overlap_px - 2 * (overlap_px // 4)`` pixels and is one
inside; neighbouring ramps are complementary, and the weights are normalised by
their sum.  Edges on the map border carry no ramp.  The zero-padding seen by a
tile at an inner edge therefore never reaches the blended result as long as the
network's (effective) receptive radius is below ``overlap_px // 4``: the tiled
output then equals the whole-map output.  The theoretical receptive
field of the deep presets is far larger (429 px for ``paper``) and the channel
attention of the RCAB branch pools over the whole tile, so for them the agreement
is approximate; measured on a real 160 x 160 HXN map with 96 px tiles, the default
``overlap_px = 32`` (8 px discarded margin, 16 px ramp) keeps tiled and whole-map
outputs of the ``tiny`` and ``small`` presets within 1e-4 relative (4e-4 with a 16
px overlap).  The default ``tile_px = 192`` lets maps up to 192 x 192 (the real
beamline maps, a default projection) be enhanced whole, with neither tiling
overhead nor this approximation.

Speed
-----
Tiles of several maps are batched into one forward pass (memory is bounded by
``batch_size * 128**2`` LR input pixels a pass, whatever the map size); the model
runs in ``torch.inference_mode`` on an eval-mode copy and, by default, in
channels-last memory format (oneDNN convolutions on CPU and tensor cores on GPU
prefer it); ``num_threads`` sets torch's intra-op threads for the call.
``precision="bfloat16"`` enables bf16 autocast: on a CPU with AVX-512 BF16 it
about halves the CPU time of the presets, at a relative RMS deviation from float32
of 0.2 % (smooth maps) to 1 % (white-noise input) with untrained ``paper`` weights
(measured by ``benchmarks/enhancement.py``; its ``--checkpoint`` option measures it
for trained weights).  The default ``precision="auto"`` uses it only where the
hardware computes bf16 natively (emulated bf16 is ~5x slower than float32):
see :mod:`xrf_sr_kedro.inference.precision`.
TorchScript freezing (``optimize_for_inference``) was measured and gave no gain
over channels-last eager execution here, so it is not used.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from xrf_sr_kedro.inference.precision import PRECISIONS, resolve_precision
from xrf_sr_kedro.normalisation import denormalise, minmax_range, normalise
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)

Precision = Literal["float32", "bfloat16"]

#: LR input pixels of one reference tile: a forward pass holds at most
#: ``batch_size`` of these (large tiles are batched proportionally fewer).
_REFERENCE_TILE_PIXELS = 128 * 128

#: Cap on the default minimum map size.  The theoretical receptive field of the
#: deep presets (429 px for ``paper``) far exceeds their effective field, so the
#: default minimum is the receptive field capped at this many LR pixels.
MIN_SIZE_CAP_PX = 32


@dataclass(frozen=True)
class EnhanceResult:
    """Enhanced maps with the per-map bookkeeping needed to make them quantitative.

    Attributes
    ----------
    data : ndarray, float32, shape (..., H * scale, W * scale)
        Enhanced maps in the physical units of the input; same leading shape.
    lo, hi : ndarray, float32, shape (...)
        The normalisation range of each LR map (its minimum and maximum, see
        :func:`xrf_sr_kedro.normalisation.minmax_range`).
    conservation_scale : ndarray, float64, shape (...)
        Factor applied to each enhanced map (after clipping) so that its mean equals
        the measured map's mean (1.0 where that is undefined, see Notes of
        :func:`enhance_maps`).
    n_clipped_negative : ndarray, int64, shape (...)
        Number of negative output pixels set to zero in each map.
    clipped_fraction : ndarray, float64, shape (...)
        ``n_clipped_negative`` divided by the number of output pixels of the map.
    """

    data: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    conservation_scale: np.ndarray
    n_clipped_negative: np.ndarray
    clipped_fraction: np.ndarray

    @property
    def total_clipped_negative(self) -> int:
        """Negative output pixels clipped over all maps."""
        return int(self.n_clipped_negative.sum())

    @property
    def total_clipped_fraction(self) -> float:
        """Fraction of all output pixels that were clipped."""
        n_px = self.data.size
        return float(self.total_clipped_negative / n_px) if n_px else 0.0


# ----------------------------------------------------------------------------- model
def default_device() -> str:
    """``"cuda"`` when a GPU is visible to torch, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def model_in_channels(model: nn.Module) -> int:
    """Number of image channels the network takes (``config.in_channels`` or first conv)."""
    for obj in (model, getattr(model, "config", None)):
        value = getattr(obj, "in_channels", None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    raise ValueError(
        "cannot tell how many input channels the model takes: it has no "
        "config.in_channels and no Conv2d layer"
    )


def default_min_size_px(model: nn.Module) -> int:
    """Smallest LR map side the engine accepts for ``model`` by default.

    The convolutional receptive field of a dual-branch network
    (:func:`xrf_sr_kedro.models.dual_branch.receptive_field_px`), capped at
    :data:`MIN_SIZE_CAP_PX`; 1 for other models.
    """
    config = getattr(model, "config", None)
    if config is None:
        return 1
    try:
        from xrf_sr_kedro.models.dual_branch import DualBranchConfig, receptive_field_px
    except ImportError:  # pragma: no cover - the models package ships with the project
        return 1
    if not isinstance(config, DualBranchConfig):
        return 1
    return int(min(receptive_field_px(config), MIN_SIZE_CAP_PX))


def _prepare_model(
    model: nn.Module, device: torch.device, channels_last: bool
) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device`` (the caller's model is untouched)."""
    net = copy.deepcopy(model).to(device).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@contextlib.contextmanager
def _num_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _autocast(device: torch.device, precision: Precision):
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# ---------------------------------------------------------------------------- tiling
def tile_layout(length_px: int, tile_px: int, overlap_px: int, min_tile_px: int = 1
                ) -> tuple[int, list[int]]:
    """Tile size and start positions covering ``length_px`` along one axis.

    Parameters
    ----------
    length_px : int
        Map length in LR pixels.
    tile_px : int
        Largest tile length.
    overlap_px : int
        Smallest overlap between neighbouring tiles.
    min_tile_px : int
        Smallest tile length (a tile is never shorter, unless the map is).

    Returns
    -------
    size : int
        The common tile length (``length_px`` when the map fits in one tile).
    starts : list of int
        Start of each tile; consecutive tiles overlap by at least ``overlap_px``.
    """
    if length_px <= tile_px:
        return length_px, [0]
    n = math.ceil((length_px - overlap_px) / (tile_px - overlap_px))
    size = math.ceil((length_px + (n - 1) * overlap_px) / n)
    size = min(length_px, max(size, min_tile_px))
    # floor spacing: the largest gap is ceil((L - size) / (n - 1)) <= size - overlap
    starts = [(i * (length_px - size)) // (n - 1) for i in range(n)]
    return size, starts


def _ramp(length: int, margin: int, ramp: int) -> np.ndarray:
    """Weights rising from the tile edge: ``margin`` zeros, a Hann ramp, then ones."""
    w = np.ones(length, dtype=np.float64)
    w[: min(margin, length)] = 0.0
    if ramp > 0:
        k = np.arange(ramp, dtype=np.float64)
        seg = np.sin(0.5 * np.pi * (k + 0.5) / ramp) ** 2
        end = min(margin + ramp, length)
        w[margin:end] = seg[: max(0, end - margin)]
    return w


def _axis_weights(size: int, starts: list[int], length: int, scale: int,
                  overlap_px: int) -> list[np.ndarray]:
    """1-D HR blending windows of the tiles along one axis (unnormalised)."""
    margin = (overlap_px // 4) * scale
    ramp = (overlap_px - 2 * (overlap_px // 4)) * scale
    n_hr = size * scale
    out = []
    for s in starts:
        w = np.ones(n_hr, dtype=np.float64)
        if s > 0:  # inner edge at the start
            w *= _ramp(n_hr, margin, ramp)
        if s + size < length:  # inner edge at the end
            w *= _ramp(n_hr, margin, ramp)[::-1]
        out.append(w)
    return out


@dataclass(frozen=True)
class _Tiling:
    size_y: int
    size_x: int
    boxes: list[tuple[int, int]]  # (y0, x0) in LR pixels
    weights: list[np.ndarray] | None  # normalised HR weights per tile, None: one tile


def _make_tiling(h: int, w: int, scale: int, tile_px: int, overlap_px: int,
                 min_tile_px: int) -> _Tiling:
    sy, ys = tile_layout(h, tile_px, overlap_px, min_tile_px)
    sx, xs = tile_layout(w, tile_px, overlap_px, min_tile_px)
    boxes = [(y, x) for y in ys for x in xs]
    if len(boxes) == 1:
        return _Tiling(sy, sx, boxes, None)
    wy = _axis_weights(sy, ys, h, scale, overlap_px)
    wx = _axis_weights(sx, xs, w, scale, overlap_px)
    total = np.zeros((h * scale, w * scale), dtype=np.float64)
    raw = []
    for iy, y in enumerate(ys):
        for ix, x in enumerate(xs):
            win = np.outer(wy[iy], wx[ix])
            raw.append(win)
            total[y * scale:(y + sy) * scale, x * scale:(x + sx) * scale] += win
    if np.any(total <= 0):  # pragma: no cover - guaranteed by tile_layout
        raise RuntimeError("tiling leaves output pixels without weight; increase tile_px")
    weights = []
    for (y, x), win in zip(boxes, raw):
        norm = total[y * scale:(y + sy) * scale, x * scale:(x + sx) * scale]
        weights.append((win / norm).astype(np.float32))
    return _Tiling(sy, sx, boxes, weights)


# ------------------------------------------------------------------------ validation
def _check_maps(maps: np.ndarray, min_size_px: int) -> np.ndarray:
    arr = np.asarray(maps)
    if arr.ndim not in (3, 4):
        raise ValueError(
            "maps must be 3-D (n_maps, H, W) or 4-D (n_angles, n_elements, H, W), "
            f"got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"maps must not be empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"maps must hold real numbers, got dtype {arr.dtype}")
    finite = np.isfinite(arr).all(axis=(-2, -1))
    if not finite.all():
        bad = [tuple(int(i) for i in idx) for idx in np.argwhere(~finite)]
        shown = ", ".join(str(b[0]) if len(b) == 1 else str(b) for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            f"maps contain NaN or inf in map index {shown}{more} "
            f"(of leading shape {arr.shape[:-2]}); fill or drop those pixels first"
        )
    h, w = arr.shape[-2:]
    if min(h, w) < min_size_px:
        raise ValueError(
            f"maps of {h} x {w} px are smaller than the model's minimum size "
            f"{min_size_px} px (receptive field / min_size_px); enhance larger maps"
        )
    return arr


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------- engine
def enhance_maps(
    model: nn.Module,
    maps: np.ndarray,
    scale: int,
    tile_px: int = 192,
    overlap_px: int = 32,
    batch_size: int = 8,
    device: str | None = None,
    min_size_px: int | None = None,
    *,
    precision: Precision | Literal["auto"] = "auto",
    channels_last: bool = True,
    num_threads: int | None = None,
    conserve_total_signal: bool = True,
    probe_intensity: np.ndarray | ProbeIntensity | None = None,
    fast_axis: Literal["x", "y"] = "x",
    mode: Literal["fly", "step"] = "fly",
    progress: bool | None = None,
) -> EnhanceResult:
    """Enhance LR maps by ``scale`` with ``model``, quantitatively and in bounded memory.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, C, h, w)`` in [0, 1] to ``(N, C, h * scale, w * scale)``.
    maps : ndarray, shape (n_maps, H, W) or (n_angles, n_elements, H, W)
        Measured maps in physical units (counts, concentration).  No NaN or inf.
    scale : int
        Upsampling factor of the model (checked against its output).
    tile_px : int
        Largest tile side in LR pixels; maps up to ``tile_px`` are run whole.
    overlap_px : int
        Smallest overlap between neighbouring tiles in LR pixels; the outer
        ``overlap_px // 4`` pixels of each inner tile edge are discarded and the
        rest is blended (see the module notes).  Must be below ``tile_px``.
    batch_size : int
        Tiles (of several maps) per forward pass; for tiles larger than 128 x 128
        proportionally fewer, so a pass holds at most ``batch_size * 128**2`` input
        pixels.
    device : str, optional
        Torch device; ``"cuda"`` if available else ``"cpu"``.
    min_size_px : int, optional
        Smallest map side accepted; default :func:`default_min_size_px`.
    precision : {"auto", "float32", "bfloat16"}
        ``"bfloat16"`` runs the model under bf16 autocast (faster on CPUs with
        AVX-512 BF16 and on GPUs); outputs are accumulated in float32.  ``"auto"``
        picks bf16 only where the hardware has it natively
        (:func:`~xrf_sr_kedro.inference.precision.resolve_precision`).
    channels_last : bool
        Run the model in channels-last memory format.
    num_threads : int, optional
        Torch intra-op threads during the call (restored afterwards).
    conserve_total_signal : bool
        Rescale each enhanced map so its total signal matches the measurement
        (default); if False the reported ``conservation_scale`` is the factor that
        *would* have been applied and is not applied.
    probe_intensity : ndarray (h, w) or ProbeIntensity, optional
        Probe intensity on the enhanced (HR) grid.  When given, the total signal is
        conserved exactly through the forward model,
        ``sum(flyscan(enhanced, probe, scale)) == sum(measured)``, border losses of
        the zero-padded forward model included; without it, the mean is matched
        (exact up to those border losses, which are negligible for maps surrounded
        by background).
    fast_axis, mode
        Fly-scan direction and mode of the forward model (with ``probe_intensity``).
    progress : bool, optional
        Show a progress bar over maps (``None``: only on a terminal).

    Returns
    -------
    EnhanceResult

    Raises
    ------
    ValueError
        On wrong ``maps`` dimensions, NaN/inf (naming the map index), maps smaller
        than ``min_size_px``, a model/map channel mismatch, a model whose output is
        not ``scale`` times its input, or bad tiling arguments.

    Notes
    -----
    *Channels.*  A single-channel model (``in_channels == 1``) enhances every map
    on its own: a 4-D input is treated as ``n_angles * n_elements`` maps.  A model
    with ``in_channels = C > 1`` enhances the elements of one projection jointly:
    it needs a 4-D input with ``n_elements == C`` (or a 3-D input with
    ``n_maps == C``, one multi-element map).  Each element map is still normalised
    with its own ``(lo, hi)``, as in training.

    *Total signal.*  After clipping, map ``i`` is multiplied by
    ``mean(measured_i) / mean(enhanced_i)`` (for a unit-sum probe the forward model
    conserves the mean), or with ``probe_intensity`` by
    ``sum(measured_i) / sum(flyscan(enhanced_i))``.  Where the enhanced signal is
    not positive or the measured one is negative the factor is 1.0 and a warning
    is logged.
    """
    scale = _check_positive_int("scale", scale)
    tile_px = _check_positive_int("tile_px", tile_px)
    overlap_px = _check_positive_int("overlap_px", overlap_px, minimum=0)
    batch_size = _check_positive_int("batch_size", batch_size)
    if overlap_px >= tile_px:
        raise ValueError(f"overlap_px must be below tile_px, got {overlap_px} >= {tile_px}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    probe = None if probe_intensity is None else _unit_probe(probe_intensity)
    if min_size_px is None:
        min_size_px = default_min_size_px(model)
    min_size_px = _check_positive_int("min_size_px", min_size_px)
    if tile_px < min_size_px:
        raise ValueError(f"tile_px ({tile_px}) must be at least min_size_px ({min_size_px})")

    arr = _check_maps(maps, min_size_px)
    lead_shape = arr.shape[:-2]
    h, w = arr.shape[-2:]
    n_channels = model_in_channels(model)
    if n_channels == 1:
        samples = arr.reshape(-1, 1, h, w)
    else:
        n_elements = arr.shape[1] if arr.ndim == 4 else arr.shape[0]
        if n_elements != n_channels:
            raise ValueError(
                f"the model takes {n_channels} input channels (elements) but the maps "
                f"have {n_elements} elements (shape {arr.shape}); use a checkpoint "
                f"trained on {n_elements} channel(s) or select matching elements"
            )
        samples = arr.reshape(-1, n_channels, h, w)

    lo, hi = minmax_range(samples)
    x_norm = normalise(samples, lo, hi)
    n_samples, c = samples.shape[:2]
    out = np.empty((n_samples, c, h * scale, w * scale), dtype=np.float32)

    tiling = _make_tiling(h, w, scale, tile_px, overlap_px, min_size_px)
    tiles_per_pass = max(
        1, min(batch_size, (batch_size * _REFERENCE_TILE_PIXELS) // (tiling.size_y * tiling.size_x))
    )
    n_tiles = len(tiling.boxes)
    logger.info(
        "enhancing %d map(s) of %d x %d px x%d: %d tile(s) of %d x %d each, %d tile(s) a pass",
        n_samples * c, h, w, scale, n_tiles, tiling.size_y, tiling.size_x, tiles_per_pass,
    )

    dev = torch.device(device if device is not None else default_device())
    precision = resolve_precision(precision, dev)
    net = _prepare_model(model, dev, channels_last)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    weights = (
        None if tiling.weights is None
        else [torch.from_numpy(wt).to(dev) for wt in tiling.weights]
    )

    jobs = [(i, j) for i in range(n_samples) for j in range(n_tiles)]
    remaining = np.full(n_samples, n_tiles, dtype=np.int64)
    conservation = np.ones(n_samples * c, dtype=np.float64).reshape(n_samples, c)
    n_clipped = np.zeros((n_samples, c), dtype=np.int64)
    if tiling.weights is not None:
        out.fill(0.0)

    sy, sx = tiling.size_y, tiling.size_x
    with (
        _num_threads(num_threads),
        torch.inference_mode(),
        tqdm(total=n_samples, desc="enhancing maps", unit="map",
             disable=None if progress is None else not progress) as bar,
    ):
        for start in range(0, len(jobs), tiles_per_pass):
            chunk = jobs[start:start + tiles_per_pass]
            batch = np.stack([
                x_norm[i, :, tiling.boxes[j][0]:tiling.boxes[j][0] + sy,
                       tiling.boxes[j][1]:tiling.boxes[j][1] + sx]
                for i, j in chunk
            ])
            xb = torch.from_numpy(batch).to(dev).contiguous(memory_format=memory_format)
            with _autocast(dev, precision):
                yb = net(xb)
            expected = (len(chunk), c, sy * scale, sx * scale)
            if tuple(yb.shape) != expected:
                raise ValueError(
                    f"model output shape {tuple(yb.shape)} does not match scale={scale}: "
                    f"expected {expected} for input {tuple(xb.shape)}"
                )
            yb = yb.float()
            if weights is not None:
                yb = yb * torch.stack([weights[j] for _, j in chunk])[:, None]
            yb = yb.cpu().numpy()
            for k, (i, j) in enumerate(chunk):
                y0, x0 = (v * scale for v in tiling.boxes[j])
                if weights is None:
                    out[i] = yb[k]
                else:
                    out[i, :, y0:y0 + sy * scale, x0:x0 + sx * scale] += yb[k]
                remaining[i] -= 1
                if remaining[i] == 0:
                    conservation[i], n_clipped[i] = _finalise(
                        out[i], samples[i], lo[i], hi[i], conserve_total_signal,
                        probe, scale, fast_axis, mode,
                    )
                    bar.update(1)

    flat_lead = lead_shape
    result = EnhanceResult(
        data=out.reshape(*flat_lead, h * scale, w * scale),
        lo=lo.reshape(flat_lead).astype(np.float32),
        hi=hi.reshape(flat_lead).astype(np.float32),
        conservation_scale=conservation.reshape(flat_lead),
        n_clipped_negative=n_clipped.reshape(flat_lead),
        clipped_fraction=(n_clipped / float(h * w * scale * scale)).reshape(flat_lead),
    )
    if result.total_clipped_negative:
        logger.info(
            "clipped %d negative output pixel(s) (%.3g%% of the output)",
            result.total_clipped_negative, 100 * result.total_clipped_fraction,
        )
    return result


def _unit_probe(probe_intensity: np.ndarray | ProbeIntensity) -> np.ndarray:
    """The probe as a unit-sum float64 array, validated."""
    if isinstance(probe_intensity, ProbeIntensity):
        return probe_intensity.intensity.astype(np.float64)
    probe = np.asarray(probe_intensity, dtype=np.float64)
    if probe.ndim != 2:
        raise ValueError(f"probe_intensity must be 2-D, got shape {probe.shape}")
    if not np.all(np.isfinite(probe)) or np.any(probe < 0) or probe.sum() <= 0:
        raise ValueError("probe_intensity must be finite, non-negative, with a positive sum")
    return probe / probe.sum()


def _finalise(
    out: np.ndarray, measured: np.ndarray, lo: np.ndarray, hi: np.ndarray, conserve: bool,
    probe: np.ndarray | None, scale: int, fast_axis: str, mode: str,
) -> tuple[np.ndarray, np.ndarray]:
    """In place: physical units, negatives clipped, total signal matched.

    Returns the per-channel conservation factor and the number of clipped pixels.
    """
    out[...] = denormalise(out, lo, hi)
    negative = out < 0
    n_neg = negative.sum(axis=(-2, -1))
    out[negative] = 0.0
    if probe is None:
        target = measured.mean(axis=(-2, -1), dtype=np.float64)
        current = out.mean(axis=(-2, -1), dtype=np.float64)
    else:
        from xrf_sr_kedro.physics.flyscan import flyscan

        target = measured.sum(axis=(-2, -1), dtype=np.float64)
        redegraded = flyscan(out, probe, scale, fast_axis=fast_axis, mode=mode)
        current = redegraded.sum(axis=(-2, -1), dtype=np.float64)
    factor = np.ones_like(target)
    ok = (current > 0) & (target >= 0)
    factor[ok] = target[ok] / current[ok]
    if not ok.all():
        logger.warning(
            "total signal cannot be conserved for %d map(s) (enhanced signal <= 0 or "
            "measured signal < 0): left unscaled", int((~ok).sum()),
        )
    if conserve:
        out *= factor[:, None, None].astype(np.float32)
    return factor, n_neg


# ----------------------------------------------------------------------------- stack
def _jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of ``value`` (dataclasses, arrays, paths, tuples)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


#: Checkpoint keys copied into the enhanced stack's metadata (weights are not).
_CHECKPOINT_KEYS = ("path", "preset", "config", "training_data", "parent", "epoch",
                    "metrics", "train_config", "format_version")


def _scale_of(model: nn.Module, checkpoint_info: dict[str, Any]) -> int:
    for config in (checkpoint_info.get("config"), getattr(model, "config", None)):
        value = config.get("scale") if isinstance(config, dict) else getattr(config, "scale", None)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
    raise ValueError(
        "cannot tell the model's scale: checkpoint_info['config'] and model.config "
        "have no 'scale'"
    )


def enhance_stack(
    model: nn.Module,
    stack: XRFStack,
    checkpoint_info: dict[str, Any],
    tile_px: int = 192,
    overlap_px: int = 32,
    batch_size: int = 8,
    device: str | None = None,
    **kwargs: Any,
) -> XRFStack:
    """Enhance every map of ``stack`` and record how in the result's metadata.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (see :func:`enhance_maps`).
    stack : XRFStack
        Measured maps, ``data`` of shape (n_elements, n_frames, H, W).
    checkpoint_info : dict
        The checkpoint the model came from (as returned by
        ``io.checkpoint.load_checkpoint``, plus ``"path"``); its ``config`` gives
        the scale, and ``path``, ``preset``, ``config``, ``training_data`` (and any
        other keys of ``_CHECKPOINT_KEYS``) are recorded.  Weights are not copied.
    tile_px, overlap_px, batch_size, device
        As in :func:`enhance_maps`.
    **kwargs
        Further keyword arguments of :func:`enhance_maps` (``precision``,
        ``probe_intensity`` on the enhanced grid, ...).

    Returns
    -------
    XRFStack
        ``data`` of shape (n_elements, n_frames, H * scale, W * scale) in the input's
        units, ``pixel_size_nm`` divided by the scale, same elements and angles, and
        ``metadata["enhancement"]`` holding the checkpoint, the input and output
        pixel sizes, the normalisation (``lo``/``hi`` per map, shape
        ``[n_elements][n_frames]``), the conservation factors and the clipping
        counts.  The input's metadata is kept under its own keys.
    """
    if not isinstance(stack, XRFStack):
        raise TypeError(f"stack must be an XRFStack, got {type(stack).__name__}")
    if not isinstance(checkpoint_info, dict):
        raise TypeError(f"checkpoint_info must be a dict, got {type(checkpoint_info).__name__}")
    scale = _scale_of(model, checkpoint_info)
    probe = kwargs.get("probe_intensity")
    if isinstance(probe, ProbeIntensity) and not math.isclose(
        probe.pixel_size_nm, stack.pixel_size_nm / scale, rel_tol=1e-3
    ):
        raise ValueError(
            f"probe_intensity pixel size {probe.pixel_size_nm} nm differs from the enhanced "
            f"pixel size {stack.pixel_size_nm / scale} nm; resample the probe"
        )
    # engine layout (n_frames, n_elements, H, W): a multi-channel model sees the
    # elements of one projection together
    kwargs["precision"] = resolve_precision(
        kwargs.get("precision", "auto"), device or default_device())
    result = enhance_maps(
        model, stack.data.transpose(1, 0, 2, 3), scale, tile_px=tile_px,
        overlap_px=overlap_px, batch_size=batch_size, device=device, **kwargs,
    )

    def per_map(a: np.ndarray) -> list:
        return _jsonable(np.asarray(a).transpose(1, 0))

    checkpoint = {k: _jsonable(checkpoint_info[k]) for k in _CHECKPOINT_KEYS
                  if k in checkpoint_info}
    enhancement = {
        "checkpoint": checkpoint,
        "scale": scale,
        "input_pixel_size_nm": stack.pixel_size_nm,
        "output_pixel_size_nm": stack.pixel_size_nm / scale,
        "input_shape_hw": list(stack.shape_hw),
        "normalisation": {
            "method": "minmax per LR map (xrf_sr_kedro.normalisation)",
            "lo": per_map(result.lo),
            "hi": per_map(result.hi),
        },
        "total_signal_conserved": bool(kwargs.get("conserve_total_signal", True)),
        "total_signal_reference": (
            "mean of the measured map" if probe is None
            else "sum of the measured map through the fly-scan forward model"
        ),
        "conservation_scale": per_map(result.conservation_scale),
        "n_clipped_negative": per_map(result.n_clipped_negative),
        "n_clipped_negative_total": result.total_clipped_negative,
        "clipped_fraction": result.total_clipped_fraction,
        "tile_px": tile_px,
        "overlap_px": overlap_px,
        "precision": kwargs["precision"],
    }
    metadata = {**stack.metadata, "enhancement": enhancement}
    return dataclasses.replace(
        stack,
        data=result.data.transpose(1, 0, 2, 3),
        pixel_size_nm=stack.pixel_size_nm / scale,
        metadata=metadata,
    )


# ----------------------------------------------------------------------- consistency
def data_consistency(
    measured: XRFStack,
    enhanced: XRFStack,
    probe_intensity: np.ndarray | ProbeIntensity,
    step_px: int,
    fast_axis: Literal["x", "y"] = "x",
    mode: str = "fly",
) -> dict[str, Any]:
    """How well the enhanced maps, degraded again, reproduce the measured maps.

    The enhanced maps are passed through the fly-scan forward model
    (:func:`xrf_sr_kedro.physics.flyscan.flyscan`) with the probe and step of the
    measurement and compared with the measured maps.  This is the check for real
    data without ground truth: a trustworthy enhancement leaves a residual at the
    noise level and no structure.

    Parameters
    ----------
    measured : XRFStack
        The LR maps, (n_elements, n_frames, H, W).
    enhanced : XRFStack
        Their enhancement, (n_elements, n_frames, H * step_px, W * step_px).
    probe_intensity : ndarray (h, w) or ProbeIntensity
        Probe intensity on the *enhanced* pixel grid (normalised to unit sum here).
        A ``ProbeIntensity`` must have the enhanced stack's pixel size.
    step_px : int
        Scan step in enhanced pixels (the enhancement scale).
    fast_axis : {"x", "y"}
        Fly-scan direction.
    mode : str
        Forward-model mode (``"fly"`` or ``"step"``), as in ``flyscan``.

    Returns
    -------
    dict
        ``residual`` (ndarray, (n_elements, n_frames, H, W), float64,
        ``redegraded - measured``), ``redegraded`` (float32, same shape),
        ``relative_l2`` and ``total_signal_error`` (ndarray (n_elements, n_frames):
        ``||residual|| / ||measured||`` and ``(sum(redegraded) - sum(measured)) /
        sum(measured)`` per map), ``relative_l2_overall`` and
        ``total_signal_error_overall`` (float, over all maps), ``elements``.
    """
    from xrf_sr_kedro.metrics.image import consistency_residual
    from xrf_sr_kedro.physics.flyscan import flyscan

    for name, s in (("measured", measured), ("enhanced", enhanced)):
        if not isinstance(s, XRFStack):
            raise TypeError(f"{name} must be an XRFStack, got {type(s).__name__}")
    step_px = _check_positive_int("step_px", step_px)
    if isinstance(probe_intensity, ProbeIntensity):
        if not math.isclose(probe_intensity.pixel_size_nm, enhanced.pixel_size_nm, rel_tol=1e-3):
            raise ValueError(
                f"probe_intensity pixel size {probe_intensity.pixel_size_nm} nm differs from "
                f"the enhanced stack's {enhanced.pixel_size_nm} nm; resample the probe"
            )
    probe = _unit_probe(probe_intensity)
    if measured.elements != enhanced.elements:
        raise ValueError(
            f"measured elements {measured.elements} differ from enhanced {enhanced.elements}"
        )
    h, w = measured.shape_hw
    eh, ew = enhanced.shape_hw
    if (eh // step_px, ew // step_px) != (h, w) or measured.n_frames != enhanced.n_frames:
        raise ValueError(
            f"enhanced maps {enhanced.data.shape} re-degraded at step_px={step_px} give "
            f"{(eh // step_px, ew // step_px)} px, but the measured maps are "
            f"{measured.data.shape}"
        )
    redegraded = np.asarray(
        flyscan(enhanced.data, probe, step_px, fast_axis=fast_axis, mode=mode), dtype=np.float32
    )
    n_el, n_fr = measured.data.shape[:2]
    rel_l2 = np.empty((n_el, n_fr))
    rel_sum = np.empty((n_el, n_fr))
    for e in range(n_el):
        for f in range(n_fr):
            _, rel_l2[e, f], rel_sum[e, f] = consistency_residual(
                measured.data[e, f], redegraded[e, f]
            )
    residual, l2_all, sum_all = consistency_residual(measured.data, redegraded)
    return {
        "residual": residual,
        "redegraded": redegraded,
        "relative_l2": rel_l2,
        "total_signal_error": rel_sum,
        "relative_l2_overall": l2_all,
        "total_signal_error_overall": sum_all,
        "elements": list(measured.elements),
    }
