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


def _stage(name: str) -> Pipeline:
    """The package ``xrf_sr_kedro.pipelines.<name>``'s pipeline, built anew."""
    import importlib

    return importlib.import_module(f"xrf_sr_kedro.pipelines.{name}").create_pipeline()


def prepared_chain(raw_only: bool = False) -> Pipeline:
    """Preparation, then the tomography fed the prepared stack (:data:`PREPARED_STAND_INS`).

    The ``real_data`` pipeline (``raw_only=False``: raw volume, reprojections,
    enhancement, enhanced volume) and ``real_data_raw`` (``raw_only=True``: the raw
    volume only, for when no trained network exists) are built here, from the two
    stage pipelines as registered, and end with the preparation package's report
    node (``real_data_report``); their packages only call this function.
    """
    import importlib

    tomo = pipeline(_stage("tomography"), inputs=PREPARED_STAND_INS)
    if raw_only:
        tomo = tomo.only_nodes_with_outputs("raw_volume")
    preparation = importlib.import_module("xrf_sr_kedro.pipelines.preparation")
    return _stage("preparation") + tomo + preparation.create_report_pipeline(enhanced=not raw_only)


def _add_evaluation_chains(pipelines: dict[str, Pipeline]) -> dict[str, Pipeline]:
    """The evaluation stage with the tomography chains it needs (split halves, the
    pretrained chain: ``tomography.pipeline.evaluation_chains``), in place."""
    if "evaluation" in pipelines:
        from xrf_sr_kedro.pipelines.tomography.pipeline import evaluation_chains

        pipelines["evaluation"] = pipelines["evaluation"] + evaluation_chains()
    return pipelines


def stage_pipelines() -> dict[str, Pipeline]:
    """The six stage pipelines as registered (the evaluation with its tomography chains)."""
    return _add_evaluation_chains({name: _stage(name) for name in STAGES})


def simulated_run(stages: dict[str, Pipeline], pretrain: bool) -> Pipeline:
    """The whole chain on the simulated sample: ``full`` (``pretrain=True``) or ``__default__``.

    The stages after ``simulation`` read the simulated stacks
    (:data:`SIMULATED_STAND_INS`), so the run never reads or writes a user's
    measured files.  Without ``pretrain`` the pretraining node is replaced by
    ``use_shipped_pretrained_network`` (the network shipped with the project becomes
    ``pretrained_model``) and the simulation keeps only the nodes whose outputs the
    later stages read: all but ``make_application_training_pairs`` (the pretraining
    set; fine-tuning makes it only when ``fine_tuning.data: application_pairs``).
    """
    from xrf_sr_kedro.pipelines.pretraining.pipeline import create_shipped_pipeline

    first = stages["pretraining"] if pretrain else create_shipped_pipeline()
    later = sum((stages[name] for name in STAGES[2:]), first)
    stand_ins = {k: v for k, v in SIMULATED_STAND_INS.items() if k in later.inputs()}
    later = pipeline(later, inputs=stand_ins)
    simulation = stages["simulation"]
    if not pretrain:
        simulation = simulation.to_outputs(*(later.inputs() & simulation.all_outputs()))
    return simulation + later


def full_chain() -> Pipeline:
    """``kedro run --pipeline full``: :func:`simulated_run` with pretraining."""
    return simulated_run(stage_pipelines(), pretrain=True)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the stage pipelines, ``__default__``, ``full`` and ``real_data``.

    ``__default__`` (``kedro run``, ``make run``) is :func:`simulated_run` with the
    shipped pretrained network; ``full`` (a package calling :func:`full_chain`)
    also pretrains.  Kedro 1.7 imports only the pipelines a run asks for; when not
    all six stages were loaded, ``__default__`` is the sum of those that were.  The
    evaluation stage includes the tomography chains it needs (independent split
    halves, the pretrained chain: ``tomography.pipeline.evaluation_chains``), so a
    tomography run on measured data never runs them.
    """
    pipelines = _add_evaluation_chains(find_pipelines(raise_errors=True))
    if all(name in pipelines for name in STAGES):
        pipelines["__default__"] = simulated_run(pipelines, pretrain=False)
    else:
        pipelines["__default__"] = sum((pipelines[n] for n in STAGES if n in pipelines), Pipeline([]))
    return pipelines
