"""Enhancement nodes: 4x enhancement of measured maps and its data-consistency check."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from xrf_sr_kedro.inference.engine import data_consistency, enhance_stack
from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
from xrf_sr_kedro.metrics.plots import plot_before_after
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)


@validated
class EngineParams:
    """Tiling, batching and precision of the inference engine.

    ``elements`` selects element lines (``None`` enhances all of them).
    ``precision: auto`` runs bf16 autocast only on hardware with native bf16
    (there it roughly halves CPU time at ~0.2 % relative RMS cost,
    ``benchmarks/enhancement.py`` prints it for a checkpoint), float32 elsewhere;
    the total signal is conserved exactly either way.
    """

    tile_px: int = 192
    overlap_px: int = 32
    batch_size: int = 8
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    fast_axis: Literal["x", "y"] = "x"
    elements: list[str] | None = None


@validated
class ConsistencyParams:
    """How the enhanced maps are degraded again for the consistency check."""

    fast_axis: Literal["x", "y"] = "x"
    mode: Literal["fly", "step"] = "fly"
    n_example_maps: int = 3


def enhance(
    stack: XRFStack,
    checkpoint: dict[str, Any],
    probe_intensity: ProbeIntensity,
    engine: EngineParams,
) -> XRFStack:
    """Enhance every map of ``stack`` with the network in ``checkpoint``.

    The probe lets the engine conserve the total signal exactly: the enhanced map,
    fly-scanned again with this probe, sums to the measured map.
    """
    if engine.elements:
        stack = stack.select_elements(engine.elements)
    model = model_from_checkpoint(checkpoint)
    scale = model.config.scale
    return enhance_stack(
        model,
        stack,
        checkpoint_info=checkpoint,
        tile_px=engine.tile_px,
        overlap_px=engine.overlap_px,
        batch_size=engine.batch_size,
        precision=engine.precision,
        probe_intensity=resample_probe(probe_intensity, stack.pixel_size_nm / scale),
        fast_axis=engine.fast_axis,
    )


def check_consistency(
    measured: XRFStack,
    enhanced: XRFStack,
    probe_intensity: ProbeIntensity,
    consistency: ConsistencyParams,
) -> tuple[dict[str, list[dict[str, float]]], dict[str, Figure]]:
    """Degrade the enhanced maps again and compare them with the measured ones.

    Returns MLflow metrics (relative L2 residual, total-signal error) and before /
    after / residual figures for a few maps.
    """
    if enhanced.elements != measured.elements:
        measured = measured.select_elements(list(enhanced.elements))
    step = round(measured.pixel_size_nm / enhanced.pixel_size_nm)
    probe = resample_probe(probe_intensity, enhanced.pixel_size_nm)
    report = data_consistency(
        measured, enhanced, probe.intensity, step, fast_axis=consistency.fast_axis,
        mode=consistency.mode,
    )
    logger.info(
        "Data consistency: relative L2 residual %.3f, total-signal error %.2e",
        report["relative_l2_overall"],
        report["total_signal_error_overall"],
    )
    metrics = {
        f"consistency_{key}": [{"value": float(report[key]), "step": 0}]
        for key in ("relative_l2_overall", "total_signal_error_overall")
    }
    figures = {}
    frames = np.linspace(0, measured.n_frames - 1, min(consistency.n_example_maps, measured.n_frames))
    for e, element in enumerate(measured.elements):
        for f in frames.astype(int):
            figures[f"{element}_frame{f:03d}.png"] = plot_before_after(
                measured.data[e, f],
                enhanced.data[e, f],
                report["residual"][e, f],
                title=f"{element}, frame {f}",
                pixel_size_before_nm=measured.pixel_size_nm,
                pixel_size_after_nm=enhanced.pixel_size_nm,
                units=measured.units,
            )
    return metrics, figures
