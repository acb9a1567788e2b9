"""A synthetic cycled Zn/MnO2 cathode: ground truth for the XRF tomography pipelines.

The phantom is a cylindrical pillar (axis = rotation axis = slice axis) filled with
ZnMn2O4-like particles in a weakly Zn-bearing binder matrix.  Particles carry Zn and
Mn together (Mn about twice Zn), with Zn-rich and Mn-rich (unreacted MnO2) particles
and a Zn-rich surface shell; they contain internal pores and thin planar cracks of
1-3 voxels.  A calibration band at the top of the pillar holds features of known
size for resolution checks, listed in ``volume.metadata["features"]``: spheres, pairs
of rods parallel to the rotation axis (separated in the slice plane: equatorial) and
pairs of thin discs stacked along the rotation axis (axial).  Every pair carries its
centres in nm (``centres_nm``, ``(z, y, x)`` from the volume's origin corner, voxel
``i`` centred at ``(i + 0.5) * voxel_size_nm``), its separation and the direction
and half-length over which a profile may be averaged
(:func:`xrf_sr_kedro.metrics.resolution.pairs_from_features`).  All of the sample lies inside the cylinder
inscribed in each ``N x N`` slice, so parallel-beam projections see all of it.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from xrf_sr_kedro.types import Volume

logger = logging.getLogger(__name__)

ELEMENTS = ("Zn_K", "Mn_K")
# (Zn, Mn) relative concentrations of the particle families and their probabilities
_FAMILIES = {
    "ZnMn2O4": ((0.5, 1.0), 0.7),
    "Zn_rich": ((0.8, 0.8), 0.15),
    "Mn_rich": ((0.1, 1.0), 0.15),
}
_MATRIX = (0.04, 0.01)  # binder + dried electrolyte residue
SPHERE_DIAMETERS_NM = (15.0, 22.5, 30.0, 45.0, 60.0, 90.0, 120.0)
ROD_WIDTHS_NM = (15.0, 22.5, 30.0, 45.0, 60.0)
DISC_WIDTHS_NM = ROD_WIDTHS_NM  # disc thickness = gap, stacked along the rotation axis


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _box(centre: np.ndarray, half: float, n: int) -> tuple[slice, ...]:
    lo = np.maximum(np.floor(centre - half).astype(int), 0)
    hi = np.minimum(np.ceil(centre + half).astype(int) + 1, n)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _coords(box: tuple[slice, ...], centre: np.ndarray) -> list[np.ndarray]:
    return [
        (np.arange(sl.start, sl.stop, dtype=np.float32) - np.float32(c)).reshape(
            [-1 if k == i else 1 for k in range(3)]
        )
        for i, (sl, c) in enumerate(zip(box, centre))
    ]


def battery_phantom(size_vox: int = 256, voxel_size_nm: float = 7.5, seed: int = 0) -> Volume:
    """Ground-truth Zn/Mn volume of a cycled Zn/MnO2 cathode pillar.

    Parameters
    ----------
    size_vox : int
        Edge ``N`` of the cubic volume in voxels (at least 32).
    voxel_size_nm : float
        Voxel edge (nm); the known-size features are laid out in nm, so features
        smaller than 1.5 voxels or too large for the pillar are left out.
    seed : int
        Seed of the random particle packing.

    Returns
    -------
    Volume
        ``data`` shape ``(2, N, N, N)`` = (element, slice along the rotation axis,
        y, x), elements ``("Zn_K", "Mn_K")``, relative concentration (ZnMn2O4 Mn =
        1).  ``metadata`` holds ``features`` (known-size features with their size in
        nm and centre in voxels), ``particles`` (count and families), the pillar
        radius and the seed.
    """
    if isinstance(size_vox, bool) or int(size_vox) != size_vox or size_vox < 32:
        raise ValueError(f"size_vox must be an integer >= 32, got {size_vox!r}")
    voxel_size_nm = float(voxel_size_nm)
    if not np.isfinite(voxel_size_nm) or voxel_size_nm <= 0:
        raise ValueError(f"voxel_size_nm must be positive, got {voxel_size_nm!r}")
    n = int(size_vox)
    rng = np.random.default_rng(seed)
    zn = np.zeros((n, n, n), dtype=np.float32)
    mn = np.zeros((n, n, n), dtype=np.float32)
    c_xy = (n - 1) / 2.0
    r_pillar = 0.42 * n
    z_lo, z_part_hi, z_feat_hi = 0.05 * n, 0.78 * n, 0.95 * n

    # pillar matrix (binder + electrolyte residue)
    yy = (np.arange(n, dtype=np.float32) - c_xy)[:, None]
    xx = (np.arange(n, dtype=np.float32) - c_xy)[None, :]
    disk = (yy**2 + xx**2) <= r_pillar**2
    zs = slice(int(math.ceil(z_lo)), int(z_feat_hi))
    zn[zs][:, disk] = _MATRIX[0]
    mn[zs][:, disk] = _MATRIX[1]

    # --- particles ---------------------------------------------------------------
    target_fraction = 0.45
    zone_volume = math.pi * r_pillar**2 * (z_part_hi - z_lo)
    filled = 0.0
    placed: list[tuple[np.ndarray, float]] = []
    families = list(_FAMILIES)
    probs = np.array([_FAMILIES[f][1] for f in families])
    counts = {f: 0 for f in families}
    n_pores = n_cracks = 0
    attempts = 0
    while filled < target_fraction * zone_volume and attempts < 4000:
        attempts += 1
        radius = rng.uniform(0.06, 0.14) * n
        axes = radius * rng.uniform(0.8, 1.2, 3)
        half = float(axes.max())
        rho = rng.uniform(0.0, max(r_pillar - half - 1.0, 0.0))
        phi = rng.uniform(0, 2 * math.pi)
        zc = rng.uniform(z_lo + half, z_part_hi - half) if z_part_hi - z_lo > 2 * half else None
        if zc is None or rho + half > r_pillar - 1.0:
            continue
        centre = np.array([zc, c_xy + rho * math.sin(phi), c_xy + rho * math.cos(phi)])
        if any(np.linalg.norm(centre - c) < 0.8 * (half + h) for c, h in placed):
            continue
        placed.append((centre, half))
        family = families[int(rng.choice(len(families), p=probs))]
        counts[family] += 1
        (zn0, mn0) = np.array(_FAMILIES[family][0]) * rng.uniform(0.9, 1.1)

        box = _box(centre, half + 1.0, n)
        dz, dy, dx = _coords(box, centre)
        rot = _random_rotation(rng).astype(np.float32)
        # squared normalised radius in the particle frame
        q = [rot[0, k] * dz + rot[1, k] * dy + rot[2, k] * dx for k in range(3)]
        rho2 = sum((qk / np.float32(a)) ** 2 for qk, a in zip(q, axes))
        inside = rho2 <= 1.0
        shell = 1.0 + 0.6 * np.clip(rho2, 0, 1) ** 2  # Zn enriched towards the surface
        solid = inside.copy()

        # internal pores (radius 1.5-5 voxels)
        for _ in range(int(rng.integers(2, 7))):
            pr_max = max(min(5.0, 0.3 * radius), 1.5)
            pr = rng.uniform(1.5, pr_max) if pr_max > 1.5 else 1.5
            off = rng.standard_normal(3)
            off *= rng.uniform(0, 0.6) * radius / np.linalg.norm(off)
            pc = centre + off
            pb = tuple(
                slice(max(a.start, b.start), min(a.stop, b.stop))
                for a, b in zip(_box(pc, pr + 1.0, n), box)
            )
            if any(sl.stop <= sl.start for sl in pb):
                continue
            pz, py, px = _coords(pb, pc)
            sub = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(pb, box))
            solid[sub] &= (pz**2 + py**2 + px**2) > pr**2
            n_pores += 1

        # thin planar cracks, 1-3 voxels wide, over part of the particle
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            normal = rng.standard_normal(3)
            normal /= np.linalg.norm(normal)
            width = float(rng.integers(1, 4))
            off = rng.standard_normal(3) * 0.2 * radius
            dist = normal[0] * (dz - off[0]) + normal[1] * (dy - off[1]) + normal[2] * (dx - off[2])
            along2 = (dz - off[0]) ** 2 + (dy - off[1]) ** 2 + (dx - off[2]) ** 2 - dist**2
            extent = rng.uniform(0.5, 1.2) * radius
            solid &= ~((np.abs(dist) < width / 2.0) & (along2 < extent**2))
            n_cracks += 1

        zn_box, mn_box = zn[box], mn[box]
        zn_box[inside] = 0.0  # particle replaces the matrix (pores and cracks are empty)
        mn_box[inside] = 0.0
        zn_box[solid] = (zn0 * shell)[solid]
        mn_box[solid] = mn0
        filled += float(inside.sum())

    # --- calibration band: spheres and rod pairs of known size ----------------
    features: list[dict] = []
    z_mid = 0.5 * (z_part_hi + z_feat_hi)
    band_half = 0.5 * (z_feat_hi - z_part_hi) - 1.0
    comp = (0.5, 1.0)

    def fits(y: float, x: float, half: float) -> bool:
        return math.hypot(y - c_xy, x - c_xy) + half * math.sqrt(2) <= r_pillar - 1.0

    # spheres in a row along x at y = c - 0.15 N
    y_row = c_xy - 0.15 * n
    x_cursor = c_xy - math.sqrt(max(r_pillar**2 - (0.15 * n) ** 2, 0.0)) + 2.0
    max_sphere_r = 0.0
    for d_nm in SPHERE_DIAMETERS_NM:
        d_vox = d_nm / voxel_size_nm
        if d_vox < 1.5 or d_vox / 2 > band_half:
            continue
        x_c = x_cursor + d_vox / 2.0
        while not fits(y_row, x_c, d_vox / 2.0) and x_c < c_xy:
            x_c += 1.0
        if not fits(y_row, x_c, d_vox / 2.0):
            break
        centre = np.array([z_mid, y_row, x_c])
        box = _box(centre, d_vox / 2 + 1, n)
        dz, dy, dx = _coords(box, centre)
        ball = dz**2 + dy**2 + dx**2 <= (d_vox / 2.0) ** 2
        zn[box][ball], mn[box][ball] = comp
        features.append(
            {"kind": "sphere", "diameter_nm": d_nm, "diameter_vox": d_vox,
             "centre_vox": [float(v) for v in centre]}
        )
        x_cursor = x_c + d_vox / 2.0 + max(d_vox, 4.0)
        max_sphere_r = max(max_sphere_r, d_vox / 2.0)

    sphere_row_end = x_cursor
    # rod pairs parallel to the rotation axis at y = c + 0.15 N: width w, gap w
    y_row = c_xy + 0.15 * n
    x_cursor = c_xy - math.sqrt(max(r_pillar**2 - (0.15 * n) ** 2, 0.0)) + 2.0
    zr = slice(int(round(z_mid - band_half)), int(round(z_mid + band_half)) + 1)
    z_prof = 0.5 * (z_mid + max_sphere_r + 1.0 + zr.stop)  # profile window of the rods
    z_half = max(0.5 * (zr.stop - z_mid - max_sphere_r - 1.0) - 1.0, 0.5)
    for w_nm in ROD_WIDTHS_NM:
        w = int(round(w_nm / voxel_size_nm))
        if w < 1 or abs(w * voxel_size_nm - w_nm) > 0.25 * voxel_size_nm:
            continue  # not representable on this voxel grid
        x0 = int(math.ceil(x_cursor))
        while not fits(y_row, x0 + 1.5 * w, 1.5 * w) and x0 < c_xy:
            x0 += 1
        if not fits(y_row, x0 + 1.5 * w, 1.5 * w):
            break
        y0 = int(round(y_row - w / 2.0))
        for x_start in (x0, x0 + 2 * w):
            zn[zr, y0 : y0 + w, x_start : x_start + w] = comp[0]
            mn[zr, y0 : y0 + w, x_start : x_start + w] = comp[1]
        yc = y0 + w / 2.0  # continuous coordinates (voxel i spans [i, i + 1))
        features.append(
            {"kind": "rod_pair", "width_nm": w * voxel_size_nm, "gap_nm": w * voxel_size_nm,
             "width_vox": w, "axis": "slice",
             "centre_vox": [float(z_mid), float(y0 + (w - 1) / 2.0), float(x0 + 1.5 * w - 0.5)],
             "slices": [zr.start, zr.stop],
             "direction": "equatorial", "separation_nm": 2 * w * voxel_size_nm,
             # profiles above the sphere row (spheres end 8 voxels from z_mid at most)
             "centres_nm": [[z_prof * voxel_size_nm, yc * voxel_size_nm, (x0 + 0.5 * w) * voxel_size_nm],
                            [z_prof * voxel_size_nm, yc * voxel_size_nm, (x0 + 2.5 * w) * voxel_size_nm]],
             "along": [1.0, 0.0, 0.0], "half_length_nm": z_half * voxel_size_nm}
        )
        x_cursor = x0 + 3 * w + max(2 * w, 4)

    _add_disc_pairs(
        zn, mn, features, comp, z_mid, band_half, c_xy, r_pillar, max(x_cursor, sphere_row_end), voxel_size_nm
    )

    logger.info(
        "battery phantom %d^3: %d particles, %d pores, %d cracks, %d features",
        n, len(placed), n_pores, n_cracks, len(features),
    )
    return Volume(
        data=np.stack([zn, mn]),
        voxel_size_nm=voxel_size_nm,
        elements=ELEMENTS,
        units="relative concentration",
        metadata={
            "kind": "battery_phantom",
            "seed": int(seed),
            "pillar_radius_vox": r_pillar,
            "particles": {"count": len(placed), "families": counts,
                          "n_pores": n_pores, "n_cracks": n_cracks},
            "features": features,
        },
    )


def _add_disc_pairs(
    zn: np.ndarray, mn: np.ndarray, features: list[dict], comp: tuple[float, float],
    z_mid: float, band_half: float, c_xy: float, r_pillar: float, x_min: float,
    voxel_size_nm: float,
) -> None:
    """Pairs of square discs of thickness ``w`` and gap ``w`` stacked along the rotation
    axis, on the slice centre row ``y = c`` from the pillar's right edge leftwards, to
    the right of ``x_min`` (where the rod and sphere rows end), so that near 0 degrees
    (rays along y) their projections overlap no other feature."""
    x_right = c_xy + r_pillar - 2.0
    for w_nm in DISC_WIDTHS_NM:
        w = int(round(w_nm / voxel_size_nm))
        if w < 1 or abs(w * voxel_size_nm - w_nm) > 0.25 * voxel_size_nm or 1.5 * w > band_half:
            continue
        side = 2 * w + 4  # disc edge (voxels)
        x1 = int(math.floor(x_right))
        x0 = x1 - side
        y0 = int(round(c_xy - side / 2.0))
        if x0 < x_min + 2 or math.hypot(side / 2.0, max(abs(x0 - c_xy), abs(x1 - c_xy))) > r_pillar - 1.0:
            break
        z0 = int(round(z_mid - 1.5 * w))
        for z_start in (z0, z0 + 2 * w):
            zn[z_start : z_start + w, y0 : y0 + side, x0:x1] = comp[0]
            mn[z_start : z_start + w, y0 : y0 + side, x0:x1] = comp[1]
        yc, xc = (y0 + side / 2.0) * voxel_size_nm, (x0 + side / 2.0) * voxel_size_nm
        features.append(
            {"kind": "disc_pair", "width_nm": w * voxel_size_nm, "gap_nm": w * voxel_size_nm,
             "width_vox": w, "side_vox": side, "direction": "axial",
             "separation_nm": 2 * w * voxel_size_nm,
             "centre_vox": [float(z0 + 1.5 * w - 0.5), float(y0 + (side - 1) / 2.0), float(x0 + (side - 1) / 2.0)],
             "centres_nm": [[(z0 + 0.5 * w) * voxel_size_nm, yc, xc], [(z0 + 2.5 * w) * voxel_size_nm, yc, xc]],
             "along": [0.0, 0.0, 1.0], "half_length_nm": (side / 2.0 - 1.0) * voxel_size_nm}
        )
        x_right = x0 - max(w, 3)
