"""Kedro project settings."""

import warnings
from pathlib import Path

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from xrf_sr_kedro.guards import (
    ErrorContextHook,
    MeasuredDataGuardHook,
    NonFiniteMetricsHook,
    ParameterKeysHook,
)
from xrf_sr_kedro.hooks import MissingUpstreamHook, MlflowExperimentHook, MlflowRunOwnerHook

# kedro-mlflow registers its own hooks through its entry point; ours pick the MLflow
# experiment (one per pipeline family) before kedro-mlflow starts the run and mark
# runs whose process was killed, stop a run whose upstream outputs are missing with
# the command that produces them, and refuse (first: pluggy calls the last registered
# first) a run that would write or bypass a user's measured data.
HOOKS = (
    MlflowExperimentHook(),
    MlflowRunOwnerHook(),
    MissingUpstreamHook(),
    ParameterKeysHook(),
    ErrorContextHook(),
    NonFiniteMetricsHook(),
    MeasuredDataGuardHook(),
)

# Third-party deprecation chatter that buries the run's own log (nothing to act on here).
warnings.filterwarnings("ignore", message=r".*register_new_resolver\(\) is deprecated.*")
warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method.*")


class ProjectConfigLoader(OmegaConfigLoader):
    """Kedro's config loader plus the ``${project_root:}`` resolver.

    Paths in ``mlflow.yml`` and in parameters (checkpoint folders) are written as
    ``${project_root:}/...`` so they do not depend on the working directory (a
    notebook under ``notebooks/``, a test).  The project root is the folder holding
    ``conf/``; every loader (``kedro run``, ``kedro viz``, ``%reload_kedro``) sets it.
    """

    def __init__(self, conf_source: str, *args, **kwargs) -> None:
        root = Path(conf_source).resolve().parent.as_posix()
        OmegaConf.register_resolver("project_root", lambda: root, replace=True)
        super().__init__(conf_source, *args, **kwargs)


CONFIG_LOADER_CLASS = ProjectConfigLoader


def _skimage_data_dir() -> str:
    """Folder of the images bundled with scikit-image (the offline pretraining default)."""
    import skimage

    return skimage.data_dir


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"skimage_data_dir": _skimage_data_dir},
    # conf/<env>/parameters*.yml override single keys (e.g. only
    # simulation.sample.size_vox); catalog entries are replaced whole, so a local
    # entry may change a dataset's type.
    "merge_strategy": {"parameters": "soft"},
}
