"""Random 3-D particle packings in a pillar, projected like tomographic data (issue 13).

Training maps made the way the evaluation's projections are made: a 3-D volume of
elemental concentrations on the fine grid (7.5 nm voxels) is projected at random
angles with the project's parallel-beam projector
(:func:`xrf_sr_kedro.tomo.reproject.reproject`) and each projection is cropped to
the HR patch size.  The maps then go through the same fly-scan path as every other
application pair (:func:`~xrf_sr_kedro.physics.application_pairs.make_application_pairs`).

A volume (:func:`particle_volume`) is ``(n_elements, n_slices, N, N)`` with the
slices along the rotation axis, as the projector expects:

* a cylindrical pillar along the rotation axis (radius 30-49 % of ``N``, a little off
  centre, sometimes ending inside the volume), inside the cylinder inscribed in every
  slice so every projection sees all of it, with air around it;
* a matrix phase filling the pillar (its own composition, 1-30 % of the particles'
  level, with a smooth gradient along the axis or the radius);
* 2-4 compositions ("phases": several concentration levels per element, an element
  absent from some);
* particle families, mixed with random weights per volume: spheres, ellipsoids
  (random orientation), rods (cylinders in any direction), core-shell particles
  (sharp or graded core of another composition) and agglomerates (clusters of small
  spheres);
* radii log-normal around a median drawn per volume, 7.5-250 nm (15-500 nm across),
  packing fractions 5-60 % of the pillar (limited by ``max_particles``);
* pores (spherical voids 7.5-60 nm in radius) and thin planar cracks (1-3 voxels).

Edges are anti-aliased (occupancy ramps over about one voxel), so no feature is
finer than the grid.  Particles replace what is below them (no sum of overlaps).

This is an independent generator: it shares no code, family table or seed stream
with the evaluation sample :func:`xrf_sr_kedro.physics.phantom.battery_phantom`.
Every stream is ``default_rng([PACKING_SALT, seed, k])`` and
:func:`packing_projection_maps` calls
:func:`~xrf_sr_kedro.physics.microstructures.check_training_source`, which refuses
the phantom generator and held-out (validation) seeds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import numpy as np

from xrf_sr_kedro.physics.microstructures import check_training_source
from xrf_sr_kedro.validation import positive_int

logger = logging.getLogger(__name__)

#: Salt mixed into every seed: no packing stream equals a phantom or microstructure stream.
PACKING_SALT = 0x3D_9ACC
#: Fine voxel size of the application (nm): 30 nm step / 4.
DEFAULT_VOXEL_SIZE_NM = 7.5
#: Projections drawn from each packing volume (random angles), one source for every caller.
DEFAULT_ANGLES_PER_VOLUME = 4
#: Particle families and their meaning (module docstring).
FAMILIES = ("sphere", "ellipsoid", "rod", "core_shell", "agglomerate")
#: Smallest and largest particle radius (nm).
RADIUS_RANGE_NM = (7.5, 250.0)


# --------------------------------------------------------------------------- geometry


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation matrix."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def _box(centre: np.ndarray, half: float, shape: tuple[int, ...]) -> tuple[slice, ...] | None:
    """Index box of half-width ``half`` (voxels) around ``centre``; None if empty."""
    lo = np.maximum(np.floor(centre - half).astype(int), 0)
    hi = np.minimum(np.ceil(centre + half).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _offsets(box: tuple[slice, ...], centre: np.ndarray) -> list[np.ndarray]:
    """Voxel-centre offsets from ``centre`` along each axis, broadcastable in the box."""
    return [
        (np.arange(sl.start, sl.stop, dtype=np.float32) + np.float32(0.5) - np.float32(c)).reshape(
            [-1 if k == i else 1 for k in range(3)]
        )
        for i, (sl, c) in enumerate(zip(box, centre))
    ]


def _ellipsoid_occupancy(
    d: list[np.ndarray], axes_vox: np.ndarray, rot: np.ndarray | None, soft: bool = True
) -> np.ndarray:
    """Soft occupancy (0..1) of an ellipsoid with semi-axes ``axes_vox`` (rotated by ``rot``).

    The signed distance is approximated by ``(1 - rho) * min(axes)``; the edge is a
    one-voxel linear ramp.  ``soft=False`` returns the normalised radius ``rho``
    instead (1 on the surface).
    """
    if rot is None:
        q = d
    else:
        q = [rot[0, k] * d[0] + rot[1, k] * d[1] + rot[2, k] * d[2] for k in range(3)]
    rho = np.sqrt(sum((qk / np.float32(a)) ** 2 for qk, a in zip(q, axes_vox)))
    if not soft:
        return rho
    return np.clip((1.0 - rho) * np.float32(min(axes_vox)) + 0.5, 0.0, 1.0)


def _rod_occupancy(
    d: list[np.ndarray], radius_vox: float, half_length_vox: float, axis: np.ndarray
) -> np.ndarray:
    """Soft occupancy of a flat-ended cylinder along the unit vector ``axis``."""
    along = axis[0] * d[0] + axis[1] * d[1] + axis[2] * d[2]
    radial = np.sqrt(np.clip(d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - along**2, 0, None))
    a_r = np.clip(radius_vox - radial + 0.5, 0.0, 1.0)
    a_l = np.clip(half_length_vox - np.abs(along) + 0.5, 0.0, 1.0)
    return a_r * a_l


def _paint(vol: np.ndarray, box: tuple[slice, ...], occ: np.ndarray, comp: np.ndarray) -> None:
    """Replace the volume by composition ``comp`` (per element) where ``occ`` says, in place."""
    for e, c in enumerate(comp):
        sub = vol[(e, *box)]
        sub += occ * (np.float32(c) - sub)


def _carve(vol: np.ndarray, box: tuple[slice, ...], occ: np.ndarray) -> None:
    """Empty the volume (every element) where ``occ`` says (a pore or a crack), in place."""
    vol[(slice(None), *box)] *= 1.0 - occ


# --------------------------------------------------------------------------- sample


def _compositions(rng: np.random.Generator, n_phases: int, n_elements: int) -> np.ndarray:
    """``(n_phases, n_elements)`` concentrations, log-uniform 0.1-1, some elements absent."""
    comp = np.exp(rng.uniform(np.log(0.1), 0.0, (n_phases, n_elements)))
    comp *= rng.random((n_phases, n_elements)) > 0.2
    for p in range(n_phases):  # every phase holds at least one element
        if not comp[p].any():
            comp[p, rng.integers(n_elements)] = rng.uniform(0.3, 1.0)
    return comp.astype(np.float32)


def _radii_vox(rng: np.random.Generator, n: int, voxel_size_nm: float) -> np.ndarray:
    """Particle radii (voxels), 7.5-250 nm: log-normal around a per-volume median
    (15-200 nm), or for a third of the volumes bimodal (large 60-200 nm particles with
    small 7.5-30 nm ones)."""
    lo, hi = RADIUS_RANGE_NM
    if rng.random() < 2 / 3:
        median = math.exp(rng.uniform(math.log(15.0), math.log(200.0)))
        r = median * np.exp(rng.normal(0.0, rng.uniform(0.15, 0.6), n))
    else:
        small = math.exp(rng.uniform(math.log(7.5), math.log(30.0)))
        large = math.exp(rng.uniform(math.log(60.0), math.log(200.0)))
        r = np.where(rng.random(n) < rng.uniform(0.1, 0.5), large, small)
        r = r * np.exp(rng.normal(0.0, 0.2, n))
    return np.clip(r, lo, hi) / voxel_size_nm


def _place_particle(
    rng: np.random.Generator, vol: np.ndarray, family: str, r: float, centre: np.ndarray,
    comp: np.ndarray, other: np.ndarray,
) -> float:
    """Paint one particle of ``family`` (radius ``r`` voxels); returns its volume (voxels)."""
    shape = vol.shape[1:]
    if family == "agglomerate":  # a cluster of small spheres
        k = int(rng.integers(4, 20))
        sub_r = np.maximum(r * rng.uniform(0.2, 0.45, k), 1.0)
        total = 0.0
        for rk in sub_r:
            c = centre + rng.normal(0.0, 0.5 * r, 3)
            box = _box(c, rk + 1.0, shape)
            if box is not None:
                occ = _ellipsoid_occupancy(_offsets(box, c), np.array([rk] * 3), None)
                _paint(vol, box, occ, comp * np.float32(rng.uniform(0.85, 1.15)))
                total += 4.19 * rk**3
        return total
    if family == "rod":
        radius = max(r * rng.uniform(0.2, 0.5), 1.0)
        half_length = r * rng.uniform(1.0, 3.0)
        axis = rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        box = _box(centre, half_length + radius + 1.0, shape)
        if box is None:
            return 0.0
        _paint(vol, box, _rod_occupancy(_offsets(box, centre), radius, half_length, axis), comp)
        return 2 * math.pi * radius**2 * half_length
    if family == "sphere":
        axes, rot = np.array([r, r, r]), None
    else:
        axes, rot = r * np.array([1.0, *rng.uniform(0.4, 1.0, 2)]), _rotation(rng)
    box = _box(centre, float(axes.max()) + 1.0, shape)
    if box is None:
        return 0.0
    d = _offsets(box, centre)
    _paint(vol, box, _ellipsoid_occupancy(d, axes, rot), comp)
    if family == "core_shell":
        f = rng.uniform(0.4, 0.8)
        if rng.random() < 0.5:  # sharp core of another composition
            core = _ellipsoid_occupancy(d, axes * f, rot)
        else:  # graded: the core composition fades linearly towards the shell
            core = np.clip(1.0 - _ellipsoid_occupancy(d, axes * f, rot, soft=False), 0.0, 1.0)
        _paint(vol, box, core, other)
    return 4.19 * float(np.prod(axes))


def particle_volume(
    n_slices: int = 128,
    size_vox: int = 192,
    voxel_size_nm: float = DEFAULT_VOXEL_SIZE_NM,
    n_elements: int = 2,
    seed: int | np.random.Generator = 0,
    max_particles: int = 500,
) -> np.ndarray:
    """One random particle packing in a pillar, one volume per element.

    Parameters
    ----------
    n_slices : int
        Slices along the rotation axis (the projections' rows).
    size_vox : int
        Edge ``N`` of every slice (voxels); the projections have ``N`` columns.
    voxel_size_nm : float
        Voxel edge (nm); every size is drawn in nm.
    n_elements : int
        Element volumes to return.
    seed : int or numpy.random.Generator
        Seeds everything (an int is salted with :data:`PACKING_SALT`).
    max_particles : int
        Most particles placed (bounds the cost of dense packings of small particles).

    Returns
    -------
    ndarray, float32, shape (n_elements, n_slices, size_vox, size_vox)
        Relative concentrations in [0, ~1.15], zero outside the pillar, all inside
        the cylinder inscribed in every slice.
    """
    n_z = positive_int("n_slices", n_slices, minimum=8)
    n = positive_int("size_vox", size_vox, minimum=16)
    n_el = positive_int("n_elements", n_elements)
    if not voxel_size_nm > 0:
        raise ValueError(f"voxel_size_nm must be positive, got {voxel_size_nm!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([PACKING_SALT, int(seed)])
    vol = np.zeros((n_el, n_z, n, n), np.float32)

    # pillar: radius and centre so that it lies inside the inscribed cylinder
    r_pillar = rng.uniform(0.30, 0.49) * n
    slack = 0.49 * n - r_pillar
    cy, cx = n / 2 + rng.uniform(-slack, slack, 2) / math.sqrt(2)
    zz = (np.arange(n_z, dtype=np.float32) + 0.5)[:, None, None]
    yy = (np.arange(n, dtype=np.float32) + 0.5 - cy)[None, :, None]
    xx = (np.arange(n, dtype=np.float32) + 0.5 - cx)[None, None, :]
    radial = np.sqrt(yy**2 + xx**2)
    pillar = np.clip(r_pillar - radial + 0.5, 0.0, 1.0)  # (1, n, n)
    if rng.random() < 0.25:  # the pillar's top (or bottom) inside the volume
        z_end = rng.uniform(0.4, 0.9) * n_z
        cap = np.clip(z_end - zz + 0.5, 0.0, 1.0)
        pillar = pillar * (cap if rng.random() < 0.5 else cap[::-1])
    else:
        pillar = np.broadcast_to(pillar, (n_z, n, n))

    phases = _compositions(rng, int(rng.integers(2, 5)), n_el)
    # matrix: its own composition at 1-30 % of the particles' level, with a gradient
    matrix = _compositions(rng, 1, n_el)[0] * np.float32(math.exp(rng.uniform(math.log(0.01), math.log(0.3))))
    if rng.random() < 0.5:
        grad = 1.0 + rng.uniform(-0.5, 0.5) * (zz / n_z - 0.5) * 2
    else:
        grad = 1.0 + rng.uniform(-0.5, 0.5) * (radial / r_pillar - 0.5) * 2
    grad = np.clip(grad, 0.0, None).astype(np.float32)
    for e in range(n_el):
        vol[e] = matrix[e] * grad

    # particles
    weights = rng.dirichlet(np.ones(len(FAMILIES)) * 0.7)
    fraction = rng.uniform(0.05, 0.6)
    pillar_vox = math.pi * r_pillar**2 * n_z
    radii = _radii_vox(rng, max_particles, voxel_size_nm)
    filled = 0.0
    n_placed = 0
    for r in radii:
        if filled >= fraction * pillar_vox:
            break
        rho = r_pillar * math.sqrt(rng.random())  # uniform over the disc
        phi = rng.uniform(0, 2 * math.pi)
        centre = np.array([rng.uniform(0, n_z), cy + rho * math.sin(phi), cx + rho * math.cos(phi)])
        family = FAMILIES[int(rng.choice(len(FAMILIES), p=weights))]
        p, q = rng.choice(len(phases), 2, replace=len(phases) < 2)
        comp = phases[p] * np.float32(rng.uniform(0.85, 1.15))
        filled += _place_particle(rng, vol, family, float(r), centre, comp, phases[q])
        n_placed += 1

    # pores and cracks: voids in particles and matrix alike
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(5, 60))):
            pr = math.exp(rng.uniform(math.log(7.5), math.log(60.0))) / voxel_size_nm
            c = np.array([rng.uniform(0, n_z), rng.uniform(0, n), rng.uniform(0, n)])
            box = _box(c, pr + 1.0, vol.shape[1:])
            if box is not None:
                _carve(vol, box, _ellipsoid_occupancy(_offsets(box, c), np.array([pr] * 3), None))
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 6))):
            extent = rng.uniform(5, 40)
            c = np.array([rng.uniform(0, n_z), rng.uniform(0, n), rng.uniform(0, n)])
            box = _box(c, extent + 1.0, vol.shape[1:])
            if box is None:
                continue
            d = _offsets(box, c)
            normal = rng.standard_normal(3)
            normal /= np.linalg.norm(normal)
            occ = _rod_occupancy(d, extent, rng.uniform(0.5, 1.5), normal)  # a thin disc
            _carve(vol, box, occ)

    vol *= pillar[None]
    logger.debug("packing: %d particles, fraction %.2f of the pillar", n_placed, filled / pillar_vox)
    return np.clip(vol, 0.0, None)


# --------------------------------------------------------------------------- projections


def project_particle_volume(
    volume: np.ndarray, angles_deg: Iterable[float], voxel_size_nm: float = DEFAULT_VOXEL_SIZE_NM
) -> np.ndarray:
    """Parallel-beam projections of every element volume (the project's projector).

    Parameters
    ----------
    volume : ndarray, shape (n_elements, n_slices, N, N)
        Element volumes (:func:`particle_volume`).
    angles_deg : iterable of float
        Projection angles (degrees, :mod:`xrf_sr_kedro.tomo.projector`'s convention).
    voxel_size_nm : float
        Voxel edge (nm).

    Returns
    -------
    ndarray, float32, shape (n_angles, n_elements, n_slices, N)
        Line integrals in relative concentration x nm (voxel sums times
        ``voxel_size_nm``, as :func:`xrf_sr_kedro.tomo.reproject.project_volume`),
        clipped at zero (interpolation round-off).
    """
    from xrf_sr_kedro.tomo.reproject import reproject

    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 4:
        raise ValueError(f"volume must have shape (n_elements, n_slices, N, N), got {vol.shape}")
    angles = np.asarray(list(angles_deg), dtype=np.float64)
    proj = np.stack(
        [reproject(v, angles, slice_batch=v.shape[0], progress=False) for v in vol], axis=1
    )
    return np.clip(proj * np.float32(voxel_size_nm), 0.0, None)


def packing_projection_maps(
    n_volumes: int,
    angles_per_volume: int = DEFAULT_ANGLES_PER_VOLUME,
    size_px: int = 128,
    size_vox: int | None = None,
    voxel_size_nm: float = DEFAULT_VOXEL_SIZE_NM,
    n_elements: int = 2,
    seed: int = 0,
    forbidden_seeds: Iterable[int] = (),
) -> list[np.ndarray]:
    """Projection maps of ``n_volumes`` random packings, cropped to ``size_px``.

    Volume ``k`` uses the stream ``[PACKING_SALT, seed, k]``: :func:`particle_volume`
    with ``size_px`` slices and ``size_vox`` (default ``1.5 * size_px``, rounded to
    a multiple of 8) voxels across, projected at ``angles_per_volume`` angles drawn
    uniformly in [-90, 90) degrees; each element's projection is cropped to
    ``size_px`` columns at a random offset and scaled to a maximum of 1.

    Returns
    -------
    list of ndarray (size_px, size_px), float32
        Up to ``n_volumes * angles_per_volume * n_elements`` maps (all-zero ones dropped).

    Raises
    ------
    ValueError
        If ``seed`` is in ``forbidden_seeds`` (the validation region's).
    """
    check_training_source(particle_volume, [seed], forbidden_seeds)
    size_px = positive_int("size_px", size_px, minimum=8)
    n_angles = positive_int("angles_per_volume", angles_per_volume)
    n = int(8 * math.ceil(1.5 * size_px / 8)) if size_vox is None else int(size_vox)
    if n < size_px:
        raise ValueError(f"size_vox ({n}) must be at least size_px ({size_px})")
    out = []
    for k in range(int(n_volumes)):
        rng = np.random.default_rng([PACKING_SALT, int(seed), k])
        vol = particle_volume(size_px, n, voxel_size_nm, n_elements, rng)
        proj = project_particle_volume(vol, rng.uniform(-90.0, 90.0, n_angles), voxel_size_nm)
        for a in range(n_angles):
            c0 = int(rng.integers(0, n - size_px + 1))
            for m in proj[a, :, :, c0 : c0 + size_px]:
                peak = float(m.max())
                if peak > 0:
                    out.append((m / peak).astype(np.float32))
    logger.info("particle packings: %d maps of %d px from %d volumes (seed %d)",
                len(out), size_px, n_volumes, seed)
    return out
