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
Maps larger than ``tile_px`` (LR pixels) are cut into overlapping tiles blended
by complementary windows; :mod:`.tiling` documents the geometry and its accuracy.

Speed
-----
Tiles of several maps are batched into one forward pass (memory is bounded by
``batch_size * 128**2`` LR input pixels a pass on a GPU, a few small maps on a CPU,
whatever the map size), and on a CPU several passes run at once on single-threaded
workers (:mod:`.passes`; float32 ``small`` preset on 91 maps of 64 px: 1.46-1.49x
the naive per-map loop on a loaded 2-core machine, 0.87x before); the model
runs in ``torch.inference_mode`` on an eval-mode copy and, by default, in
channels-last memory format (oneDNN convolutions on CPU and tensor cores on GPU
prefer it); ``num_threads`` sets torch's intra-op threads for the call.
``precision="bfloat16"`` runs the model under bf16 autocast: 1.8x faster on a CPU
with native bf16, 1.7e-4 relative RMS from float32 with the default trained network
(up to 1 % on white-noise input with untrained ``paper`` weights), measured by
``benchmarks/enhancement.py [--checkpoint]``; where bf16 is emulated it is ~5x
*slower* than float32.  The default ``precision="auto"`` (here and in
:class:`~xrf_sr_kedro.inference.stack.EngineSettings`, ``parameters_enhancement.yml``)
therefore uses bf16 only on hardware with native bf16, float32 elsewhere
(:mod:`xrf_sr_kedro.inference.precision`); ``"float32"`` is bit-exact.
TorchScript freezing (``optimize_for_inference``) was measured and gave no gain
over channels-last eager execution here, so it is not used.  The output conv is
folded through the last pixel shuffle (:func:`~xrf_sr_kedro.models.inference_form.inference_form`:
the same function to float32 rounding, ~12 % less time a pass with one AVX2 thread).

