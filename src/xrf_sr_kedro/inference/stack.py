"""Enhancement of a whole XRFStack with provenance: the checkpoint, pixel sizes, bookkeeping.

:func:`enhance_stack` wraps :func:`~xrf_sr_kedro.inference.engine.enhance_maps` for an
:class:`~xrf_sr_kedro.types.XRFStack` and records how the maps were made in the
result's metadata; :func:`enhance_with_checkpoint` is the one call the pipelines make
(a checkpoint dict, the probe on the measured grid and :class:`EngineSettings`).
:func:`enhance_or_stream` is the tomography chain's call: the same in memory below
``EngineSettings.streaming_min_pixels`` enhanced pixels, slab by slab into a scratch
stack file above it (:func:`xrf_sr_kedro.streaming.enhance_stack_streamed`), so
peak memory does not grow with the number of slices or angles.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torch import nn

from xrf_sr_kedro.inference.engine import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_OVERLAP_PX,
    DEFAULT_SELF_ENSEMBLE,
    DEFAULT_TILE_PX,
    enhance_maps,
)
from xrf_sr_kedro.device import default_device
from xrf_sr_kedro.inference.precision import resolve_precision
from xrf_sr_kedro.inference.units import (
    FINE_PIXEL_KEY,
    fine_pixel_units,
    per_fine_pixel,
    pixel_sizes_yx_nm,
)
from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
from xrf_sr_kedro.io.checks import jsonable
from xrf_sr_kedro.io.chunked import ChunkedStack
from xrf_sr_kedro.io.volume_files import OUT_OF_CORE_MIN_VOXELS
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.streaming import DEFAULT_FRAMES_PER_SLAB, Streaming, enhance_stack_streamed, streams
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

__all__ = [
    "DEFAULT_STREAMING_MIN_PIXELS",
    "EngineSettings",
    "enhance_or_stream",
    "enhance_stack",
    "enhance_with_checkpoint",
    "enhancement_metadata",
    "model_scale",
    "use_enhancement_streaming",
]

#: ``streaming: auto`` streams an enhanced stack of more pixels than this (all elements
#: and frames): 2**28, 1 GiB of float32, the size above which volumes stay out of
#: memory too (one constant, :mod:`xrf_sr_kedro.io.volume_files`).  The default run's
#: enhanced reprojections (270 x 256 x 256 per element) stay well below it.
DEFAULT_STREAMING_MIN_PIXELS = OUT_OF_CORE_MIN_VOXELS


@dataclass(frozen=True)
class EngineSettings:
    """Tiling, batching and precision of the pipelines' enhancement.

    ``elements`` selects element lines (``None`` enhances all of them).
    ``precision``: ``"auto"`` runs bf16 autocast only on hardware with native bf16
    (there 1.8x faster on CPU at 1.7e-4 relative RMS from float32 with the default
    trained network, ``benchmarks/enhancement.py --checkpoint``), float32 elsewhere
    (:mod:`xrf_sr_kedro.inference.precision`); ``"float32"`` gives bit-exact output.
    The choice is logged and recorded in the enhanced stack's metadata.  The total
    signal is conserved exactly either way.

    ``streaming`` (``auto``: above ``streaming_min_pixels`` enhanced pixels, all
    elements and frames), ``frames_per_slab``, ``streaming_dir`` and ``parallel``
    choose and shape the slab-streamed path of :func:`enhance_or_stream` (the
    tomography chain); :func:`enhance_with_checkpoint` (the 2-D maps) always works
    in memory.
    """

    tile_px: int = DEFAULT_TILE_PX
    overlap_px: int = DEFAULT_OVERLAP_PX
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    fast_axis: Literal["x", "y"] = "x"
    elements: list[str] | None = None
    self_ensemble: bool = DEFAULT_SELF_ENSEMBLE  # mean over x/y flips (engine notes)
    streaming: Streaming = "auto"
    streaming_min_pixels: int = DEFAULT_STREAMING_MIN_PIXELS
    frames_per_slab: int = DEFAULT_FRAMES_PER_SLAB
    streaming_dir: str | None = None
    parallel: dict[str, Any] | None = None


def use_enhancement_streaming(
    n_pixels: int, streaming: Streaming = "auto",
    min_pixels: int = DEFAULT_STREAMING_MIN_PIXELS,
) -> bool:
    """Whether an enhanced stack of ``n_pixels`` pixels (all maps) is streamed slab by slab.

    ``"on"`` / ``"off"`` force the choice; ``"auto"`` streams above ``min_pixels``
    (:func:`xrf_sr_kedro.streaming.streams`).
    """
    return streams(n_pixels, streaming, min_pixels, "enhancement.engine", "streaming_min_pixels")


def enhance_or_stream(
    stack: XRFStack | ChunkedStack,
    checkpoint: dict[str, Any],
    probe_intensity: ProbeIntensity,
    settings: EngineSettings,
) -> XRFStack | ChunkedStack:
    """Enhance every map of ``stack``, in memory when small and slab by slab when large.

    Parameters
    ----------
    stack : XRFStack or ChunkedStack
        Measured (or reprojected) maps, in memory or lazy.
    checkpoint, probe_intensity, settings
        As in :func:`enhance_with_checkpoint`.

    Returns
    -------
    XRFStack or ChunkedStack
        Below ``settings.streaming_min_pixels`` enhanced pixels (``streaming:
        auto``) or with ``streaming: off``, the ``XRFStack`` of
        :func:`enhance_with_checkpoint` (a lazy input is read whole first); above
        it or with ``streaming: on``, a lazy ``ChunkedStack`` marked ``scratch`` with
        the same units and metadata, written ``frames_per_slab`` frames at a time
        into ``streaming_dir`` (:func:`xrf_sr_kedro.streaming.enhance_stack_streamed`).
    """
    model = model_from_checkpoint(checkpoint)
    scale = model.config.scale
    n_elements = len(settings.elements) if settings.elements else len(stack.elements)
    rows, width = stack.shape_hw
    n_pixels = n_elements * stack.n_frames * rows * scale * width * scale
    if not use_enhancement_streaming(n_pixels, settings.streaming, settings.streaming_min_pixels):
        whole = stack.to_stack() if isinstance(stack, ChunkedStack) else stack
        return enhance_with_checkpoint(whole, checkpoint, probe_intensity, settings)
    return enhance_stack_streamed(
        model, stack, checkpoint, elements=settings.elements,
        frames_per_slab=settings.frames_per_slab, streaming_dir=settings.streaming_dir,
        parallel=settings.parallel, tile_px=settings.tile_px, overlap_px=settings.overlap_px,
        batch_size=settings.batch_size, precision=settings.precision,
        probe_intensity=resample_probe(probe_intensity, stack.pixel_size_nm / scale),
        fast_axis=settings.fast_axis, self_ensemble=settings.self_ensemble,
    )


def enhance_with_checkpoint(
    stack: XRFStack,
    checkpoint: dict[str, Any],
    probe_intensity: ProbeIntensity,
    settings: EngineSettings,
) -> XRFStack:
    """Enhance every map of ``stack`` with the network in ``checkpoint``.

    Parameters
    ----------
    stack : XRFStack
        Measured maps.
    checkpoint : dict
        A checkpoint as loaded by :mod:`xrf_sr_kedro.io.checkpoint`.
    probe_intensity : ProbeIntensity
        The probe at any pixel size; it is resampled to the enhanced pixel size
        (``stack.pixel_size_nm / scale``) so the engine conserves the total signal
        exactly: the enhanced map (counts per fine pixel) sums to the measured map,
        and so does its fly-scan through the forward model.
    settings : EngineSettings

    Returns
    -------
    XRFStack
        See :func:`enhance_stack`.
    """
    if settings.elements:
        stack = stack.select_elements(settings.elements)
    model = model_from_checkpoint(checkpoint)
    scale = model.config.scale
    return enhance_stack(
        model,
        stack,
        checkpoint_info=checkpoint,
        tile_px=settings.tile_px,
        overlap_px=settings.overlap_px,
        batch_size=settings.batch_size,
        precision=settings.precision,
        probe_intensity=resample_probe(probe_intensity, stack.pixel_size_nm / scale),
        fast_axis=settings.fast_axis,
        self_ensemble=settings.self_ensemble,
    )


#: Checkpoint keys copied into the enhanced stack's metadata (weights are not).
_CHECKPOINT_KEYS = ("path", "preset", "config", "training_data", "parent", "epoch",
                    "metrics", "train_config", "format_version")


def model_scale(model: nn.Module, checkpoint_info: dict[str, Any]) -> int:
    """The upsampling factor: the checkpoint's ``config["scale"]``, else ``model.config.scale``."""
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
    tile_px: int = DEFAULT_TILE_PX,
    overlap_px: int = DEFAULT_OVERLAP_PX,
    batch_size: int = DEFAULT_BATCH_SIZE,
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
        ``data`` of shape (n_elements, n_frames, H * scale, W * scale) in **counts per
        fine pixel** (the input's unit per measured pixel divided by ``scale**2``,
        :func:`~xrf_sr_kedro.inference.units.per_fine_pixel`), so each map sums to
        its measured map; ``units`` say so, e.g. ``"counts per fine pixel (7.5 x 7.5
        nm)"``.  ``pixel_size_nm`` (and any anisotropic ``pixel_size_y_nm`` /
        ``pixel_size_x_nm`` of the metadata) divided by the scale, same elements and
        angles, and ``metadata["enhancement"]`` holding the checkpoint, the input and
        output pixel sizes and units, ``fine_pixels_per_measured_pixel``
        (``scale**2``), the normalisation (``lo``/``hi`` per map, shape
        ``[n_elements][n_frames]``), the conservation factors and the clipping
        counts.  The input's metadata is kept under its own keys.
    """
    if not isinstance(stack, XRFStack):
        raise TypeError(f"stack must be an XRFStack, got {type(stack).__name__}")
    if not isinstance(checkpoint_info, dict):
        raise TypeError(f"checkpoint_info must be a dict, got {type(checkpoint_info).__name__}")
    scale = model_scale(model, checkpoint_info)
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

    enhancement, metadata = enhancement_metadata(
        stack, scale, checkpoint_info, result, tile_px=tile_px, overlap_px=overlap_px,
        total_pixels=result.data.size, **kwargs,
    )
    return dataclasses.replace(
        stack,
        data=per_fine_pixel(result.data.transpose(1, 0, 2, 3), scale * scale),
        pixel_size_nm=stack.pixel_size_nm / scale,
        units=enhancement["units"],
        metadata=metadata,
    )


def enhancement_metadata(
    stack: Any,
    scale: int,
    checkpoint_info: dict[str, Any],
    result: Any,
    *,
    tile_px: int,
    overlap_px: int,
    total_pixels: int,
    **kwargs: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``enhancement`` record and the enhanced stack's whole metadata.

    ``stack`` is the measured stack (an ``XRFStack`` or a lazy ``ChunkedStack``);
    ``result`` holds the engine's per-map bookkeeping (``lo``, ``hi``,
    ``conservation_scale``, ``n_clipped_negative``, engine layout ``(n_frames,
    n_elements)``) of every map; ``total_pixels`` is the number of enhanced pixels
    (for the clipped fraction); ``kwargs`` are the engine's keyword arguments
    (``precision`` already resolved, ``probe_intensity``, ...).  One source for the
    in-memory (:func:`enhance_stack`) and the streamed
    (:func:`xrf_sr_kedro.streaming.enhance_stack_streamed`) enhancement.
    """

    def per_map(a: np.ndarray) -> list:
        return jsonable(np.asarray(a).transpose(1, 0))

    checkpoint = {k: jsonable(checkpoint_info[k]) for k in _CHECKPOINT_KEYS
                  if k in checkpoint_info}
    fine_y_nm, fine_x_nm = (v / scale for v in pixel_sizes_yx_nm(stack))
    units = fine_pixel_units(stack.units, fine_y_nm, fine_x_nm)
    n_clipped = int(np.asarray(result.n_clipped_negative).sum())
    enhancement = {
        "checkpoint": checkpoint,
        "scale": scale,
        "input_pixel_size_nm": stack.pixel_size_nm,
        "output_pixel_size_nm": stack.pixel_size_nm / scale,
        "input_shape_hw": list(stack.shape_hw),
        "input_units": f"{stack.units} per measured pixel",
        "units": units,
        FINE_PIXEL_KEY: scale * scale,
        "normalisation": {
            "method": "minmax per LR map (xrf_sr_kedro.normalisation)",
            "lo": per_map(result.lo),
            "hi": per_map(result.hi),
        },
        "total_signal_conserved": bool(kwargs.get("conserve_total_signal", True)),
        "total_signal_reference": (
            "mean of the measured map" if kwargs.get("probe_intensity") is None
            else "sum of the measured map through the fly-scan forward model"
        ),
        "conservation_scale": per_map(result.conservation_scale),
        "n_clipped_negative": per_map(result.n_clipped_negative),
        "n_clipped_negative_total": n_clipped,
        "clipped_fraction": float(n_clipped / total_pixels) if total_pixels else 0.0,
        "tile_px": tile_px,
        "overlap_px": overlap_px,
        "precision": kwargs["precision"],
        "self_ensemble": bool(kwargs.get("self_ensemble", DEFAULT_SELF_ENSEMBLE)),
    }
    metadata = {**stack.metadata, "enhancement": enhancement}
    if "pixel_size_y_nm" in metadata or "pixel_size_x_nm" in metadata:
        metadata.update(pixel_size_y_nm=fine_y_nm, pixel_size_x_nm=fine_x_nm)
    return enhancement, metadata
