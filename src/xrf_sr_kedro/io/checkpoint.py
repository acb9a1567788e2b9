"""Training checkpoints: one ``torch.save`` file holding weights, config and history.

A checkpoint is a plain dict (format version 1) that can be read with
``torch.load(weights_only=True)``: it contains only tensors, numbers, strings,
lists, tuples, dicts and ``None``.

Keys
----
format_version : int
    1.
config : dict
    ``dataclasses.asdict`` of the :class:`~xrf_sr_kedro.models.dual_branch.DualBranchConfig`;
    the network is rebuilt from this alone.
preset : str or None
    Name of the preset the config equals, if any.
model_state : dict
    CPU ``state_dict`` of the network (no DistributedDataParallel ``module.`` prefix).
optimizer_state, scheduler_state : dict
    Adam and learning-rate schedule state, for resuming.
scaler_state : dict or None
    Mixed-precision ``GradScaler`` state (CUDA fp16 only).
epoch : int
    Completed epochs.
metrics : dict of float
    Latest values (``train_l1``, ``val_psnr``, ``val_ssim``, ``bicubic_psnr``, ...).
history : dict of list
    One entry per completed epoch for each metric.
train_config : dict
    ``dataclasses.asdict`` of the :class:`~xrf_sr_kedro.training.loop.TrainConfig`.
rng_state : dict
    ``torch`` (ByteTensor), ``numpy`` (dict of plain lists) and ``python`` RNG states.
training_data : str
    Description of the training pairs.
parent : str or None
    The checkpoint fine-tuning started from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.models.dual_branch import DualBranchConfig, DualBranchSR

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1

#: Keys every checkpoint written by :func:`xrf_sr_kedro.training.loop.fit` has.
CHECKPOINT_KEYS = (
    "format_version",
    "config",
    "preset",
    "model_state",
    "optimizer_state",
    "scheduler_state",
    "epoch",
    "metrics",
    "history",
    "train_config",
    "rng_state",
    "training_data",
    "parent",
)

#: Keys without which a file cannot be turned back into a network.
REQUIRED_KEYS = ("format_version", "config", "model_state")


def save_checkpoint(path: str | os.PathLike, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a crash leaves the old file).

    Parameters
    ----------
    path : str or path-like
        Destination file (parent directories are created).
    checkpoint : dict
        At least the keys in :data:`REQUIRED_KEYS`.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a dict, got {type(checkpoint).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint to save to {path} lacks required keys {missing}")
    with atomic_path(path) as tmp:
        # "path" is where a checkpoint was loaded from, not part of its content
        torch.save({k: v for k, v in checkpoint.items() if k != "path"}, tmp)
    logger.debug("saved checkpoint %s (epoch %s)", path, checkpoint.get("epoch"))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    The returned dict also holds ``"path"``, the file it was read from.

    Uses ``torch.load(weights_only=True)``: no arbitrary code is unpickled.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a checkpoint (unreadable, not a dict, missing keys, or a
        newer format version); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign files
        raise ValueError(
            f"{path} is not a readable xrf_sr_kedro checkpoint: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{path} is not an xrf_sr_kedro checkpoint: it holds a "
            f"{type(checkpoint).__name__}, not a dict"
        )
    missing = [k for k in REQUIRED_KEYS if k not in checkpoint]
    if missing:
        raise ValueError(
            f"{path} is not an xrf_sr_kedro checkpoint: missing keys {missing} "
            f"(has {sorted(checkpoint)})"
        )
    version = checkpoint["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format_version {version!r}; this code reads "
            f"versions up to {FORMAT_VERSION}"
        )
    checkpoint["path"] = str(path)  # provenance for enhanced files and fine-tuning runs
    return checkpoint


def config_from_checkpoint(checkpoint: dict[str, Any]) -> DualBranchConfig:
    """The network configuration a checkpoint was trained with."""
    raw = checkpoint.get("config")
    if not isinstance(raw, dict):
        raise ValueError(f"checkpoint 'config' must be a dict, got {type(raw).__name__}")
    known = {f.name for f in fields(DualBranchConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"checkpoint config has unknown fields {unknown}; known: {sorted(known)}")
    return DualBranchConfig(**raw)


def describe_config_difference(trained: DualBranchConfig, requested: DualBranchConfig) -> str:
    """``"checkpoint was trained with a=1, b=2; requested a=3, b=4"`` for differing fields."""
    names = [f.name for f in fields(DualBranchConfig)
             if getattr(trained, f.name) != getattr(requested, f.name)]
    had = ", ".join(f"{n}={getattr(trained, n)!r}" for n in names)
    want = ", ".join(f"{n}={getattr(requested, n)!r}" for n in names)
    return f"checkpoint was trained with {had}; requested {want}"


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a DistributedDataParallel ``module.`` prefix from state-dict keys."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def model_from_checkpoint(
    checkpoint: dict[str, Any], expected: DualBranchConfig | None = None
) -> DualBranchSR:
    """Rebuild the network stored in ``checkpoint`` (on the CPU, in eval mode).

    Parameters
    ----------
    checkpoint : dict
        As returned by :func:`load_checkpoint`.
    expected : DualBranchConfig, optional
        The architecture the caller wants; a checkpoint of another architecture
        raises.

    Raises
    ------
    ValueError
        If the stored config differs from ``expected``; the message lists each
        differing field, e.g. ``checkpoint was trained with channels=64,
        n_groups=10; requested channels=8, n_groups=1``.
    """
    config = config_from_checkpoint(checkpoint)
    if expected is not None and expected != config:
        raise ValueError(describe_config_difference(config, expected))
    model = DualBranchSR(config)
    model.load_state_dict(strip_module_prefix(checkpoint["model_state"]))
    model.eval()
    return model


def config_as_dict(config: DualBranchConfig) -> dict[str, Any]:
    """``dataclasses.asdict`` of ``config`` (the form stored under ``"config"``)."""
    return asdict(config)