Self-ensemble
-------------
``self_ensemble=True`` (the default) averages the network over the flips along x
and y, which commute with the fly-scan (:mod:`.ensemble`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from xrf_sr_kedro.device import default_device
from xrf_sr_kedro.inference.ensemble import (  # noqa: F401  (re-exported)
    DEFAULT_SELF_ENSEMBLE,
    ENSEMBLE_FLIPS,
    ensemble_forward,
)
from xrf_sr_kedro.inference.passes import default_workers, ordered_map, tiles_per_pass
from xrf_sr_kedro.inference.precision import PRECISIONS, resolve_precision
from xrf_sr_kedro.inference.tiling import make_tiling
from xrf_sr_kedro.models.inference_form import inference_form
from xrf_sr_kedro.normalisation import denormalise, minmax_range, normalise
from xrf_sr_kedro.physics.probe import unit_probe
from xrf_sr_kedro.progress import Progress
from xrf_sr_kedro.types import ProbeIntensity
from xrf_sr_kedro.validation import positive_int

logger = logging.getLogger(__name__)

Precision = Literal["float32", "bfloat16"]

#: Defaults of the engine, shared by :func:`enhance_maps`, ``enhance_stack`` and
#: the pipeline's ``EngineSettings`` (one source each).
DEFAULT_TILE_PX = 192
DEFAULT_OVERLAP_PX = 32
DEFAULT_BATCH_SIZE = 8

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
    """An eval-mode copy of ``model`` on ``device`` (the caller's model is untouched),
    its output conv folded through the last pixel shuffle (:mod:`~xrf_sr_kedro.models.inference_form`)."""
    net = inference_form(model).to(device).eval()
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


# ---------------------------------------------------------------------------- engine
def enhance_maps(
    model: nn.Module,
    maps: np.ndarray,
    scale: int,
    tile_px: int = DEFAULT_TILE_PX,
    overlap_px: int = DEFAULT_OVERLAP_PX,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
    min_size_px: int | None = None,
    *,
    precision: Precision | Literal["auto"] = "auto",
    channels_last: bool = True,
    num_threads: int | None = None,
    workers: int | None = None,
    conserve_total_signal: bool = True,
    probe_intensity: np.ndarray | ProbeIntensity | None = None,
    fast_axis: Literal["x", "y"] = "x",
    mode: Literal["fly", "step"] = "fly",
    progress: bool | None = None,
    self_ensemble: bool = DEFAULT_SELF_ENSEMBLE,
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
        Most tiles (of several maps) per forward pass; on a GPU a pass holds at most
        ``batch_size * 128**2`` input pixels, on a CPU at most
        :data:`~.passes.CPU_PASS_PIXELS` (small batches are faster there).
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
        Torch intra-op threads during the call (restored afterwards); with several
        ``workers``, the threads of each (default 1).
    workers : int, optional
        Forward passes run at once, each in its own thread (:mod:`.passes`);
        default one per usable core on a CPU, 1 on a GPU.  Results do not depend
        on it.
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
        Report progress over maps (``None`` or ``True``: a bar on a terminal,
        periodic log lines otherwise; ``False``: nothing).
    self_ensemble : bool
        Average the network over the flips along x and y (4 forward passes, see the
        module notes); False runs it once.

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
    scale = positive_int("scale", scale)
    tile_px = positive_int("tile_px", tile_px)
    overlap_px = positive_int("overlap_px", overlap_px, minimum=0)
    batch_size = positive_int("batch_size", batch_size)
    if overlap_px >= tile_px:
        raise ValueError(f"overlap_px must be below tile_px, got {overlap_px} >= {tile_px}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    probe = None if probe_intensity is None else unit_probe(probe_intensity)
    if min_size_px is None:
        min_size_px = default_min_size_px(model)
    min_size_px = positive_int("min_size_px", min_size_px)
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

    tiling = make_tiling(h, w, scale, tile_px, overlap_px, min_size_px)
    dev = torch.device(device if device is not None else default_device())
    per_pass = tiles_per_pass(batch_size, tiling.size_y * tiling.size_x, dev.type)
    n_tiles = len(tiling.boxes)
    jobs = [(i, j) for i in range(n_samples) for j in range(n_tiles)]
    chunks = [jobs[k:k + per_pass] for k in range(0, len(jobs), per_pass)]
    if workers is None:
        workers = default_workers(dev.type, len(chunks))
    workers = positive_int("workers", workers)
    logger.info(
        "enhancing %d map(s) of %d x %d px x%d: %d tile(s) of %d x %d each, %d tile(s) a pass, "
        "%d pass(es) at once%s", n_samples * c, h, w, scale, n_tiles, tiling.size_y,
        tiling.size_x, per_pass, workers, ", flip self-ensemble (x4)" if self_ensemble else "",
    )
    precision = resolve_precision(precision, dev)
    net = _prepare_model(model, dev, channels_last)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    weights = (
        None if tiling.weights is None
        else [torch.from_numpy(wt).to(dev) for wt in tiling.weights]
    )

    remaining = np.full(n_samples, n_tiles, dtype=np.int64)
    conservation = np.ones(n_samples * c, dtype=np.float64).reshape(n_samples, c)
    n_clipped = np.zeros((n_samples, c), dtype=np.int64)
    if tiling.weights is not None:
        out.fill(0.0)

    sy, sx = tiling.size_y, tiling.size_x

    def run_pass(chunk: list[tuple[int, int]]) -> np.ndarray:
        """One forward pass over the tiles of ``chunk`` (any thread: modes are per thread)."""
        batch = np.stack([
            x_norm[i, :, tiling.boxes[j][0]:tiling.boxes[j][0] + sy,
                   tiling.boxes[j][1]:tiling.boxes[j][1] + sx]
            for i, j in chunk
        ])
        with torch.inference_mode():
            xb = torch.from_numpy(batch).to(dev).contiguous(memory_format=memory_format)
            with _autocast(dev, precision):
                yb = ensemble_forward(net, xb, self_ensemble)
            expected = (len(chunk), c, sy * scale, sx * scale)
            if tuple(yb.shape) != expected:
                raise ValueError(
                    f"model output shape {tuple(yb.shape)} does not match scale={scale}: "
                    f"expected {expected} for input {tuple(xb.shape)}"
                )
            yb = yb.float()
            if weights is not None:
                yb = yb * torch.stack([weights[j] for _, j in chunk])[:, None]
            return yb.cpu().numpy()

    with (
        # several workers: one torch thread each (unless num_threads says otherwise)
        _num_threads(num_threads if workers == 1 else (num_threads or 1)),
        Progress(n_samples, "enhancing maps", unit="map",
                 enabled=True if progress is None else bool(progress)) as bar,
    ):
        for chunk, yb in zip(chunks, ordered_map(run_pass, chunks, workers)):
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
