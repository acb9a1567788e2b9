"""Tiled, count-conserving enhancement of XRF maps (framework-free)."""

from xrf_sr_kedro.inference.engine import (
    EnhanceResult,
    data_consistency,
    default_device,
    default_min_size_px,
    enhance_maps,
    enhance_stack,
    model_in_channels,
    tile_layout,
)

__all__ = [
    "EnhanceResult",
    "data_consistency",
    "default_device",
    "default_min_size_px",
    "enhance_maps",
    "enhance_stack",
    "model_in_channels",
    "tile_layout",
]
