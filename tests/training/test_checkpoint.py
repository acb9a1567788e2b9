"""Checkpoint files: round trip, clear errors, architecture mismatch named field by field."""

from __future__ import annotations

import pytest
import torch

from xrf_sr_kedro.io.checkpoint import (
    CHECKPOINT_KEYS,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from xrf_sr_kedro.models.dual_branch import PRESETS, build_model
from xrf_sr_kedro.training.loop import TrainConfig, fit


@pytest.fixture
def trained(pairs, tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny")
    fit(model, pairs, None, TrainConfig(epochs=1, batch_size=8, num_threads=1), tmp_path / "run")
    return model, tmp_path / "run" / "last.pt"


def test_round_trip_rebuilds_the_same_network(trained):
    model, path = trained
    ckpt = load_checkpoint(path)
    assert set(CHECKPOINT_KEYS) <= set(ckpt)
    assert ckpt["format_version"] == 1 and ckpt["epoch"] == 1 and ckpt["preset"] == "tiny"
    rebuilt = model_from_checkpoint(ckpt, expected=PRESETS["tiny"])
    x = torch.rand(1, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)
    assert all(not k.startswith("module.") for k in ckpt["model_state"])


def test_ddp_prefix_is_stripped(trained):
    model, path = trained
    ckpt = load_checkpoint(path)
    ckpt["model_state"] = {"module." + k: v for k, v in ckpt["model_state"].items()}
    rebuilt = model_from_checkpoint(ckpt)
    x = torch.rand(1, 1, 8, 8)
    model.eval()
    with torch.no_grad():  # the prefixed weights loaded, not a fresh initialisation
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_another_preset_is_named_field_by_field(trained):
    ckpt = load_checkpoint(trained[1])
    with pytest.raises(ValueError) as err:
        model_from_checkpoint(ckpt, expected=PRESETS["paper"])
    assert str(err.value) == (
        "checkpoint was trained with channels=8, n_msrb=1, n_groups=1, n_rcab=1, reduction=4; "
        "requested channels=64, n_msrb=5, n_groups=10, n_rcab=10, reduction=16"
    )


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_foreign_file_is_named(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pt is not a readable xrf_sr_kedro checkpoint"):
        load_checkpoint(path)


def test_missing_keys_are_listed(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"model_state": {}}, path)
    missing = r"weights.pt .*missing keys \['format_version', 'config'\]"
    with pytest.raises(ValueError, match=missing):
        load_checkpoint(path)
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="holds a list"):
        load_checkpoint(path)


def test_save_is_atomic_and_validates(tmp_path, trained):
    ckpt = load_checkpoint(trained[1])
    target = tmp_path / "copy" / "c.pt"
    save_checkpoint(target, ckpt)
    with pytest.raises(ValueError, match="lacks required keys"):
        save_checkpoint(target, {"config": {}})
    assert load_checkpoint(target)["epoch"] == 1  # the failed save left the file intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["c.pt"]


def test_newer_format_is_refused(tmp_path, trained):
    ckpt = load_checkpoint(trained[1])
    ckpt["format_version"] = 2
    save_checkpoint(tmp_path / "v2.pt", ckpt)
    with pytest.raises(ValueError, match="format_version 2"):
        load_checkpoint(tmp_path / "v2.pt")
