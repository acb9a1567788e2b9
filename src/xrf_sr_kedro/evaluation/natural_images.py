"""The networks on natural images they never saw, against bicubic upsampling.

Issue 13's generality check: held-out natural images, degraded by the project's
fly-scan model at the pretraining dose (``pretraining_validation_pairs``), scored
the way pretraining scores its ``natural_val`` set (PSNR / SSIM per image, data
range 1, averaged).  Run in the evaluation so that a run which uses the shipped
pretrained network (no pretraining) still reports it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
from xrf_sr_kedro.training.loop import evaluate
from xrf_sr_kedro.types import PatchPairs

__all__ = ["score_on_natural_images"]


def score_on_natural_images(
    checkpoints: dict[str, dict[str, Any]], pairs: PatchPairs
) -> tuple[pd.DataFrame, dict[str, list[dict[str, float]]]]:
    """Each network's PSNR / SSIM on ``pairs`` and its gain over bicubic.

    Parameters
    ----------
    checkpoints : dict of str to checkpoint dict
        Name (``pretrained``, ``fine_tuned``) -> checkpoint.
    pairs : PatchPairs
        Held-out natural-image pairs.

    Returns
    -------
    table : DataFrame
        One row per network: ``network``, ``network_psnr_db``, ``bicubic_psnr_db``,
        ``gain_db``, ``network_ssim``, ``bicubic_ssim``, ``n_pairs``, ``checkpoint``.
    metrics : dict
        MLflow history entries ``<network>_psnr_db``, ``<network>_gain_db`` (step 0).
    """
    rows = []
    for name, checkpoint in checkpoints.items():
        scores = evaluate(model_from_checkpoint(checkpoint), pairs, device="cpu")
        rows.append({
            "network": name,
            "network_psnr_db": scores["val_psnr"],
            "bicubic_psnr_db": scores["bicubic_psnr"],
            "gain_db": scores["val_psnr"] - scores["bicubic_psnr"],
            "network_ssim": scores["val_ssim"],
            "bicubic_ssim": scores["bicubic_ssim"],
            "n_pairs": len(pairs),
            "checkpoint": str(checkpoint.get("path", "")),
        })
    table = pd.DataFrame(rows)
    metrics = {f"{row['network']}_{key}": [{"value": float(row[column]), "step": 0}]
               for row in rows for key, column in (("psnr_db", "network_psnr_db"), ("gain_db", "gain_db"))}
    return table, metrics
