"""``real_data``: centre and align the measured ``raw_xrf``, then the whole tomography chain
(raw volume, reprojections, enhancement, enhanced volume) on the prepared stack, then the
Markdown report ``real_data_report`` (centre, alignment, I0, dose guard, consistency, units).

Needs a trained network (``fine_tuned_model`` or ``pretrained_model``); without one use
``real_data_raw``.  Built by :func:`xrf_sr_kedro.pipeline_registry.prepared_chain`.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from xrf_sr_kedro.pipeline_registry import prepared_chain


def create_pipeline(**kwargs) -> Pipeline:
    return prepared_chain(raw_only=False)
