"""Enhancement of a whole XRFStack with provenance: the checkpoint, pixel sizes, bookkeeping.

:func:`enhance_stack` wraps :func:`~xrf_sr_kedro.inference.engine.enhance_maps` for an
:class:`~xrf_sr_kedro.types.XRFStack` and records how the maps were made in the
result's metadata; :func:`enhance_with_checkpoint` is the one call the pipelines make
(a checkpoint dict, the probe on the measured grid and :class:`EngineSettings`).
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
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

__all__ = ["EngineSettings", "enhance_stack", "enhance_with_checkpoint"]


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
    """

    tile_px: int = DEFAULT_TILE_PX
    overlap_px: int = DEFAULT_OVERLAP_PX
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    fast_axis: Literal["x", "y"] = "x"
    elements: list[str] | None = None
    self_ensemble: bool = DEFAULT_SELF_ENSEMBLE  # mean over x/y flips (engine notes)


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
        return jsonable(np.asarray(a).transpose(1, 0))

    checkpoint = {k: jsonable(checkpoint_info[k]) for k in _CHECKPOINT_KEYS
                  if k in checkpoint_info}
    fine_y_nm, fine_x_nm = (v / scale for v in pixel_sizes_yx_nm(stack))
    units = fine_pixel_units(stack.units, fine_y_nm, fine_x_nm)
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
        "self_ensemble": bool(kwargs.get("self_ensemble", DEFAULT_SELF_ENSEMBLE)),
    }
    metadata = {**stack.metadata, "enhancement": enhancement}
    if "pixel_size_y_nm" in metadata or "pixel_size_x_nm" in metadata:
        metadata.update(pixel_size_y_nm=fine_y_nm, pixel_size_x_nm=fine_x_nm)
    return dataclasses.replace(
        stack,
        data=per_fine_pixel(result.data.transpose(1, 0, 2, 3), scale * scale),
        pixel_size_nm=stack.pixel_size_nm / scale,
        units=units,
        metadata=metadata,
    )
