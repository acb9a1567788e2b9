"""Preparation of a measured projection stack: rotation centre, alignment, centre again.

The readers (:mod:`xrf_sr_kedro.io`) already normalise by I0 when a scaler is
named.  :func:`prepare_stack` then

1. finds the rotation centre on the reference element
   (:func:`.centre.find_center`), or takes a fixed one;
2. aligns the projections of the reference element by iterative reprojection
   and applies the shifts to every element (:func:`.align.align_stack`);
3. finds the centre again on the aligned data (jitter blurs the first trial
   scan) and refines the alignment from the shifts found, with that centre.

The prepared stack carries the centre (``center_offset_px``,
``center_offset_nm``, ``center_pixel_size_nm``, ``center_method``: the keys of
:func:`.centre.center_metadata`, which :func:`.recon.reconstruct_stack` reads)
and the per-angle shifts (``metadata["alignment"]["shifts_px"]``, ``(dy, dx)``
applied to each projection, px).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xrf_sr_kedro.types import XRFStack

from .align import AlignmentResult, align_stack
from .centre import CentreResult, center_metadata, find_center

logger = logging.getLogger(__name__)

__all__ = ["PreparationResult", "prepare_stack"]


@dataclass(frozen=True)
class PreparationResult:
    """What :func:`prepare_stack` found, for the report.

    Attributes
    ----------
    stack : XRFStack
        The aligned stack with the centre and the shifts in its metadata.
    centre : CentreResult or None
        The last centre search (``None`` for a fixed centre).
    first_centre : CentreResult or None
        The centre search before the alignment.
    alignment : AlignmentResult or None
        ``None`` when the alignment is off.
    center_offset_px : float
    reference_element : str
    raw_reference : ndarray, shape (n_angles, n_rows, n_det)
        The reference element as read (for the sinogram before).
    """

    stack: XRFStack
    centre: CentreResult | None
    first_centre: CentreResult | None
    alignment: AlignmentResult | None
    center_offset_px: float
    reference_element: str
    raw_reference: np.ndarray


def _centre(projections: np.ndarray, angles: np.ndarray, centre: Any) -> CentreResult | None:
    return find_center(projections, angles) if centre == "auto" else None


def prepare_stack(
    stack: XRFStack,
    reference_element: str | None = None,
    centre: str | float = "auto",
    align: bool = True,
    n_iter: int = 10,
    recon_iter: int = 20,
    tol_px: float = 0.1,
) -> PreparationResult:
    """Find the rotation centre and align a measured stack (module docstring).

    Parameters
    ----------
    stack : XRFStack
        Measured projections ``(n_elements, n_angles, H, W)`` with angles (degrees),
        I0-normalised by the reader.
    reference_element : str, optional
        Element the centre and the shifts are found on (default: the one with most
        counts).
    centre : "auto" or float
        ``"auto"`` finds it; a number is the fixed offset (rotation axis minus
        detector centre, px).
    align : bool
        Correct per-projection shifts (both axes).
    n_iter, recon_iter, tol_px
        Of :func:`.align.align_projections`.

    Returns
    -------
    PreparationResult
    """
    if stack.angles_deg is None:
        raise ValueError("cannot prepare: the stack has no rotation angles (a tomography series)")
    if centre != "auto" and not isinstance(centre, (int, float)):
        raise ValueError(
            f"parameter preparation.centre must be 'auto' or a number (px), got {centre!r}"
        )
    if reference_element is None:
        reference_element = stack.elements[int(np.argmax(stack.data.sum(axis=(1, 2, 3))))]
    if reference_element not in stack.elements:
        raise ValueError(
            f"parameter preparation.reference_element={reference_element!r} is not in the "
            f"stack; elements read: {list(stack.elements)}"
        )
    angles = stack.angles_deg
    raw_ref = stack.data[stack.elements.index(reference_element)]
    first = _centre(raw_ref, angles, centre)
    offset = float(centre) if first is None else first.offset_px
    last, result, prepared = first, None, stack
    if align:
        kw = dict(n_iter=n_iter, recon_iter=recon_iter, tol_px=tol_px)
        prepared, result = align_stack(stack, reference_element, offset, **kw)
        if first is not None:
            aligned_ref = prepared.data[prepared.elements.index(reference_element)]
            last = find_center(aligned_ref, angles)
            offset = last.offset_px
            prepared, result = align_stack(
                stack, reference_element, offset, initial_shifts_px=result.shifts_px, **kw
            )
    method = "fixed (parameter)" if last is None else last.method
    rms = None if result is None else float(np.sqrt((result.shifts_px**2).sum(axis=1).mean()))
    logger.info(
        "prepared %d projections: centre offset %+.2f px (%s)%s", stack.n_frames, offset, method,
        "" if rms is None else f", shifts {rms:.2f} px rms on {reference_element}",
    )
    md = {
        **prepared.metadata,
        **center_metadata(offset, stack.pixel_size_nm, method),
        "kind": "prepared projections (centre, alignment)",
        "preparation": {
            "reference_element": reference_element,
            "centre": centre if centre == "auto" else float(centre),
            "align": bool(align),
            "centre_estimates_px": None if last is None else dict(last.estimates_px),
        },
    }
    return PreparationResult(
        stack=replace(prepared, metadata=md), centre=last, first_centre=first, alignment=result,
        center_offset_px=offset, reference_element=reference_element, raw_reference=raw_ref,
    )
