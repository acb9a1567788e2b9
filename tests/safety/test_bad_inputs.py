"""Issue 14: bad inputs stop with a message naming the file/key/parameter.

Each test feeds one broken input a demanding user tried and checks the error (or,
for the large probe, the exact result).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from xrf_sr_kedro.io.hdf5 import DataFormatError, load_h5, save_h5
from xrf_sr_kedro.io.tiff import read_tiff_map, read_tiff_maps
from xrf_sr_kedro.physics.flyscan import flyscan, flyscan_adjoint
from xrf_sr_kedro.types import XRFStack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "physics"))
from naive_flyscan import naive_flyscan  # noqa: E402

FOREIGN = {"pixel_size_nm": 100.0, "elements": ["Fe_K"]}


# ------------------------------------------------------------------- HDF5 files
def test_missing_exchange_data_names_the_key(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["/exchange/theta"] = np.zeros(3)
    with pytest.raises(DataFormatError, match="/exchange/data") as info:
        load_h5(path, **FOREIGN)
    assert str(path) in str(info.value)


def test_string_data_is_refused_naming_the_dtype(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = np.array([[["a", "b"]]], dtype="S1")
        f["/exchange/theta"] = np.zeros(1)
    with pytest.raises(DataFormatError, match="dtype") as info:
        load_h5(path, **FOREIGN)
    assert "/exchange/data" in str(info.value)


def test_a_truncated_file_says_it_cannot_be_opened(tmp_path):
    full = tmp_path / "full.h5"
    save_h5(full, XRFStack(data=np.ones((1, 4, 32, 32), np.float32), pixel_size_nm=100.0,
                           elements=("Fe_K",), angles_deg=np.arange(4.0)))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(DataFormatError, match="cannot be opened as HDF5") as info:
        load_h5(cut)
    assert str(cut) in str(info.value)


# ------------------------------------------------------------------- TIFF maps
def test_an_rgb_tiff_is_named_a_colour_image(tmp_path):
    path = tmp_path / "Fe_K.tif"
    tifffile.imwrite(path, np.zeros((16, 20, 3), np.uint8), photometric="rgb")
    with pytest.raises(DataFormatError, match=r"colour \(RGB\) image of shape \(16, 20, 3\)"):
        read_tiff_map(path)


def test_a_grey_stack_still_reads_as_frames(tmp_path):
    path = tmp_path / "Fe_K.tif"
    tifffile.imwrite(path, np.ones((16, 20, 3), np.float32), photometric="minisblack")
    assert read_tiff_map(path).shape == (16, 20, 3)


def test_tiff_sizes_differing_per_element_name_both(tmp_path):
    tifffile.imwrite(tmp_path / "Fe_K.tif", np.ones((8, 8), np.float32))
    tifffile.imwrite(tmp_path / "Cr_K.tif", np.ones((8, 10), np.float32))
    with pytest.raises(DataFormatError, match=r"Cr_K differs from \(1, 8, 8\)"):
        read_tiff_maps({"Fe_K": tmp_path / "Fe_K.tif", "Cr_K": tmp_path / "Cr_K.tif"}, 150.0)


# ------------------------------------------------------------------- probe
def test_an_all_zero_probe_is_refused(tmp_path):
    from xrf_sr_kedro.io.probe import read_probe

    path = tmp_path / "probe.npy"
    np.save(path, np.zeros((9, 9)))
    with pytest.raises(DataFormatError, match="zero everywhere") as info:
        read_probe(path, pixel_size_nm=7.5)
    assert str(path) in str(info.value)


def test_a_probe_larger_than_the_map_is_exact():
    """Repro of the crash: 200 x 200 probe, 64 x 64 map; now equal to the naive loop."""
    delta = np.zeros((200, 200), np.float32)
    delta[100, 100] = 1.0
    lr = flyscan(np.ones((1, 64, 64), np.float32), delta, 4)
    assert lr.shape == (1, 16, 16)
    rng = np.random.default_rng(1)
    probe = rng.random((41, 37))
    x = rng.random((12, 16))
    fast = flyscan(x[None].astype(np.float32), probe, 4)[0]
    ref = naive_flyscan(x, probe, 4)
    assert np.abs(fast - ref).max() <= 1e-5 * np.abs(ref).max()
    # the adjoint stays exact on the enlarged grid: <A x, y> == <x, A^T y>
    y = rng.random((3, 4)).astype(np.float32)
    lhs = float(np.sum(fast.astype(np.float64) * y))
    at_y = flyscan_adjoint(y[None], probe, 4, (12, 16))[0]
    rhs = float(np.sum(x * at_y))
    assert lhs == pytest.approx(rhs, rel=1e-5)


# ------------------------------------------------------------------- checkpoints
class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    from xrf_sr_kedro.io.checkpoint import load_checkpoint

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    import torch

    torch.save({"format_version": 1, "payload": _RunsCode()}, path)
    with pytest.raises(Exception) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) or "weights_only" in str(info.value)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


# ------------------------------------------------------------------- parameters
def test_tile_px_zero_is_refused_naming_the_parameter():
    from xrf_sr_kedro.inference.engine import enhance_maps
    from xrf_sr_kedro.models.dual_branch import build_model

    with pytest.raises(ValueError, match="tile_px"):
        enhance_maps(build_model("tiny"), np.ones((16, 16), np.float32), 4, tile_px=0)


def test_negative_n_iter_is_refused_naming_the_parameter():
    from xrf_sr_kedro.tomo.recon import reconstruct

    sino = np.ones((4, 2, 8), np.float32)
    with pytest.raises(ValueError, match="n_iter must be a non-negative integer, got -3"):
        reconstruct(sino, np.linspace(0, 180, 4, endpoint=False), algorithm="sirt", n_iter=-3)


# ------------------------------------------------------------------- metrics, MLflow
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_nan_metric_is_warned_about():
    from xrf_sr_kedro.guards import NonFiniteMetricsHook, non_finite_metrics

    data = {"residual_rel": {"value": float("nan"), "step": 0}, "psnr": 31.0}
    assert non_finite_metrics(data) == ["residual_rel.value"]
    records = _Records()  # Kedro's logging setup replaces pytest's capture handler
    logging.getLogger("xrf_sr_kedro.guards").addHandler(records)
    try:
        NonFiniteMetricsHook().before_dataset_saved("enhancement_consistency_metrics", data)
        assert len(records.messages) == 1 and "residual_rel.value is NaN/inf" in records.messages[0]
        NonFiniteMetricsHook().before_dataset_saved("enhancement_consistency_metrics", {"a": 1.0})
        assert len(records.messages) == 1
    finally:
        logging.getLogger("xrf_sr_kedro.guards").removeHandler(records)


def test_a_run_whose_process_died_is_marked_killed(tmp_path, monkeypatch):
    import subprocess

    import mlflow

    from xrf_sr_kedro.hooks import OWNER_TAGS, _owner, mark_stale_runs

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = mlflow.tracking.MlflowClient()
        exp = client.create_experiment("xrf-sr/test")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        host = _owner()[0]
        killed = client.create_run(exp, tags={OWNER_TAGS[0]: host, OWNER_TAGS[1]: dead})
        alive = client.create_run(exp, tags={OWNER_TAGS[0]: host, OWNER_TAGS[1]: str(os.getpid())})
        assert mark_stale_runs("xrf-sr/test") == [killed.info.run_id]
        assert client.get_run(killed.info.run_id).info.status == "KILLED"
        assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    finally:
        mlflow.set_tracking_uri("")
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
