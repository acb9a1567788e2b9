"""Preparation nodes: rotation centre and projection alignment of a measured stack."""

from __future__ import annotations

import logging
from typing import Literal

from matplotlib.figure import Figure

from xrf_sr_kedro.metrics.preparation_plots import preparation_figures
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.prepare import PreparationResult, prepare_stack
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)


@validated
class PreparationParams:
    """``preparation`` parameters (conf/base/parameters_preparation.yml).

    ``centre``: ``auto`` (found) or a fixed offset, px (rotation axis minus detector
    centre); ``align``: correct per-projection shifts; ``reference_element``: the
    element the centre and shifts are found on (null: the one with most counts);
    ``n_iter``: alignment iterations; ``recon_iter``: reconstruction iterations in
    each; ``tol_px``: stop when no shift changes by more than this.
    """

    centre: Literal["auto"] | float = "auto"
    align: bool = True
    reference_element: str | None = None
    n_iter: int = 10
    recon_iter: int = 20
    tol_px: float = 0.1


def prepare_projections(measured: XRFStack, preparation: PreparationParams) -> PreparationResult:
    """Find the centre, align on the reference element, find the centre again."""
    return prepare_stack(
        measured, preparation.reference_element, preparation.centre, preparation.align,
        preparation.n_iter, preparation.recon_iter, preparation.tol_px,
    )


def prepared_stack(result: PreparationResult) -> XRFStack:
    """The aligned stack (centre and shifts in its metadata), for the catalog."""
    return result.stack


def plot_preparation(result: PreparationResult) -> dict[str, Figure]:
    """Trial-centre images, shifts per angle, sinogram before/after."""
    return preparation_figures(result)
