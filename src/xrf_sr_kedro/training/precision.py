"""What precision and memory layout training runs in on this hardware.

The rule is the inference engine's ``precision: auto``
(:func:`xrf_sr_kedro.inference.precision.resolve_precision`): bf16 autocast only
where the hardware computes bf16 natively, float32 elsewhere (emulated bf16 is
several times slower).  On a CPU the network trains channels-last.
"""

from __future__ import annotations

import torch

from xrf_sr_kedro.inference.precision import resolve_precision

__all__ = ["training_autocast", "training_memory_format"]


def training_autocast(amp: bool, dev: torch.device) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, needs a gradient scaler)`` for training on ``dev``.

    The choice the inference engine's ``precision: auto`` makes
    (:func:`~xrf_sr_kedro.inference.precision.resolve_precision`): bf16 where the
    hardware computes it natively; on a GPU without bf16, fp16 with a gradient
    scaler; float32 (no autocast) otherwise or with ``amp=False``.  On a CPU with
    native bf16 the small preset trains about 1.6x faster than in float32 channels-last
    (``benchmarks/training.py``).
    """
    if not amp:
        return None, False
    if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16, True
    if resolve_precision("auto", dev) == "bfloat16":
        return torch.bfloat16, False
    return None, False


def training_memory_format(dev: torch.device) -> torch.memory_format:
    """Channels-last on CPU: oneDNN's NHWC convolutions train the small preset about
    1.1x (AVX2) to 1.5x (AVX-512) faster than NCHW, with the same float32 arithmetic."""
    return torch.channels_last if dev.type == "cpu" else torch.contiguous_format
