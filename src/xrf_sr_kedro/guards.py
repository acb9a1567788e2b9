"""Hooks that keep a run away from a user's data and say plainly what went wrong.

* :class:`MeasuredDataGuardHook`: before any node runs, refuse a run that would
  write a read-only (measured) dataset, or that would feed simulated stacks to the
  stages while ``raw_xrf`` / ``fine_tuning_*_xrf`` name the user's own files.
* :class:`ParameterKeysHook`: refuse a misspelled top-level parameter key.
* :class:`ErrorContextHook`: remember which node or dataset was at work when a run
  failed (the ``kedro run`` command line names it in its one-line error).
* :class:`NonFiniteMetricsHook`: warn when a metric about to be logged is NaN/inf.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import click
from kedro.framework.hooks import hook_impl

from xrf_sr_kedro.pipeline_registry import SIMULATED_STAND_INS, STAGES

logger = logging.getLogger(__name__)

#: What was running when the last error happened: {"node": ..., "dataset": ...}.
ERROR_CONTEXT: dict[str, str | None] = {"node": None, "dataset": None, "action": None}


class MeasuredDataRefusedError(click.ClickException, PermissionError):
    """A run refused before any node ran because it would misuse measured data."""


def dataset_path(dataset: Any) -> str | None:
    """The file or folder a catalog dataset reads (None for in-memory datasets)."""
    inner = getattr(dataset, "_dataset", None)  # MlflowArtifactDataset wraps one
    for obj in (dataset, inner):
        for attr in ("_filepath", "_path", "_folder"):
            value = getattr(obj, attr, None)
            if value:
                return str(value)
    return None


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def is_simulated_view(name: str, catalog) -> bool:
    """True if measured input ``name`` still reads the project's simulated stack."""
    simulated = SIMULATED_STAND_INS.get(name)
    if simulated is None or name not in catalog or simulated not in catalog:
        return False
    measured_ds, simulated_ds = catalog.get(name), catalog.get(simulated)
    return type(measured_ds) is type(simulated_ds) and _same_file(
        dataset_path(measured_ds), dataset_path(simulated_ds)
    )


def user_measured_inputs(catalog) -> list[str]:
    """The measured inputs that conf points at the user's own data."""
    return [n for n in SIMULATED_STAND_INS if n in catalog and not is_simulated_view(n, catalog)]


def consuming_stages(dataset: str) -> list[str]:
    """Stage pipelines (in run order) with ``dataset`` as an input."""
    import importlib

    return [s for s in STAGES
            if dataset in importlib.import_module(f"xrf_sr_kedro.pipelines.{s}")
            .create_pipeline().inputs()]


class MeasuredDataGuardHook:
    """Refuse, before any node runs, a run that would misuse measured data.

    1. A node output whose dataset is read-only (``read_only: true``, TIFF and
       PyXRF inputs, the shipped pretrained network) stops the run: measured data
       and shipped files are never a node's output.
    2. A run whose nodes read the simulated stand-ins (plain ``kedro run``) while
       the catalog points the measured name at the user's file stops with one
       line naming the dataset, its file and the stage pipelines to run instead.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        for name in sorted(pipeline.all_outputs()):
            if name in catalog and getattr(catalog.get(name), "read_only", False):
                raise MeasuredDataRefusedError(
                    f"{name} ({dataset_path(catalog.get(name))}) is read-only (measured data, "
                    f"or a file shipped with the project) but this run would write it; remove "
                    f"it from the run's outputs"
                )
        env = run_params.get("env")
        env_flag = f" --env {env}" if env and env != "local" else ""
        used = pipeline.all_inputs()
        for name in user_measured_inputs(catalog):
            if SIMULATED_STAND_INS[name] not in used:
                continue
            stages = " then ".join(f"`kedro run --pipeline {s}{env_flag}`"
                                   for s in consuming_stages(name) if s != "evaluation")
            raise MeasuredDataRefusedError(
                f"{name} is your measured data ({dataset_path(catalog.get(name))}); the full "
                f"run would simulate a sample in its place and not use it: run {stages} "
                f"for your data, or `kedro run --pipeline simulation` for the simulated demo "
                f"(docs/real_data.md)"
            )


class ParameterKeysHook:
    """Refuse a top-level parameter key that conf/base does not have (``enhancment:``)."""

    @hook_impl
    def after_context_created(self, context) -> None:
        from xrf_sr_kedro.pipelines._params import check_top_level_keys, known_parameter_groups

        loader = context.config_loader
        known = known_parameter_groups(Path(loader.conf_source) / loader.base_env)
        try:
            check_top_level_keys(context.params, known or STAGES)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc


class ErrorContextHook:
    """Remember the node and dataset at work, for a one-line error that names them."""

    @hook_impl
    def before_pipeline_run(self) -> None:
        ERROR_CONTEXT.update(node=None, dataset=None, action=None)

    @hook_impl
    def before_node_run(self, node) -> None:
        ERROR_CONTEXT.update(node=node.name, dataset=None, action="running")

    @hook_impl
    def after_node_run(self) -> None:
        # the next node's inputs load before its before_node_run
        ERROR_CONTEXT.update(node=None, dataset=None, action=None)

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        ERROR_CONTEXT.update(dataset=dataset_name, action="loading")

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        ERROR_CONTEXT.update(dataset=None, action="running")

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        ERROR_CONTEXT.update(dataset=dataset_name, action="saving")

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        ERROR_CONTEXT.update(dataset=None, action="running")


def non_finite_metrics(data: Any, prefix: str = "") -> list[str]:
    """Names of the NaN/inf numbers in a (nested) metrics mapping or list."""
    if isinstance(data, dict):
        return [bad for k, v in data.items() for bad in non_finite_metrics(v, f"{prefix}{k}.")]
    if isinstance(data, (list, tuple)):
        return [bad for v in data for bad in non_finite_metrics(v, prefix)]
    if isinstance(data, (int, float)) and not isinstance(data, bool) and not math.isfinite(data):
        return [prefix.rstrip(".")]
    return []


class NonFiniteMetricsHook:
    """Warn when a metrics dataset is about to record NaN or inf."""

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if not dataset_name.endswith("_metrics"):
            return
        bad = sorted(set(non_finite_metrics(data)))
        if bad:
            logger.warning(
                "%s: %s is NaN/inf; an input holds huge or non-finite values (e.g. a "
                "pixel near 3e38 overflows float32) - check the input stack",
                dataset_name, ", ".join(bad),
            )
