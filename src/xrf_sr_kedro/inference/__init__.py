"""Tiled, count-conserving enhancement of XRF maps (framework-free).

``tiling`` (geometry), ``engine`` (batched enhancement of map arrays), ``stack``
(XRFStack + checkpoint provenance, the pipelines' entry point) and ``consistency``
(enhanced maps degraded again vs the measurement).
"""

from xrf_sr_kedro.device import default_device
from xrf_sr_kedro.inference.consistency import consistency_report, data_consistency
from xrf_sr_kedro.inference.engine import (
    EnhanceResult,
    default_min_size_px,
    enhance_maps,
    model_in_channels,
)
from xrf_sr_kedro.inference.stack import EngineSettings, enhance_stack, enhance_with_checkpoint
from xrf_sr_kedro.inference.tiling import tile_layout

__all__ = [
    "EngineSettings",
    "EnhanceResult",
    "consistency_report",
    "data_consistency",
    "default_device",
    "default_min_size_px",
    "enhance_maps",
    "enhance_stack",
    "enhance_with_checkpoint",
    "model_in_channels",
    "tile_layout",
]
