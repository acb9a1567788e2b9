"""The simulation nodes build 3-D packing pairs and a packing validation region from parameters."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.pipelines.simulation import nodes as sim


def test_nodes_make_packing_pairs_and_refuse_the_validation_seed():
    probe = gaussian_probe(20.0, 7.5)
    params = sim.ApplicationPairsParams(
        natural_fraction=0.0, n_samples=0, size_px=32, n_volumes=2, angles_per_volume=2,
        volume_size_vox=40,
    )
    pairs = sim.make_application_training_pairs(None, probe, params)
    assert pairs.lr.shape == (2 * 2 * 2, 1, 8, 8) and pairs.hr.shape[-2:] == (32, 32)
    assert pairs.lr.min() >= 0 and pairs.lr.max() <= 1
    with pytest.raises(ValueError, match="reserved"):
        sim.make_application_training_pairs(
            None, probe, sim.ApplicationPairsParams(natural_fraction=0.0, n_samples=0, size_px=32,
                                                    n_volumes=1, seed=2, validation_seed=2),
        )
    region = sim.make_validation_region_pairs(
        probe, sim.ValidationRegionParams(n_samples=1, size_px=32, source="particle_packings",
                                          angles_per_volume=2, volume_size_vox=40),
    )
    assert len(region) == 4 and np.allclose(region.metadata["mean_counts"], 150.0)
    # held-out seed: no validation map equals a training one
    assert not any(np.array_equal(r, t) for r in region.hr for t in pairs.hr)
