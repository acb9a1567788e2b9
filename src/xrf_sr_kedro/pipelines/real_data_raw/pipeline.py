"""``real_data_raw``: centre and align the measured ``raw_xrf``, then reconstruct the raw
volume from the prepared stack (no network needed), then the Markdown report
``real_data_report`` (centre, alignment, I0, dose guard, units).

Built by :func:`xrf_sr_kedro.pipeline_registry.prepared_chain`.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from xrf_sr_kedro.pipeline_registry import prepared_chain


def create_pipeline(**kwargs) -> Pipeline:
    return prepared_chain(raw_only=True)
