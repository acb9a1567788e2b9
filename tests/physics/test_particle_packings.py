"""Projected 3-D particle packings: training maps like tomographic projections (issue 13)."""

import numpy as np
import pytest

from xrf_sr_kedro.physics.application_pairs import training_pairs, validation_region_pairs
from xrf_sr_kedro.physics.microstructures import check_training_source
from xrf_sr_kedro.physics.particle_packings import (
    PACKING_SALT,
    packing_projection_maps,
    particle_volume,
    project_particle_volume,
)
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import gaussian_probe


def test_volume_shape_determinism_and_pillar():
    a = particle_volume(32, 48, n_elements=3, seed=4)
    b = particle_volume(32, 48, n_elements=3, seed=4)
    c = particle_volume(32, 48, n_elements=3, seed=5)
    assert a.shape == (3, 32, 48, 48) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() > 0
    # everything lies inside the cylinder inscribed in the slices (air outside)
    yy, xx = np.mgrid[0:48, 0:48] + 0.5 - 24
    outside = np.hypot(yy, xx) > 0.49 * 48 + 1.0
    assert np.all(a[:, :, outside] == 0)


def test_projections_are_nonnegative_and_conserve_the_volume_integral():
    voxel_nm = 7.5
    vol = particle_volume(24, 40, voxel_nm, 2, seed=3)
    angles = [0.0, 17.0, 45.0, -63.0]
    proj = project_particle_volume(vol, angles, voxel_nm)
    assert proj.shape == (4, 2, 24, 40)
    assert proj.min() >= 0
    total = vol.sum(axis=(1, 2, 3)) * voxel_nm
    for a in range(len(angles)):
        np.testing.assert_allclose(proj[a].sum(axis=(1, 2)), total, rtol=1e-3)  # Joseph round-off
    # naive reference at 0 degrees: rays along the first slice axis
    np.testing.assert_allclose(proj[0], vol.sum(axis=2) * voxel_nm, rtol=1e-4, atol=1e-3)


def test_maps_are_crops_of_projections_of_seeded_volumes():
    maps = packing_projection_maps(3, angles_per_volume=2, size_px=32, size_vox=48, seed=1)
    assert len(maps) == 3 * 2 * 2
    for m in maps:
        assert m.shape == (32, 32) and m.dtype == np.float32
        assert m.min() >= 0 and np.isclose(m.max(), 1.0)
    again = packing_projection_maps(3, angles_per_volume=2, size_px=32, size_vox=48, seed=1)
    for m, n in zip(maps, again):
        np.testing.assert_array_equal(m, n)
    # each map is a column window of its volume's projection (same stream), scaled to
    # a peak of 1; the window holds at most the volume's integral
    rng = np.random.default_rng([PACKING_SALT, 1, 0])
    vol = particle_volume(32, 48, 7.5, 2, rng)
    proj = project_particle_volume(vol, rng.uniform(-90.0, 90.0, 2), 7.5)
    for a in range(2):
        c0 = int(rng.integers(0, 48 - 32 + 1))
        for e in range(2):
            window = proj[a, e, :, c0 : c0 + 32]
            np.testing.assert_allclose(maps[2 * a + e], window / window.max(), rtol=1e-6)
            assert window.sum() <= vol[e].sum() * 7.5 * (1 + 1e-3)


def test_guard_refuses_held_out_seed_and_the_phantom():
    with pytest.raises(ValueError, match="reserved"):
        packing_projection_maps(1, 1, 32, 32, seed=2, forbidden_seeds=[2])
    with pytest.raises(ValueError, match="phantom"):
        check_training_source(battery_phantom, [1])
    probe = gaussian_probe(20.0, 7.5)
    with pytest.raises(ValueError, match="reserved"):
        training_pairs(probe, None, 0.0, 0, 32, 2, seed=2, validation_seed=2, n_volumes=1)


def test_validation_region_shares_no_map_with_training():
    train = packing_projection_maps(2, 2, 32, 48, seed=1)
    val = packing_projection_maps(2, 2, 32, 48, seed=2)
    for t in train:
        assert all(not np.array_equal(t, v) for v in val)


def test_training_mix_counts_and_validation_region_source():
    probe = gaussian_probe(20.0, 7.5)
    pairs = training_pairs(probe, None, 0.0, n_samples=2, size_px=32, n_elements=2, seed=1,
                           n_volumes=2, angles_per_volume=2, volume_size_vox=40)
    assert pairs.lr.shape == (2 * 2 + 2 * 2 * 2, 1, 8, 8)
    assert pairs.hr.shape[-2:] == (32, 32)
    val = validation_region_pairs(probe, n_samples=1, size_px=32, seed=2,
                                  source="particle_packings", angles_per_volume=3,
                                  volume_size_vox=40)
    assert len(val) == 6 and np.allclose(val.metadata["mean_counts"], 150.0)
    with pytest.raises(ValueError, match="source"):
        validation_region_pairs(probe, n_samples=1, size_px=32, source="phantom")
