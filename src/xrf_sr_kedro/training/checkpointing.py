"""Checkpoints of a training run: what is saved each epoch, and how a run resumes.

A checkpoint holds the weights, optimiser, schedule and RNG states, the per-epoch
history and the provenance (training data, parent checkpoint); the file format is
:mod:`xrf_sr_kedro.io.checkpoint`.  :func:`resume_or_initialise` restores a run from
``last.pt`` (bit-identical continuation on CPU) or initialises fine-tuning from a
pretrained checkpoint.  :class:`CheckpointSettings` is where a pipeline's runs go.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xrf_sr_kedro.io.checkpoint import (
    FORMAT_VERSION,
    config_from_checkpoint,
    describe_config_difference,
    load_checkpoint,
    strip_module_prefix,
)
from xrf_sr_kedro.models.dual_branch import DualBranchConfig, preset_name

logger = logging.getLogger(__name__)

__all__ = [
    "BEST_NAME",
    "HISTORY_KEYS",
    "LAST_NAME",
    "CheckpointSettings",
    "ResumeState",
    "checkpoint_label",
    "kept_checkpoint",
    "make_checkpoint",
    "resume_or_initialise",
]

LAST_NAME = "last.pt"
BEST_NAME = "best.pt"

#: Per-epoch entries of ``checkpoint["history"]`` (NaN where not validated);
#: ``"lr"`` is the learning rate.
HISTORY_KEYS = (
    "epoch",
    "train_l1",
    "lr",
    "val_psnr",
    "val_ssim",
    "bicubic_psnr",
    "bicubic_ssim",
    "epoch_time_s",
)


@dataclass(frozen=True)
class CheckpointSettings:
    """Where per-epoch checkpoints go, whether to resume, and which one a stage returns.

    ``keep="best"``: the stage returns the weights of the epoch with the best
    validation PSNR (``best.pt``; the checkpoint choice on the validation set) with
    the whole run's history; ``"last"``: the final epoch's weights.
    """

    directory: str = "data/06_models/pretraining_run"
    resume: bool = False
    keep: str = "last"

    def __post_init__(self) -> None:
        if self.keep not in ("best", "last"):
            raise ValueError(f"CheckpointSettings.keep must be 'best' or 'last', got {self.keep!r}")


@dataclass
class ResumeState:
    """Where a run starts: its history so far, the first epoch to train and its parent.

    ``finished`` is the saved checkpoint when it already has every epoch.
    """

    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    start_epoch: int = 0
    parent: str | None = None
    finished: dict[str, Any] | None = None


def _to_cpu(obj: Any) -> Any:
    """A detached CPU copy of every tensor in a nested structure."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
         n["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_label(checkpoint: dict[str, Any]) -> str:
    """How a checkpoint is named as the ``parent`` of a fine-tuning run.

    Its ``"path"`` entry when the loader added one, else a description.
    """
    if checkpoint.get("path"):
        return str(checkpoint["path"])
    return (
        f"preset={checkpoint.get('preset')}, epoch={checkpoint.get('epoch')}, "
        f"training_data={checkpoint.get('training_data', '')!r}"
    )


def resume_or_initialise(
    model: nn.Module,
    config: DualBranchConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    cfg: Any,
    last_path: Path,
    resume: bool,
    init_checkpoint: dict[str, Any] | None,
) -> ResumeState:
    """Restore a run from ``last_path`` (``resume``), or load ``init_checkpoint``'s weights.

    Resuming restores weights, optimiser, schedule, scaler, history and RNG states
    (``resume`` takes precedence over ``init_checkpoint``); a missing ``last_path``
    starts afresh with a warning.  ValueError when a checkpoint's network config
    differs from ``config``.
    """
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    start_epoch = 0
    parent: str | None = None
    if resume and last_path.is_file():
        ckpt = load_checkpoint(last_path)
        trained = config_from_checkpoint(ckpt)
        if trained != config:
            raise ValueError(
                f"cannot resume from {last_path}: " + describe_config_difference(trained, config)
            )
        _warn_train_config_change(ckpt.get("train_config", {}), cfg, last_path)
        model.load_state_dict(strip_module_prefix(ckpt["model_state"]))
        optimizer.load_state_dict(ckpt["optimizer_state"])
        scheduler.load_state_dict(ckpt["scheduler_state"])
        if scaler is not None and ckpt.get("scaler_state"):
            scaler.load_state_dict(ckpt["scaler_state"])
        history = {k: list(ckpt["history"].get(k, [])) for k in HISTORY_KEYS}
        start_epoch = int(ckpt["epoch"])
        parent = ckpt.get("parent")
        _set_rng_state(ckpt["rng_state"])
        if init_checkpoint is not None:
            logger.info("resuming from %s; init_checkpoint is ignored", last_path)
        logger.info("resumed from %s after %d completed epochs", last_path, start_epoch)
        if start_epoch >= cfg.epochs:
            logger.info(
                "%s already has %d >= %d epochs; nothing to train",
                last_path, start_epoch, cfg.epochs,
            )
            return ResumeState(history, start_epoch, parent, finished=ckpt)
    else:
        if resume:
            logger.warning("resume requested but %s does not exist; starting afresh", last_path)
        if init_checkpoint is not None:
            trained = config_from_checkpoint(init_checkpoint)
            if trained != config:
                raise ValueError(
                    "init_checkpoint does not fit the model: "
                    + describe_config_difference(trained, config)
                )
            model.load_state_dict(strip_module_prefix(init_checkpoint["model_state"]))
            parent = checkpoint_label(init_checkpoint)
            logger.info("fine-tuning from %s at learning rate %g", parent, cfg.learning_rate)

    return ResumeState(history, start_epoch, parent)


def make_checkpoint(
    model: nn.Module,
    config: DualBranchConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    completed: int,
    history: dict[str, list[float]],
    cfg: Any,
    training_data: str,
    parent: str | None,
    best_psnr: float,
) -> dict[str, Any]:
    latest = {k: v[-1] for k, v in history.items() if k != "epoch"}
    latest["best_val_psnr"] = best_psnr if math.isfinite(best_psnr) else math.nan
    return {
        "format_version": FORMAT_VERSION,
        "config": asdict(config),
        "preset": preset_name(config),
        "model_state": _to_cpu(model.state_dict()),
        "optimizer_state": _to_cpu(optimizer.state_dict()),
        "scheduler_state": scheduler.state_dict(),
        "scaler_state": None if scaler is None else scaler.state_dict(),
        "epoch": completed,
        "metrics": latest,
        "history": {k: list(v) for k, v in history.items()},
        "train_config": asdict(cfg),
        "rng_state": _rng_state(),
        "training_data": str(training_data),
        "parent": parent,
    }


def _warn_train_config_change(saved: dict[str, Any], cfg: Any, path: Path) -> None:
    changed = [
        f"{f.name}: {saved[f.name]!r} -> {getattr(cfg, f.name)!r}"
        for f in fields(cfg)
        if f.name in saved and f.name != "epochs"
        and _as_tuple(saved[f.name]) != _as_tuple(getattr(cfg, f.name))
    ]
    if changed:
        logger.warning(
            "resuming %s with a changed training config (%s): the result will differ "
            "from an uninterrupted run", path, "; ".join(changed),
        )


def _as_tuple(value: Any) -> Any:
    """Lists (as a config comes back from a checkpoint) compared as tuples."""
    return tuple(value) if isinstance(value, list) else value


def kept_checkpoint(final: dict[str, Any], directory: str | Path, keep: str) -> dict[str, Any]:
    """The checkpoint a stage returns: ``final`` or the run's ``best.pt``.

    With ``keep="best"`` and a ``best.pt`` in ``directory`` written by this run (its
    history is a prefix of ``final``'s), the best epoch's weights with ``final``'s
    whole history and ``"selected_epoch"`` set; otherwise ``final`` (logged).
    """
    if keep != "best":
        return final
    path = Path(directory) / BEST_NAME
    if not path.is_file():
        logger.warning("no %s (no validation set?): keeping the last epoch", path)
        return final
    best = load_checkpoint(path)
    n = len(best["history"]["epoch"])
    if any(list(final["history"][k][:n]) != list(best["history"][k]) for k in ("epoch", "train_l1")):
        logger.warning("%s is not from this run: keeping the last epoch", path)
        return final
    logger.info("keeping epoch %d of %d (best validation PSNR %.2f dB)",
                best["epoch"], final["epoch"], best["history"]["val_psnr"][-1])
    return {**best, "history": final["history"], "selected_epoch": int(best["epoch"])}
