"""Project hooks.

* :class:`MlflowExperimentHook`: one MLflow experiment per pipeline family, run names
  that say what ran, no run left open.  (The store's path, ``${project_root:}``, comes
  from ``settings.ProjectConfigLoader``.)  The SQLite store is created once under a
  file lock (:func:`create_mlflow_store`), and runs whose process was killed are
  marked ``KILLED`` (:func:`mark_stale_runs`, with :class:`MlflowRunOwnerHook`).
* :class:`MissingUpstreamHook`: a clear message when an upstream output is missing:
  the pipeline to run for the project's own outputs, the missing file, folder or
  element for the user's entries.

The measured-data guard and the error bookkeeping live in :mod:`xrf_sr_kedro.guards`.
"""

from __future__ import annotations

import logging
from typing import Any

import click
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
    """Where and under which names kedro-mlflow records a run.

    * ``after_context_created`` notes the run name configured in ``mlflow.yml``.
    * ``before_pipeline_run`` (before kedro-mlflow starts the run) picks the
      experiment of the pipeline family and, unless ``mlflow.yml`` names the run,
      a run name that says what ran.
    * ``after_pipeline_run`` / ``on_pipeline_error`` end any run still active, so a
      second ``session.run`` in the same process (a notebook) starts cleanly.
    """

    def __init__(self) -> None:
        self._context = None
        self._configured_run_name = None

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        self._context = context
        try:
            conf = context.config_loader["mlflow"]
        except Exception:  # no mlflow.yml: kedro-mlflow uses its defaults
            conf = {}
        uri = (conf.get("server") or {}).get("mlflow_tracking_uri")
        if uri:  # before kedro-mlflow opens it: two first runs must not race
            create_mlflow_store(uri)
        self._configured_run_name = ((conf.get("tracking") or {}).get("run") or {}).get("name")

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        config = getattr(self._context, "mlflow", None)
        if config is None:  # kedro-mlflow not active (e.g. disabled in settings)
            return
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
        names = [n or "__default__" for n in names]
        config.tracking.experiment.name = experiment_for(names)
        config._set_experiment()
        try:
            mark_stale_runs(config.tracking.experiment.name)
        except Exception as exc:  # bookkeeping only: never stop a run for it
            logger.debug("MLflow: could not check for stale runs: %s", exc)
        config.tracking.run.name = self._configured_run_name or run_name(
            names, self._context.params, self._context.env
        )
        logger.info(
            "MLflow: experiment '%s', run '%s' (tracking URI %s)",
            config.tracking.experiment.name,
            config.tracking.run.name,
            config.server.mlflow_tracking_uri,
        )

    @hook_impl(trylast=True)
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        _end_active_runs("FINISHED")

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        _end_active_runs("FAILED")


def create_mlflow_store(uri: str) -> None:
    """Create a SQLite MLflow store's tables once, under a file lock.

    Two first runs at once would otherwise both create the tables and one fails
    with ``duplicate column name: step``.  ``make install`` calls this too.
    Other URIs (a server, a folder) are left to MLflow.
    """
    import fcntl
    from pathlib import Path

    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        import mlflow

        mlflow.tracking.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


#: Tags that let a later run tell a live run from one whose process was killed.
OWNER_TAGS = ("xrf_sr_kedro.host", "xrf_sr_kedro.pid")


class MlflowRunOwnerHook:
    """Tag the run kedro-mlflow opened with this host and process id."""

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.set_tags(dict(zip(OWNER_TAGS, _owner(), strict=True)))


def _owner() -> tuple[str, str]:
    import os
    import socket

    return socket.gethostname(), str(os.getpid())


