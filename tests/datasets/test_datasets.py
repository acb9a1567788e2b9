"""Kedro datasets: round trips with metadata, versioning, errors, crash safety."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version

from xrf_sr_kedro.datasets import (
    ProbeDataset,
    PyXRFDataset,
    TiffMapsDataset,
    TiffVolumeDataset,
    TorchCheckpointDataset,
    XRFHDF5Dataset,
)
from xrf_sr_kedro.io import checkpoint as ckpt_mod
from xrf_sr_kedro.io import hdf5
from xrf_sr_kedro.io.pyxrf import write_pyxrf_like
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity, Volume, XRFStack

RNG = np.random.default_rng(4)


def _stack(scale=1.0) -> XRFStack:
    return XRFStack(
        data=RNG.random((2, 3, 5, 6)) * 10 * scale,
        pixel_size_nm=100.0,
        elements=("Zn_K", "Mn_K"),
        angles_deg=np.array([-30.0, 0.0, 30.0]),
        metadata={"source": "test", "scale": scale},
    )


def _assert_same_stack(a: XRFStack, b: XRFStack) -> None:
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.angles_deg, b.angles_deg)
    assert (a.pixel_size_nm, a.elements, a.units, a.metadata) == (
        b.pixel_size_nm, b.elements, b.units, b.metadata)


# --- XRFHDF5Dataset ------------------------------------------------------------


def test_hdf5_dataset_round_trips_every_kind(tmp_path):
    s = _stack()
    ds = XRFHDF5Dataset(filepath=str(tmp_path / "s.h5"))
    assert not ds.exists()
    ds.save(s)
    assert ds.exists()
    _assert_same_stack(ds.load(), s)

    v = Volume(RNG.random((1, 2, 4, 4)), 20.0, ("Fe_K",), metadata={"algorithm": "osem"})
    XRFHDF5Dataset(filepath=str(tmp_path / "v.h5")).save(v)
    r = XRFHDF5Dataset(filepath=str(tmp_path / "v.h5")).load()
    assert isinstance(r, Volume) and r.metadata == {"algorithm": "osem"}

    p = PatchPairs(RNG.random((3, 1, 4, 4)), RNG.random((3, 1, 8, 8)), 50.0, 25.0, {"k": [1, 2]})
    XRFHDF5Dataset(filepath=str(tmp_path / "p.h5")).save(p)
    r = XRFHDF5Dataset(filepath=str(tmp_path / "p.h5")).load()
    assert isinstance(r, PatchPairs) and r.metadata == {"k": [1, 2]} and r.scale == 2


def test_hdf5_dataset_describe_and_catalog(tmp_path):
    catalog = DataCatalog.from_config(
        {
            "raw_projections": {
                "type": "xrf_sr_kedro.datasets.XRFHDF5Dataset",
                "filepath": str(tmp_path / "raw.h5"),
                "versioned": True,
            }
        }
    )
    s = _stack()
    catalog.save("raw_projections", s)
    _assert_same_stack(catalog.load("raw_projections"), s)
    assert "raw.h5" in str(catalog["raw_projections"])


def test_hdf5_dataset_versioned_save_and_load(tmp_path):
    path = str(tmp_path / "stack.h5")
    v1, v2 = "2024-01-01T00.00.00.000Z", "2024-01-02T00.00.00.000Z"
    first, second = _stack(1.0), _stack(2.0)
    XRFHDF5Dataset(filepath=path, version=Version(None, v1)).save(first)
    XRFHDF5Dataset(filepath=path, version=Version(None, v2)).save(second)
    assert (tmp_path / "stack.h5" / v1 / "stack.h5").is_file()
    latest = XRFHDF5Dataset(filepath=path, version=Version(None, None))
    _assert_same_stack(latest.load(), second)
    _assert_same_stack(XRFHDF5Dataset(filepath=path, version=Version(v1, None)).load(), first)
    assert XRFHDF5Dataset(filepath=path, version=Version(v1, None)).exists()
    assert not XRFHDF5Dataset(filepath=str(tmp_path / "other.h5"), version=Version(None, None)).exists()


def test_hdf5_dataset_foreign_file_through_load_args(tmp_path):
    with h5py.File(tmp_path / "dx.h5", "w") as f:
        f["/exchange/data"] = RNG.random((4, 3, 5))
        f["/exchange/theta"] = np.arange(4.0)
    ds = XRFHDF5Dataset(
        filepath=str(tmp_path / "dx.h5"), load_args={"elements": ["Ca_K"], "pixel_size_nm": 250.0}
    )
    s = ds.load()
    assert s.elements == ("Ca_K",) and s.pixel_size_nm == 250.0 and s.data.shape == (1, 4, 3, 5)
    with pytest.raises(DatasetError, match=r"dx.h5, key /@pixel_size_nm: pixel size missing"):
        XRFHDF5Dataset(filepath=str(tmp_path / "dx.h5"), load_args={"elements": "Ca_K"}).load()


def test_hdf5_dataset_errors_name_file_and_key(tmp_path):
    with pytest.raises(DatasetError, match=r"missing.h5: file not found"):
        XRFHDF5Dataset(filepath=str(tmp_path / "missing.h5")).load()
    ds = XRFHDF5Dataset(filepath=str(tmp_path / "s.h5"))
    ds.save(_stack())
    with h5py.File(tmp_path / "s.h5", "r+") as f:
        f["/exchange/data"][0, 0, 0, 0] = -1.0
    with pytest.raises(DatasetError, match=r"s.h5, key /exchange/data: contains 1 negative"):
        ds.load()
    with pytest.raises(DatasetError, match="XRFStack, Volume or PatchPairs"):
        ds.save({"not": "a stack"})


def test_crash_during_dataset_save_keeps_previous_file(tmp_path, monkeypatch):
    ds = XRFHDF5Dataset(filepath=str(tmp_path / "s.h5"))
    first = _stack()
    ds.save(first)

    def half_written(f, obj, path):
        f.create_dataset("/exchange/data", data=np.zeros((2, 2)))
        raise RuntimeError("killed midway")

    monkeypatch.setattr(hdf5, "_write_stack", half_written)
    with pytest.raises(DatasetError, match="killed midway"):
        ds.save(_stack(5.0))
    monkeypatch.undo()
    _assert_same_stack(ds.load(), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


# --- PyXRFDataset ------------------------------------------------------------------


def test_pyxrf_dataset_selects_elements(tmp_path):
    maps = {"Zn_K": RNG.random((4, 5)), "Mn_K": RNG.random((4, 5)), "Ca_K": RNG.random((4, 5))}
    write_pyxrf_like(tmp_path / "scan2D_1.h5", maps, step_um=0.2, theta_mdeg=15000)
    ds = PyXRFDataset(filepath=str(tmp_path / "scan2D_1.h5"), elements=["Mn_K", "Zn_K"])
    assert ds.exists()
    s = ds.load()
    assert s.elements == ("Mn_K", "Zn_K") and s.pixel_size_nm == pytest.approx(200.0)
    np.testing.assert_allclose(s.data[0, 0], maps["Mn_K"], rtol=1e-6)
    np.testing.assert_allclose(s.angles_deg, [15.0])
    with pytest.raises(DatasetError, match=r"\['Cu_K'\] not found; available: \['Zn_K', 'Mn_K', 'Ca_K'"):
        PyXRFDataset(filepath=str(tmp_path / "scan2D_1.h5"), elements=["Cu_K"]).load()
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(s)


def test_pyxrf_dataset_series_from_glob(tmp_path):
    for i, t in enumerate([20000, -20000]):
        write_pyxrf_like(tmp_path / f"scan2D_{i}.h5", {"Zn_K": np.full((3, 3), i + 1.0)},
                         theta_mdeg=t)
    s = PyXRFDataset(filepath=str(tmp_path / "scan2D_*.h5"), elements=["Zn_K"],
                     pixel_size_nm=75.0).load()
    np.testing.assert_allclose(s.angles_deg, [-20, 20])
    assert s.data[0, 0, 0, 0] == 2.0 and s.data[0, 1, 0, 0] == 1.0
    with pytest.raises(DatasetError, match="no PyXRF files match"):
        PyXRFDataset(filepath=str(tmp_path / "none_*.h5"), elements=["Zn_K"]).load()


# --- TIFF datasets ---------------------------------------------------------------


def test_tiff_maps_dataset_real_hxn_maps(shared_data):
    ds = TiffMapsDataset(folder=str(shared_data / "hxn_xrf_maps"), elements=["Fe_K", "Cr_K"], pixel_size_nm=150.0)
    assert ds.exists()
    s = ds.load()
    assert s.data.shape == (2, 1, 160, 160) and s.elements == ("Fe_K", "Cr_K")
    assert s.pixel_size_nm == 150.0 and np.isfinite(s.data).all() and s.data.min() >= 0
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(s)


def test_tiff_maps_dataset_arguments(tmp_path):
    with pytest.raises(DatasetError, match="exactly one of filepaths or folder"):
        TiffMapsDataset(pixel_size_nm=1.0)
    ds = TiffMapsDataset(filepaths={"Fe_K": str(tmp_path / "no.tif")}, pixel_size_nm=1.0)
    assert not ds.exists()
    with pytest.raises(DatasetError, match="no.tif: file not found"):
        ds.load()


def test_tiff_volume_dataset_round_trip(tmp_path):
    v = Volume(RNG.random((2, 3, 4, 4)), 12.0, ("Fe_K", "Zn_K"), metadata={"algorithm": "sirt"})
    ds = TiffVolumeDataset(filepath=str(tmp_path / "recon.tif"))
    assert not ds.exists()
    ds.save(v)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recon_Fe_K.tif", "recon_Zn_K.tif"]
    r = ds.load()
    np.testing.assert_array_equal(r.data, v.data)
    assert (r.voxel_size_nm, r.elements, r.units, r.metadata) == (
        12.0, ("Fe_K", "Zn_K"), "a.u.", {"algorithm": "sirt"})
    r = TiffVolumeDataset(filepath=str(tmp_path / "recon.tif"), elements=["Zn_K"]).load()
    assert r.elements == ("Zn_K",)
    with pytest.raises(DatasetError, match="recon_Cu_K.tif: file not found"):
        TiffVolumeDataset(filepath=str(tmp_path / "recon.tif"), elements=["Cu_K"]).load()


# --- ProbeDataset -------------------------------------------------------------------


def _modes(k=2, n=16):
    y, x = np.mgrid[0:n, 0:n] - n / 2
    g = np.exp(-(x**2 + y**2) / 8.0)
    return np.stack([g * np.exp(1j * 0.3 * k_ * x) for k_ in range(k)]).astype(np.complex64)


def test_probe_dataset_npy_and_h5_round_trip(tmp_path):
    m = _modes()
    np.save(tmp_path / "modes.npy", m)
    with pytest.raises(DatasetError, match=r"modes.npy, key pixel_size_nm: missing"):
        ProbeDataset(filepath=str(tmp_path / "modes.npy")).load()
    p = ProbeDataset(filepath=str(tmp_path / "modes.npy"), pixel_size_nm=10.0).load()
    assert isinstance(p, ProbeIntensity) and p.pixel_size_nm == 10.0
    assert p.intensity.shape == (16, 16) and p.intensity.sum() == pytest.approx(1.0, abs=1e-5)
    ref = (np.abs(m) ** 2).sum(0)
    np.testing.assert_allclose(p.intensity, ref / ref.sum(), atol=1e-6)

    out = ProbeDataset(filepath=str(tmp_path / "probe_intensity.h5"))
    out.save(p)
    r = out.load()
    np.testing.assert_allclose(r.intensity, p.intensity, atol=1e-7)
    assert r.pixel_size_nm == 10.0 and r.metadata["source_file"].endswith("modes.npy")
    with pytest.raises(DatasetError, match="must end in .h5"):
        ProbeDataset(filepath=str(tmp_path / "x.npy")).save(p)


def test_probe_dataset_resamples_when_asked(tmp_path):
    np.save(tmp_path / "modes.npy", _modes(n=32))
    p = ProbeDataset(filepath=str(tmp_path / "modes.npy"), pixel_size_nm=5.0,
                     target_pixel_size_nm=10.0, size_px=9).load()
    assert p.pixel_size_nm == pytest.approx(10.0) and p.intensity.shape == (9, 9)


def test_probe_dataset_versioned(tmp_path):
    path = str(tmp_path / "probe.h5")
    a = ProbeIntensity(np.ones((5, 5)), 10.0)
    b = ProbeIntensity(np.pad(np.ones((3, 3)), 1), 20.0)
    ProbeDataset(filepath=path, version=Version(None, "2024-01-01T00.00.00.000Z")).save(a)
    ProbeDataset(filepath=path, version=Version(None, "2024-01-02T00.00.00.000Z")).save(b)
    assert ProbeDataset(filepath=path, version=Version(None, None)).load().pixel_size_nm == 20.0
    old = ProbeDataset(filepath=path, version=Version("2024-01-01T00.00.00.000Z", None)).load()
    assert old.pixel_size_nm == 10.0


# --- TorchCheckpointDataset -------------------------------------------------------


def _checkpoint(epoch: int) -> dict:
    return {
        "format_version": 1,
        "config": {"channels": 4},
        "preset": None,
        "model_state": {"w": torch.full((2, 2), float(epoch))},
        "optimizer_state": {},
        "scheduler_state": {},
        "epoch": epoch,
        "metrics": {"val_psnr": 30.0 + epoch},
        "history": {"val_psnr": [30.0 + e for e in range(epoch + 1)]},
        "train_config": {"lr": 1e-4},
        "rng_state": {},
        "training_data": "unit test",
        "parent": None,
    }


def test_checkpoint_dataset_versioned_round_trip(tmp_path):
    path = str(tmp_path / "model.pt")
    v1, v2 = "2024-01-01T00.00.00.000Z", "2024-01-02T00.00.00.000Z"
    TorchCheckpointDataset(filepath=path, version=Version(None, v1)).save(_checkpoint(1))
    TorchCheckpointDataset(filepath=path, version=Version(None, v2)).save(_checkpoint(2))
    latest = TorchCheckpointDataset(filepath=path, version=Version(None, None)).load()
    assert latest["epoch"] == 2 and latest["metrics"] == {"val_psnr": 32.0}
    assert float(latest["model_state"]["w"][0, 0]) == 2.0
    assert TorchCheckpointDataset(filepath=path, version=Version(v1, None)).load()["epoch"] == 1


def test_checkpoint_dataset_errors_and_crash_safety(tmp_path, monkeypatch):
    ds = TorchCheckpointDataset(filepath=str(tmp_path / "m.pt"))
    with pytest.raises(DatasetError, match="m.pt does not exist"):
        ds.load()
    ds.save(_checkpoint(3))

    def boom(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("killed")

    monkeypatch.setattr(ckpt_mod.torch, "save", boom)
    with pytest.raises(DatasetError, match="killed"):
        ds.save(_checkpoint(4))
    monkeypatch.undo()
    assert ds.load()["epoch"] == 3
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DatasetError, match="junk.pt is not a readable"):
        TorchCheckpointDataset(filepath=str(tmp_path / "junk.pt")).load()


def test_checkpoint_rebuilds_model_and_names_config_differences(tmp_path):
    from xrf_sr_kedro.models.dual_branch import DualBranchConfig, DualBranchSR

    cfg = DualBranchConfig(channels=8, n_msrb=1, n_groups=1, n_rcab=1, reduction=4, scale=2)
    model = DualBranchSR(cfg)
    ckpt = _checkpoint(0)
    ckpt["config"] = ckpt_mod.config_as_dict(cfg)
    ckpt["model_state"] = model.state_dict()
    ds = TorchCheckpointDataset(filepath=str(tmp_path / "m.pt"))
    ds.save(ckpt)
    rebuilt = ckpt_mod.model_from_checkpoint(ds.load(), cfg)
    x = torch.rand(1, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model.eval()(x))
    other = DualBranchConfig(channels=16, n_msrb=1, n_groups=1, n_rcab=1, reduction=4, scale=2)
    with pytest.raises(ValueError, match="channels"):
        ckpt_mod.model_from_checkpoint(ds.load(), other)


def test_hdf5_dataset_on_a_non_local_fsspec_protocol():
    """Remote protocols go through a local temporary copy (here fsspec's memory://)."""
    s = _stack()
    ds = XRFHDF5Dataset(filepath="memory://xrf_sr_test/stack.h5")
    ds.save(s)
    assert ds.exists()
    _assert_same_stack(ds.load(), s)


def test_every_dataset_type_resolves_from_catalog_config(tmp_path):
    f = str(tmp_path / "x")
    config = {
        "a": {"type": "xrf_sr_kedro.datasets.XRFHDF5Dataset", "filepath": f + ".h5",
              "versioned": True, "load_args": {"pixel_size_nm": 1.0}},
        "b": {"type": "xrf_sr_kedro.datasets.PyXRFDataset", "filepath": f + ".h5",
              "elements": ["Zn_K"]},
        "c": {"type": "xrf_sr_kedro.datasets.TiffMapsDataset", "folder": str(tmp_path),
              "elements": ["Fe_K"], "pixel_size_nm": 150.0},
        "d": {"type": "xrf_sr_kedro.datasets.TiffVolumeDataset", "filepath": f + ".tif"},
        "e": {"type": "xrf_sr_kedro.datasets.ProbeDataset", "filepath": f + ".npy",
              "pixel_size_nm": 8.0, "target_pixel_size_nm": 25.0, "size_px": 33},
        "g": {"type": "xrf_sr_kedro.datasets.TorchCheckpointDataset", "filepath": f + ".pt",
              "versioned": True},
    }
    catalog = DataCatalog.from_config(config)
    for name in config:
        assert not catalog.exists(name)
        assert "x." in str(catalog[name]) or "folder" in str(catalog[name])


def test_checkpoint_dataset_fallback(tmp_path, caplog):
    pre = tmp_path / "pretrained.pt"
    ds = TorchCheckpointDataset(filepath=str(tmp_path / "fine.pt"), fallback_filepath=str(pre))
    with pytest.raises(DatasetError, match="fine.pt and its fallback .*pretrained.pt do not exist"):
        ds.load()
    TorchCheckpointDataset(filepath=str(pre)).save(_checkpoint(5))
    with caplog.at_level("WARNING"):
        assert ds.load()["epoch"] == 5
    assert "loading fallback" in caplog.text
    assert not ds.exists()  # only the primary path counts, so training is not skipped
    ds.save(_checkpoint(6))
    assert ds.exists() and ds.load()["epoch"] == 6
    versioned = TorchCheckpointDataset(filepath=str(tmp_path / "v.pt"), fallback_filepath=str(pre),
                                       version=Version(None, None))
    assert versioned.load()["epoch"] == 5


def test_checkpoint_dataset_fallback_chain_loads_the_first_existing(tmp_path):
    fine, pre = tmp_path / "fine.pt", tmp_path / "pretrained.pt"
    ds = TorchCheckpointDataset(filepath=str(tmp_path / "selected.pt"), fallback_filepath=[str(fine), str(pre)])
    with pytest.raises(DatasetError, match="fine.pt / .*pretrained.pt do not exist"):
        ds.load()
    TorchCheckpointDataset(filepath=str(pre)).save(_checkpoint(5))
    assert ds.load()["epoch"] == 5 and ds._fallback_filepath == str(pre)
    TorchCheckpointDataset(filepath=str(fine)).save(_checkpoint(7))
    assert ds.load()["epoch"] == 7 and ds._fallback_filepath == str(fine)
    assert not ds.exists()
