"""Shared test fixtures: project copies, a tiny checkpoint, a clean MLflow state."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Real measured data (../shared/data from the project root, see its README.md).
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder ``../shared/data``: the one way tests find real data.

    Missing, it fails the test when ``CI=true`` (CI must provide it, so the real-data
    tests cannot pass silently there) and skips it elsewhere.
    """
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"shared real-data folder {SHARED_DATA} (../shared/data) is missing"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def copy_project(root: Path, notebooks: bool = False) -> Path:
    """Copy the Kedro project (code, config, embedded data) to ``root``.

    Pipelines run there write their data, checkpoints and MLflow store under
    ``root``, never into the repository.  Kedro wants the source folder inside the
    project (it resolves symlinks), so ``src`` is copied too.
    """
    root.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copytree(PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw" / "embedded", root / "data" / "01_raw" / "embedded")
    if notebooks:
        shutil.copytree(PROJECT_ROOT / "notebooks", root / "notebooks")
    return root


def write_tiny_checkpoint(path: Path) -> None:
    """An untrained ``tiny`` network saved with the layout ``fit`` writes."""
    import torch

    from xrf_sr_kedro.io.checkpoint import FORMAT_VERSION, config_as_dict, save_checkpoint
    from xrf_sr_kedro.models.dual_branch import build_model, config_from_name

    torch.manual_seed(0)
    config = config_from_name("tiny")
    save_checkpoint(path, {
        "format_version": FORMAT_VERSION,
        "config": config_as_dict(config),
        "preset": "tiny",
        "model_state": build_model(config).state_dict(),
        "optimizer_state": {},
        "scheduler_state": {},
        "scaler_state": None,
        "epoch": 1,
        "metrics": {},
        "history": {},
        "train_config": {},
        "rng_state": {},
        "training_data": "test: untrained tiny network",
        "parent": None,
    })


def forget_mlflow_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the MLflow run, experiment and tracking URI a previous session set.

    MLflow keeps them per process (module globals and environment variables); a
    later KedroSession of another project copy must start from scratch.
    """
    import mlflow
    import mlflow.tracking.fluent as fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None
    for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the project in ``tmp_path`` (see :func:`copy_project`)."""
    forget_mlflow_state(monkeypatch)
    yield copy_project(tmp_path / "project")
    forget_mlflow_state(monkeypatch)


@pytest.fixture(scope="session")
def make_project_copy() -> Callable[..., Path]:
    """:func:`copy_project`, for module-scoped fixtures."""
    return copy_project


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Callable[[Path], None]:
    """:func:`write_tiny_checkpoint`: an untrained tiny network as a checkpoint file."""
    return write_tiny_checkpoint