def mark_stale_runs(experiment_name: str) -> list[str]:
    """Mark ``KILLED`` the RUNNING runs of this host whose process is gone.

    A run killed with SIGKILL never reaches ``on_pipeline_error``; without this it
    shows as running forever in the MLflow UI.  Returns the ids of the runs marked.
    """
    import os

    import mlflow

    from xrf_sr_kedro.io.atomic import pid_alive

    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    host, _ = _owner()
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{OWNER_TAGS[0]}` = '{host}'",
    )
    stale = []
    for run in runs:
        pid = run.data.tags.get(OWNER_TAGS[1], "")
        if pid.isdigit() and not pid_alive(int(pid)) and int(pid) != os.getpid():
            client.set_terminated(run.info.run_id, status="KILLED")
            stale.append(run.info.run_id)
    if stale:
        logger.warning("MLflow: marked %d run(s) KILLED whose process had died: %s",
                       len(stale), ", ".join(stale))
    return stale


def _end_active_runs(status: str) -> None:
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status=status)


def run_name(pipeline_names: list[str], params: dict[str, Any], env: str | None = None) -> str:
    """A run name that says what ran, e.g. ``pretraining | small | skimage-bundled``.

    Training runs add the model preset and the pretraining images; a run in another
    configuration environment adds ``env=<name>``.
    """

    def get(*keys: str) -> Any:
        node: Any = params
        for key in keys:  # Kedro may already have built the typed parameter objects
            node = node.get(key) if isinstance(node, dict) else getattr(node, key, None)
        return node

    parts = ["+".join(pipeline_names)]
    if set(pipeline_names) & {"pretraining", "fine_tuning", "__default__"}:
        parts += [str(v) for v in (get("pretraining", "model", "preset"),
                                   get("simulation", "training_images", "source")) if v]
    if env and env != "local":
        parts.append(f"env={env}")
    return " | ".join(parts)


class MissingUpstreamOutputError(click.ClickException, RuntimeError):
    """A pipeline's input has not been produced yet (raised before any node runs).

    A ``click.ClickException``: the ``kedro`` command line prints ``Error: <message>``
    and exits with status 1, without a traceback.
    """


def producing_pipelines(dataset: str, stages: tuple[str, ...] | None = None) -> list[str]:
    """Names of the stage pipelines that write ``dataset`` (in run order).

    Kedro 1.7 registers only the pipelines a run asks for, so the stage pipelines
    are built here from their modules (``xrf_sr_kedro.pipelines.<stage>``).
    """
    import importlib

    from xrf_sr_kedro.pipeline_registry import STAGES

    names = []
    for stage in stages or STAGES:
        module = importlib.import_module(f"xrf_sr_kedro.pipelines.{stage}")
        if dataset in module.create_pipeline().all_outputs():
            names.append(stage)
    return names


class MissingUpstreamHook:
    """Fail fast, with the command to run, when an upstream output is missing.

    Before any node runs, every free input of the requested pipeline that is a
    catalog entry is checked with ``exists()``; parameters, and datasets that
    exist, pass.  A missing one stops the run with e.g. ``raw_xrf
    (data/01_raw/simulated_xrf_projections.h5) does not exist yet: run `kedro run
    --pipeline simulation` first``.  It runs before kedro-mlflow opens a run
    (``tryfirst``), so a refused run leaves no empty MLflow run behind.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        missing = [name for name in sorted(pipeline.inputs()) if _is_missing(name, catalog)]
        if not missing:
            return
        # in run order: the output of the earliest stage first
        found = sorted(((_producers(name, catalog), name) for name in missing),
                       key=lambda item: (_stage_rank(item[0]), item[1]))
        lines = [_missing_message(name, producers, catalog, run_params)
                 for producers, name in found]
        logger.error("%d upstream output(s) missing: %s", len(missing), ", ".join(missing))
        raise MissingUpstreamOutputError(
            "Upstream output missing:\n  " + "\n  ".join(lines)
        )


def _producers(name: str, catalog) -> list[str]:
    """Stages that write ``name``, or its simulated stand-in while it reads that file."""
    from xrf_sr_kedro.guards import is_simulated_view
    from xrf_sr_kedro.pipeline_registry import SIMULATED_STAND_INS

    producers = producing_pipelines(name)
    if not producers and is_simulated_view(name, catalog):
        producers = producing_pipelines(SIMULATED_STAND_INS[name])
    return producers


def _stage_rank(producers: list[str]) -> int:
    from xrf_sr_kedro.pipeline_registry import STAGES

    return min((STAGES.index(p) for p in producers if p in STAGES), default=len(STAGES))


def _is_missing(name: str, catalog) -> bool:
    if name == "parameters" or name.startswith("params:") or name not in catalog:
        return False  # parameters; unregistered inputs are reported by Kedro itself
    if catalog.exists(name):
        return False
    # TorchCheckpointDataset loads its fallback (e.g. the pretrained model in place of
    # the fine-tuned one) when the file itself is missing; exists() reports only the file.
    fallback = getattr(catalog.get(name), "_fallback_filepath", None)
    return not (fallback and _is_file(fallback))


def _is_file(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def _missing_message(
    name: str, producers: list[str], catalog, run_params: dict[str, Any]
) -> str:
    """One line: what is missing, and the pipeline to run only for the project's own outputs."""
    from xrf_sr_kedro.guards import dataset_path

    dataset = catalog.get(name)
    path = dataset_path(dataset)
    where = f" ({path})" if path else ""
    env = run_params.get("env")
    env_flag = f" --env {env}" if env and env != "local" else ""
    if producers:
        commands = " or ".join(f"`kedro run --pipeline {p}{env_flag}`" for p in producers)
        return f"{name}{where} does not exist yet: run {commands} first"
    reason = _missing_reason(dataset, path)
    conf = f"conf/{env or 'local'}/catalog.yml"
    return f"{name}: {reason}; check this entry in {conf} (docs/real_data.md)"


def _missing_reason(dataset, path: str | None) -> str:
    """Why an input dataset is missing, as specific as the dataset can say."""
    from pathlib import Path

    explain = getattr(dataset, "missing_reason", None)
    reason = explain() if callable(explain) else None
    if reason:
        return reason
    if path is None:
        return "not found"
    p = Path(path)
    if not p.is_absolute():
        return f"{path}: not found (relative to {Path.cwd()})"
    return f"{path}: not found" + ("" if p.parent.is_dir() else f" (no folder {p.parent})")
