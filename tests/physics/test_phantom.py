import numpy as np
import pytest

from xrf_sr_kedro.physics.phantom import battery_phantom


@pytest.fixture(scope="module")
def phantom():
    return battery_phantom(size_vox=96, voxel_size_nm=7.5, seed=3)


def test_layout_and_elements(phantom):
    assert phantom.data.shape == (2, 96, 96, 96)
    assert phantom.elements == ("Zn_K", "Mn_K")
    assert phantom.voxel_size_nm == 7.5
    assert np.all(phantom.data >= 0) and phantom.data.max() > 0


def test_sample_inside_inscribed_cylinder(phantom):
    n = 96
    c = (n - 1) / 2
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - c, xx - c)
    support = phantom.data.sum(axis=(0, 1)) > 0
    assert r[support].max() < n / 2 - 1


def test_zn_mn_colocalised_with_mn_about_twice_zn(phantom):
    zn, mn = phantom.data
    particles = mn > 0.5
    assert particles.mean() > 0.05
    ratio = np.median(mn[particles] / np.maximum(zn[particles], 1e-6))
    assert ratio == pytest.approx(2.0, rel=0.35)
    assert np.corrcoef(zn.ravel(), mn.ravel())[0, 1] > 0.6
    counts = phantom.metadata["particles"]
    assert counts["n_pores"] > 0 and counts["n_cracks"] > 0


def test_known_size_features_recorded_and_present(phantom):
    feats = phantom.metadata["features"]
    spheres = [f for f in feats if f["kind"] == "sphere"]
    rods = [f for f in feats if f["kind"] == "rod_pair"]
    assert len(spheres) >= 3 and len(rods) >= 2
    assert {15.0, 30.0} <= {f["diameter_nm"] for f in spheres}
    for f in spheres:
        z, y, x = (int(round(v)) for v in f["centre_vox"])
        assert phantom.data[1, z, y, x] == pytest.approx(1.0)
    for f in rods:
        w = f["width_vox"]
        z, y, xc = f["centre_vox"]
        row = phantom.data[1, int(z), int(round(y))]
        x0 = int(round(xc + 0.5 - 1.5 * w))
        profile = row[x0 : x0 + 3 * w] > 0.5
        assert profile.tolist() == [True] * w + [False] * w + [True] * w


def test_deterministic_and_validated():
    a = battery_phantom(32, seed=1)
    b = battery_phantom(32, seed=1)
    np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="size_vox"):
        battery_phantom(8)


def test_calibration_pairs_in_both_directions_with_nm_positions():
    from xrf_sr_kedro.metrics.resolution import pairs_from_features, rayleigh_table

    vol = battery_phantom(size_vox=256, voxel_size_nm=7.5, seed=0)  # the default sample
    feats = vol.metadata["features"]
    discs = [f for f in feats if f["kind"] == "disc_pair"]
    assert len(discs) >= 2 and all(f["direction"] == "axial" for f in discs)
    for f in discs:  # two discs stacked along z, one gap of the same thickness
        w = f["width_vox"]
        z = np.asarray(f["centres_nm"])[:, 0] / 7.5 - 0.5
        _, y, x = (int(v) for v in np.asarray(f["centres_nm"][0]) / 7.5)
        column = vol.data[1, :, y, x] > 0.5
        z0 = int(round(z[0] - (w - 1) / 2))
        assert column[z0 : z0 + 3 * w].tolist() == [True] * w + [False] * w + [True] * w
        assert f["separation_nm"] == pytest.approx(2 * w * 7.5)
    pairs = pairs_from_features(feats)
    assert {p.direction for p in pairs} == {"axial", "equatorial"}
    table = rayleigh_table(vol.data[0], vol.voxel_size_nm, pairs)
    assert table.resolved.all()  # the truth resolves every pair, in both directions
    # the same pairs, offset into a slab, are found in the slab
    start = 150
    slab_pairs = pairs_from_features(feats, offset_nm=(start * 7.5, 0.0, 0.0))
    assert rayleigh_table(vol.data[0, start:], 7.5, slab_pairs).resolved.all()
