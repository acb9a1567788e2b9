"""Project pipelines: one per stage, plus ``__default__`` chaining them in order."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline, pipeline

STAGES = ("simulation", "pretraining", "fine_tuning", "enhancement", "tomography", "evaluation")

#: Measured inputs (read-only; never a node's output) -> the simulated stack the
#: simulation pipeline writes in their place.  ``__default__`` feeds the stages the
#: simulated stacks; a stage run alone reads the measured name, which conf/base
#: points at the simulated file and conf/local at the user's data.
SIMULATED_STAND_INS = {
    "raw_xrf": "simulated_xrf",
    "fine_tuning_coarse_xrf": "simulated_fine_tuning_coarse_xrf",
    "fine_tuning_fine_xrf": "simulated_fine_tuning_fine_xrf",
    "fine_scan_coarse_xrf": "simulated_fine_scan_coarse_xrf",
    "fine_scan_fine_xrf": "simulated_fine_scan_fine_xrf",
}

#: Measured stack -> the prepared (centred, aligned) stack the ``preparation``
#: pipeline writes from it.  In the ``real_data`` pipelines the tomography reads the
#: prepared stack; run alone (and in ``__default__``) it reads ``raw_xrf`` as before.
PREPARED_STAND_INS = {"raw_xrf": "prepared_xrf"}


def prepared_chain(raw_only: bool = False) -> Pipeline:
    """Preparation, then the tomography fed the prepared stack (:data:`PREPARED_STAND_INS`).

    The ``real_data`` pipeline (``raw_only=False``: raw volume, reprojections,
    enhancement, enhanced volume) and ``real_data_raw`` (``raw_only=True``: the raw
    volume only, for when no trained network exists) are built here, from the two
    stage pipelines as registered, and end with the preparation package's report
    node (``real_data_report``); their packages only call this function.
    """
    import importlib

    def stage(name: str) -> Pipeline:
        return importlib.import_module(f"xrf_sr_kedro.pipelines.{name}").create_pipeline()

    tomo = pipeline(stage("tomography"), inputs=PREPARED_STAND_INS)
    if raw_only:
        tomo = tomo.only_nodes_with_outputs("raw_volume")
    preparation = importlib.import_module("xrf_sr_kedro.pipelines.preparation")
    return stage("preparation") + tomo + preparation.create_report_pipeline(enhanced=not raw_only)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the stage pipelines, ``__default__`` (the six stages) and ``real_data``.

    Kedro 1.7 imports only the pipelines a run asks for, so ``__default__`` is the
    sum of the stages that were loaded (all six when it is the one requested).  In
    ``__default__`` the stages after ``simulation`` read the simulated stacks
    (:data:`SIMULATED_STAND_INS`), so the run never reads or writes a user's
    measured files.  The evaluation stage includes the tomography chains it needs
    (independent split halves, the pretrained chain:
    ``tomography.pipeline.evaluation_chains``), so a tomography run on measured data
    never runs them.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "evaluation" in pipelines:  # its extra tomography chains, from the tomography factory
        from xrf_sr_kedro.pipelines.tomography.pipeline import evaluation_chains

        pipelines["evaluation"] = pipelines["evaluation"] + evaluation_chains()
    later = sum((pipelines[name] for name in STAGES[1:] if name in pipelines), Pipeline([]))
    stand_ins = {k: v for k, v in SIMULATED_STAND_INS.items() if k in later.inputs()}
    default = pipeline(later, inputs=stand_ins) if stand_ins else later
    if "simulation" in pipelines:
        default = pipelines["simulation"] + default
    pipelines["__default__"] = default
    return pipelines
