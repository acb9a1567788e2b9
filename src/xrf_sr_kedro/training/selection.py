"""Which data fine-tune the network, and which network the 3-D chain uses.

Both choices are made on simulated data only: the fine-tuning set is either the
paper's (coarse, fine) scan pairs or the application-scale pairs, and the network
is chosen by its PSNR on the held-out validation region
(:func:`xrf_sr_kedro.physics.application_pairs.validation_region_pairs`), never on
the evaluation truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from torch import nn

from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
from xrf_sr_kedro.training.loop import evaluate
from xrf_sr_kedro.types import PatchPairs

logger = logging.getLogger(__name__)

__all__ = ["FineTuningData", "fine_tuning_data", "keep_if_better", "select_checkpoint"]

#: ``scan_pairs``: the paper's (200 nm, 50 nm) scans; ``application_pairs``: the
#: 30 nm -> 7.5 nm pairs of pretraining (doses over two decades); ``dose_matched_pairs``:
#: 30 nm -> 7.5 nm packing pairs at the measured data's own dose
#: (:mod:`xrf_sr_kedro.physics.dose_matched`).
FineTuningData = Literal["scan_pairs", "application_pairs", "dose_matched_pairs"]


def fine_tuning_data(
    data: FineTuningData,
    scan_pairs: PatchPairs,
    scan_validation_pairs: PatchPairs,
    application_pairs: PatchPairs | Callable[[], PatchPairs],
    validation_region_pairs: PatchPairs,
    dose_matched_pairs: PatchPairs | Callable[[], PatchPairs] | None = None,
) -> tuple[PatchPairs, PatchPairs]:
    """The (training, validation) pairs of fine-tuning for the choice ``data``.

    ``scan_pairs`` validates on the held-out scan frames, ``application_pairs`` and
    ``dose_matched_pairs`` on the validation region.  ``application_pairs`` and
    ``dose_matched_pairs`` may be functions that make them: each is called only when
    it is chosen.
    """
    if data == "scan_pairs":
        return scan_pairs, scan_validation_pairs
    if data == "application_pairs":
        return _made(application_pairs), validation_region_pairs
    if data == "dose_matched_pairs" and dose_matched_pairs is not None:
        return _made(dose_matched_pairs), validation_region_pairs
    raise ValueError(
        "fine_tuning.data must be 'scan_pairs', 'application_pairs' or 'dose_matched_pairs' "
        f"(with its pairs), got {data!r}"
    )


def _made(pairs: PatchPairs | Callable[[], PatchPairs]) -> PatchPairs:
    return pairs() if callable(pairs) else pairs


def select_checkpoint(
    candidates: dict[str, dict[str, Any]], validation_pairs: PatchPairs
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """The candidate with the highest mean PSNR (dB) on ``validation_pairs``.

    Parameters
    ----------
    candidates : dict of str to checkpoint dict
        e.g. ``{"pretrained": ..., "fine_tuned": ...}``; ties go to the first.
    validation_pairs : PatchPairs
        The simulated validation region (never the evaluation truth).

    Returns
    -------
    checkpoint : dict
        The chosen checkpoint, with ``"selection"``: the name, every candidate's
        PSNR and the validation set's description.
    scores : dict of str to list of {"value", "step"}
        MLflow metric history (one entry, step 0): ``<name>_psnr`` (dB) for every
        candidate, ``bicubic_psnr`` and ``selected_index`` (position of the chosen
        one in ``candidates``).
    """
    if not candidates:
        raise ValueError("candidates must name at least one checkpoint")
    scores: dict[str, float] = {}
    for name, checkpoint in candidates.items():
        result = evaluate(model_from_checkpoint(checkpoint), validation_pairs, device="cpu")
        scores[f"{name}_psnr"] = result["val_psnr"]
        scores["bicubic_psnr"] = result["bicubic_psnr"]
    names = list(candidates)
    best = max(names, key=lambda n: (scores[f"{n}_psnr"], -names.index(n)))
    scores["selected_index"] = float(names.index(best))
    logger.info("validation region: %s; using %s",
                ", ".join(f"{k} {v:.2f} dB" for k, v in scores.items() if k.endswith("psnr")), best)
    chosen = dict(candidates[best])
    chosen["selection"] = {
        "selected": best,
        "psnr_db": {n: scores[f"{n}_psnr"] for n in names},
        "bicubic_psnr_db": scores["bicubic_psnr"],
        "validation": str(validation_pairs.metadata.get("source", "validation region")),
    }
    return chosen, {k: [{"value": float(v), "step": 0}] for k, v in scores.items()}


def keep_if_better(
    checkpoint: dict[str, Any], tuned: nn.Module, before: float, after: float, losses: list[float],
    what: str, tuned_label: str,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], bool]:
    """The keep-or-discard decision of a stage that tunes ``checkpoint`` into ``tuned``:
    keep the tuned weights only if its held-out loss ``after`` is below the base's
    ``before`` (both on data the tuning never saw).

    Returns a copy of ``checkpoint`` (with the tuned weights when kept), the MLflow
    metric histories (mean training loss per 100 steps, ``held_out_loss_base``,
    ``held_out_loss_<tuned_label>``, ``kept``) and whether it was kept; the decision is
    logged as ``held-out <what> loss``.
    """
    kept = after < before
    logger.info("held-out %s loss %.6f -> %.6f: %s the %s network",
                what, before, after, "keeping" if kept else "discarding", tuned_label)
    out = dict(checkpoint)
    if kept:
        out["model_state"] = {k: v.detach().clone().contiguous() for k, v in tuned.state_dict().items()}
    metrics: dict[str, list[dict[str, float]]] = {
        "train_loss": [{"value": float(np.mean(losses[i:i + 100])), "step": i + 100}
                       for i in range(0, len(losses), 100)],
        "held_out_loss_base": [{"value": before, "step": 0}],
        f"held_out_loss_{tuned_label}": [{"value": after, "step": 0}],
        "kept": [{"value": float(kept), "step": 0}],
    }
    return out, metrics, kept
