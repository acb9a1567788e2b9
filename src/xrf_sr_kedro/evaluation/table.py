"""The results table: its columns, rows, Markdown form and MLflow metrics."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "PAPER_FSC_NM", "make_row", "results_table", "markdown_table", "mlflow_metrics"]

COLUMNS = [
    "experiment",
    "method",
    "dims",
    "fsc_split_half_nm",
    "fsc_vs_truth_nm",
    "fsc_vs_truth_axial_nm",
    "fsc_vs_truth_equatorial_nm",
    "finest_resolved_pair_nm",
    "psnr_db",
    "ssim",
    "paper_fsc_nm",
]

#: Headline numbers of Zheng et al., Optica 11, 146 (2024), section 4 (FSC, one-bit):
#: raw 91 projections, enhanced 270 reprojections, enhanced from 45 projections.  They
#: are twice the paper's pixel sizes (30 nm and 7.5 nm): Nyquist-saturated figures.
PAPER_FSC_NM = {"tomography_raw": 60.8, "tomography_enhanced": 14.8, "tomography_limited": 20.8}


def make_row(experiment: str, method: str, dims: str, paper_key: str = "", **values: float) -> dict[str, Any]:
    """One table row; missing metrics are NaN."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result column(s) {sorted(unknown)}; columns are {COLUMNS}")
    row: dict[str, Any] = {c: np.nan for c in COLUMNS}
    row.update(experiment=experiment, method=method, dims=dims, **values)
    row["paper_fsc_nm"] = PAPER_FSC_NM.get(paper_key, np.nan)
    return row


def results_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers to 3 significant digits, NaN as "-")."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if not np.isfinite(value) else f"{value:.3g}"
        return str(value)

    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "_", text).strip("_")


def mlflow_metrics(table: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """Every finite number of the table as an MLflow metric ``dims.method.experiment.column``."""
    metrics = {}
    numeric = [c for c in COLUMNS[3:] if c != "paper_fsc_nm"]
    for row in table.itertuples(index=False):
        key = f"{row.dims}.{row.method}.{_slug(row.experiment)}"
        for column in numeric:
            value = getattr(row, column)
            if np.isfinite(value):
                metrics[f"{key}.{column}"] = [{"value": float(value), "step": 0}]
    return metrics
