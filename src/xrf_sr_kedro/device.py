"""The one place that picks a torch device (tomography, inference and training share it)."""

from __future__ import annotations

import torch

__all__ = ["default_device", "resolve_device"]


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible to torch, otherwise ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device`, or :func:`default_device` when ``None``."""
    return default_device() if device is None else torch.device(device)
