"""Adapting the chosen network to the measured counts, kept only if held-out projections say so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrf_sr_kedro.io.checkpoint import config_as_dict, model_from_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.training.adaptation import AdaptationSettings, adapt_to_counts
from xrf_sr_kedro.types import XRFStack


def _checkpoint(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = build_model("tiny")
    return {"model_state": model.state_dict(), "config": config_as_dict(model.config)}


def _stack(blob_counts, n: int = 10):
    """Blob projections fly-scanned at 30 nm and Poisson-counted, as an XRFStack."""
    counts, probe = blob_counts(n=n)
    stack = XRFStack(data=counts.astype(np.float32)[None], pixel_size_nm=30.0, elements=("Zn_K",),
                     angles_deg=np.linspace(0, 180, n, endpoint=False))
    return stack, probe


def _weights_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_off_by_default_returns_the_network_unchanged(blob_counts):
    ckpt = _checkpoint()
    stack, probe = _stack(blob_counts, n=4)
    out, metrics = adapt_to_counts(ckpt, stack, probe, AdaptationSettings(steps=0))
    assert _weights_equal(out["model_state"], ckpt["model_state"]) and metrics == {}
    assert out["adaptation"] == {"steps": 0, "kept": False}


def test_adaptation_is_kept_when_it_explains_held_out_projections_better(blob_counts):
    ckpt = _checkpoint()
    stack, probe = _stack(blob_counts)
    settings = AdaptationSettings(steps=40, batch=4, crop_px=12, margin_px=2, learning_rate=2e-3)
    out, metrics = adapt_to_counts(ckpt, stack, probe, settings)
    record = out["adaptation"]
    assert record["kept"] and record["held_out_loss_after"] < 0.8 * record["held_out_loss_before"]
    assert record["split_half_independent"] is False  # it has seen both halves' counts
    assert not _weights_equal(out["model_state"], ckpt["model_state"])
    model_from_checkpoint(out)  # still a loadable checkpoint of the same architecture
    assert metrics["kept"][0]["value"] == 1.0 and len(metrics["train_loss"]) == 1


def test_a_worse_adaptation_is_discarded(blob_counts):
    ckpt = _checkpoint()
    stack, probe = _stack(blob_counts)
    # a learning rate this large wrecks the network: the held-out test must refuse it
    settings = AdaptationSettings(steps=10, batch=4, crop_px=12, margin_px=2, learning_rate=1.0)
    out, _ = adapt_to_counts(ckpt, stack, probe, settings)
    assert not out["adaptation"]["kept"]
    assert out["adaptation"]["held_out_loss_after"] >= out["adaptation"]["held_out_loss_before"]
    assert _weights_equal(out["model_state"], ckpt["model_state"])


def test_maps_that_are_not_counts_are_refused_before_training(blob_counts):
    ckpt = _checkpoint()
    stack, probe = _stack(blob_counts, n=4)
    normalised = XRFStack(data=stack.data / 1234.5, pixel_size_nm=30.0, elements=("Zn_K",),
                          angles_deg=stack.angles_deg, units="counts per I0")
    with pytest.raises(ValueError, match="raw_xrf: the maps are in 'counts per I0', not detector counts"):
        adapt_to_counts(ckpt, normalised, probe, AdaptationSettings(steps=5))
    bad = stack.data.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        adapt_to_counts(ckpt, XRFStack(data=bad, pixel_size_nm=30.0, elements=("Zn_K",),
                                       angles_deg=stack.angles_deg), probe, AdaptationSettings(steps=5))
    with pytest.raises(ValueError, match="holdout_every"):
        AdaptationSettings(holdout_every=1)
