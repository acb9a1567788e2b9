"""Project pipelines: one per stage, plus ``__default__`` chaining them in order."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

STAGES = ("simulation", "pretraining", "fine_tuning", "enhancement", "tomography", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the six stage pipelines and ``__default__`` (all of them).

    Kedro 1.7 imports only the pipelines a run asks for, so ``__default__`` is the
    sum of the stages that were loaded (all six when it is the one requested).  The
    evaluation stage includes the tomography chains it needs (independent split halves,
    the pretrained chain: ``tomography.pipeline.evaluation_chains``), so a tomography run
    on measured data never runs them.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "evaluation" in pipelines:  # its extra tomography chains, from the tomography factory
        from xrf_sr_kedro.pipelines.tomography.pipeline import evaluation_chains

        pipelines["evaluation"] = pipelines["evaluation"] + evaluation_chains()
    pipelines["__default__"] = sum(
        (pipelines[name] for name in STAGES if name in pipelines), Pipeline([])
    )
    return pipelines
