"""Project pipelines: one per stage, plus ``__default__`` chaining them in order."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

STAGES = ("simulation", "pretraining", "fine_tuning", "enhancement", "tomography", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the six stage pipelines and ``__default__`` (all of them).

    Kedro 1.7 imports only the pipelines a run asks for, so ``__default__`` is the
    sum of the stages that were loaded (all six when it is the one requested).
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in STAGES if name in pipelines), Pipeline([])
    )
    return pipelines
