"""Project pipelines: one per stage, plus ``__default__`` chaining them in order."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

STAGES = ("simulation", "pretraining", "fine_tuning", "enhancement", "tomography", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the six stage pipelines and ``__default__`` (all of them)."""
    pipelines = find_pipelines(raise_errors=True)
    missing = [name for name in STAGES if name not in pipelines]
    if missing:
        raise RuntimeError(f"pipelines {missing} are not defined under xrf_sr_kedro/pipelines")
    pipelines["__default__"] = sum((pipelines[name] for name in STAGES), Pipeline([]))
    return pipelines
