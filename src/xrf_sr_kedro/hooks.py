"""Project hooks: MLflow experiment per pipeline family and readable run names.

kedro-mlflow starts one MLflow run per ``kedro run``.  This hook runs just before
it (``tryfirst``) and points kedro-mlflow at an experiment named after the pipeline
family (``xrf-sr/training`` for pretraining and fine-tuning, ``xrf-sr/<pipeline>``
otherwise) and gives the run a name that says what ran, e.g.
``pretraining | small | div2k-embedded``.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

FAMILIES = {
    "pretraining": "training",
    "fine_tuning": "training",
}


def experiment_for(pipeline_names: list[str]) -> str:
    """MLflow experiment name for a run of ``pipeline_names``."""
    families = sorted({FAMILIES.get(name, name) for name in pipeline_names})
    if len(families) != 1 or families[0] == "__default__":
        return "xrf-sr/full-run"
    return f"xrf-sr/{families[0]}"


class MlflowExperimentHook:
    """Choose the MLflow experiment and run name before kedro-mlflow starts the run."""

    def __init__(self) -> None:
        self._context = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        config = getattr(self._context, "mlflow", None)
        if config is None:  # kedro-mlflow not active (e.g. disabled in settings)
            return
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
        names = [n or "__default__" for n in names]
        params = self._context.params
        config.tracking.experiment.name = experiment_for(names)
        config._set_experiment()
        if config.tracking.run.name is None:
            config.tracking.run.name = run_name(names, params)
        logger.info(
            "MLflow: experiment '%s', run '%s' (tracking URI %s)",
            config.tracking.experiment.name,
            config.tracking.run.name,
            config.server.mlflow_tracking_uri,
        )


def run_name(pipeline_names: list[str], params: dict[str, Any]) -> str:
    """A run name that says what ran: pipelines, model preset and training images,
    e.g. ``pretraining | small | skimage-bundled``."""

    def get(*keys: str) -> Any:
        node: Any = params
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    parts = ["+".join(pipeline_names)]
    for value in (get("pretraining", "model", "preset"), get("simulation", "training_images", "source")):
        if value:
            parts.append(str(value))
    return " | ".join(parts)
