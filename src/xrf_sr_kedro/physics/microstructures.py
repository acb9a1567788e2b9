"""Procedural XRF microstructures at the application scale (training data, issue 13).

Each generator draws one 2-D elemental concentration map on a fine grid (default
7.5 nm pixels, the probe's pixel size) from a seeded ``numpy.random.Generator``.
Feature sizes are drawn in nm and converted to pixels, so the same recipe at another
pixel size gives the same physical sample.  Particles are *3-D* ellipsoids or
cylinders projected along the beam (their value is the chord length through the
solid times its concentration), so they have the rounded profiles of a tomographic
projection; the other phases are 2-D.  Edges are anti-aliased (a one-pixel linear
ramp of the signed distance), so no feature is finer than the grid.

Phases, mixed at random per sample by :func:`microstructure_sample`:

* a matrix with a smooth concentration gradient (linear ramp + low-frequency noise);
* layered grains (Voronoi cells, each with its own concentration and, for some,
  a stripe pattern of 15-60 nm layers);
* particles: spheres/ellipsoids, rods (cylinders), faceted (square/hexagonal)
  prisms and core-shell spheres, with log-normal or bimodal sizes (10-300 nm);
* fibres: smooth curved bands 8-40 nm wide;
* pores (zero concentration) and cracks (random-walk polylines, 1-3 px wide).

Several elements are made by giving every phase a random concentration per element
(:func:`microstructure_sample` returns ``(n_elements, H, W)``).

Leakage guard
-------------
The evaluation sample is :func:`xrf_sr_kedro.physics.phantom.battery_phantom`; it
and its seeds must never feed training.  Every generator here seeds its stream with
``[MICROSTRUCTURE_SALT, seed]`` (a stream no phantom seed can reproduce), and
:func:`check_training_source` refuses the phantom generator and any seed listed as
an evaluation or validation seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

#: Salt mixed into every seed, so no microstructure stream equals a phantom stream.
MICROSTRUCTURE_SALT = 0x13_5EED
#: Fine pixel size of the application (nm): 30 nm step / 4.
DEFAULT_PIXEL_SIZE_NM = 7.5


# --------------------------------------------------------------------------- guard


def check_training_source(
    generator: Callable, seeds: Iterable[int], forbidden_seeds: Iterable[int] = ()
) -> None:
    """Refuse the evaluation phantom, and seeds reserved for evaluation/validation.

    Parameters
    ----------
    generator : callable
        The function about to make training samples.
    seeds : iterable of int
        Seeds it is about to be called with.
    forbidden_seeds : iterable of int
        Seeds held out (the validation region's, the evaluation sample's).

    Raises
    ------
    ValueError
        If ``generator`` comes from :mod:`xrf_sr_kedro.physics.phantom` or a seed is
        forbidden.
    """
    module = getattr(generator, "__module__", "") or ""
    if module.endswith("physics.phantom") or getattr(generator, "__name__", "") == "battery_phantom":
        raise ValueError(
            "the evaluation phantom (physics.phantom) must never make training data; "
            "use physics.microstructures"
        )
    clash = sorted(set(int(s) for s in seeds) & set(int(s) for s in forbidden_seeds))
    if clash:
        raise ValueError(
            f"training seeds {clash} are reserved for validation/evaluation; pick others"
        )


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng([MICROSTRUCTURE_SALT, int(seed)])


# --------------------------------------------------------------------------- helpers


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], corr_px: float) -> np.ndarray:
    """Gaussian-filtered white noise, zero mean, unit standard deviation."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), max(corr_px, 0.5), mode="wrap")
    return (n - n.mean()) / (n.std() + 1e-12)


def _gradient(rng: np.random.Generator, shape: tuple[int, int], pixel_size_nm: float) -> np.ndarray:
    """A linear ramp in a random direction plus low-frequency noise, in [0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(a) * xx + np.sin(a) * yy) / max(h, w)
    corr = rng.uniform(100, 400) / pixel_size_nm
    g = ramp * rng.uniform(0.2, 1.0) + 0.15 * _smooth_noise(rng, shape, corr)
    g -= g.min()
    return g / (g.max() + 1e-12)


def _sizes_px(rng: np.random.Generator, n: int, pixel_size_nm: float) -> np.ndarray:
    """Particle radii (px): log-normal or bimodal, 5-150 nm radii."""
    if rng.random() < 0.6:
        med = np.exp(rng.uniform(np.log(8), np.log(60)))
        r = med * np.exp(rng.normal(0, rng.uniform(0.2, 0.7), n))
    else:
        small, large = rng.uniform(5, 15), rng.uniform(30, 100)
        r = np.where(rng.random(n) < 0.7, small, large) * np.exp(rng.normal(0, 0.15, n))
    return np.clip(r, 5, 150) / pixel_size_nm


def _paint_particles(
    rng: np.random.Generator, img: np.ndarray, n: int, pixel_size_nm: float, value: float
) -> None:
    """Add ``n`` projected 3-D particles (in place); their peak value is ~``value``."""
    h, w = img.shape
    radii = _sizes_px(rng, n, pixel_size_nm)
    kinds = rng.choice(4, size=n, p=[0.45, 0.2, 0.2, 0.15])  # ellipsoid, rod, facet, core-shell
    for r, kind in zip(radii, kinds):
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        aspect = rng.uniform(0.5, 1.0) if kind != 1 else rng.uniform(0.15, 0.4)
        ry, rx = r * aspect, r
        ext = int(np.ceil(max(ry, rx))) + 2
        y0, y1 = max(int(cy) - ext, 0), min(int(cy) + ext + 1, h)
        x0, x1 = max(int(cx) - ext, 0), min(int(cx) + ext + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        amp = value * rng.uniform(0.4, 1.0)
        if kind == 2:  # faceted prism (square or hexagon): constant thickness, sharp edges
            k = rng.choice([4, 6])
            ang = np.arctan2(v, u)
            sector = np.cos(np.pi / k) / np.cos((ang % (2 * np.pi / k)) - np.pi / k)
            d = np.hypot(u, v) - r * sector
            img[y0:y1, x0:x1] += amp * np.clip(0.5 - d, 0, 1)
            continue
        rho2 = (u / rx) ** 2 + (v / ry) ** 2
        if kind == 1:  # rod lying in the plane: chord through a cylinder of radius ry
            chord = np.sqrt(np.clip(1 - (v / ry) ** 2, 0, None)) * np.clip(rx - np.abs(u) + 0.5, 0, 1)
        else:
            chord = np.sqrt(np.clip(1 - rho2, 0, None))
        if kind == 3:  # core-shell: the shell's element differs, seen as a dimmer rim
            core = np.sqrt(np.clip(1 - rho2 / 0.36, 0, None)) * 0.6
            chord = chord - rng.uniform(0.3, 1.0) * core
        img[y0:y1, x0:x1] += amp * chord


def _voronoi_grains(
    rng: np.random.Generator, shape: tuple[int, int], pixel_size_nm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Grain labels and a per-pixel layered texture value in [0, 1]."""
    h, w = shape
    grain_nm = rng.uniform(80, 500)
    n = max(2, int(h * w * pixel_size_nm**2 / grain_nm**2))
    pts = rng.uniform(0, [h, w], size=(n, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    # nearest seed via a distance transform of the seed image (fast, exact enough)
    seeds = np.zeros(shape, bool)
    seeds[pts[:, 0].astype(int), pts[:, 1].astype(int)] = True
    _, (iy, ix) = ndimage.distance_transform_edt(~seeds, return_indices=True)
    label_img = np.zeros(shape, np.int64)
    label_img[pts[:, 0].astype(int), pts[:, 1].astype(int)] = np.arange(1, n + 1)
    labels = label_img[iy, ix]
    level = rng.uniform(0, 1, n + 1)[labels]
    layered = rng.random(n + 1) < 0.5
    period_px = rng.uniform(15, 60, n + 1) / pixel_size_nm * 2
    angle = rng.uniform(0, np.pi, n + 1)
    phase = (np.cos(angle[labels]) * xx + np.sin(angle[labels]) * yy) / period_px[labels]
    stripes = (np.sin(2 * np.pi * phase) > 0).astype(np.float32)
    tex = np.where(layered[labels], level * (0.6 + 0.4 * stripes), level)
    return labels, tex.astype(np.float32)


def _polyline_mask(
    rng: np.random.Generator, shape: tuple[int, int], n_lines: int, length_px: float,
    width_px: tuple[float, float], curvature: float,
) -> np.ndarray:
    """Soft mask (0..1) of ``n_lines`` random-walk polylines."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    for _ in range(n_lines):
        n_pts = max(2, int(length_px))
        turn = np.cumsum(rng.normal(0, curvature, n_pts)) + rng.uniform(0, 2 * np.pi)
        y = rng.uniform(0, h) + np.cumsum(np.sin(turn))
        x = rng.uniform(0, w) + np.cumsum(np.cos(turn))
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        line = np.zeros(shape, bool)
        line[y[ok].astype(int), x[ok].astype(int)] = True
        half = rng.uniform(*width_px) / 2
        d = ndimage.distance_transform_edt(~line)
        out = np.maximum(out, np.clip(half + 0.5 - d, 0, 1))
    return out


# --------------------------------------------------------------------------- samples


def microstructure_sample(
    size_px: int = 256,
    pixel_size_nm: float = DEFAULT_PIXEL_SIZE_NM,
    n_elements: int = 2,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """One random multi-phase microstructure, one map per element.

    Parameters
    ----------
    size_px : int
        Map side in fine pixels (>= 16).
    pixel_size_nm : float
        Fine pixel size (nm); feature sizes are drawn in nm.
    n_elements : int
        Elemental maps to return; each phase gets a random concentration per element.
    seed : int or numpy.random.Generator
        Seeds everything (an int is salted with :data:`MICROSTRUCTURE_SALT`).

    Returns
    -------
    ndarray, float32, shape (n_elements, size_px, size_px)
        Non-negative relative concentrations (projected), each map scaled so its
        maximum is 1 (a map that came out empty is returned as zeros).
    """
    if int(size_px) != size_px or size_px < 16:
        raise ValueError(f"size_px must be an integer >= 16, got {size_px!r}")
    if int(n_elements) != n_elements or n_elements < 1:
        raise ValueError(f"n_elements must be a positive integer, got {n_elements!r}")
    if not pixel_size_nm > 0:
        raise ValueError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
    rng = _rng(seed)
    shape = (int(size_px), int(size_px))
    area_um2 = (size_px * pixel_size_nm / 1000.0) ** 2
    maps = np.zeros((int(n_elements),) + shape, np.float32)
    use_grains = rng.random() < 0.5
    grad = _gradient(rng, shape, pixel_size_nm)
    if use_grains:
        _, tex = _voronoi_grains(rng, shape, pixel_size_nm)
    for e in range(int(n_elements)):
        m = rng.uniform(0.0, 0.4) * (0.5 + grad) if rng.random() < 0.7 else np.zeros(shape, np.float32)
        if use_grains:
            m = m + rng.uniform(0.2, 1.0) * tex * (rng.random() < 0.7)
        maps[e] = m
    # particles: per-element amplitudes (an element can be absent from a family)
    for _ in range(rng.integers(1, 4)):
        n = int(rng.uniform(5, 120) * area_um2 / 3.0) + 1
        part = np.zeros(shape, np.float32)
        _paint_particles(rng, part, n, pixel_size_nm, 1.0)
        for e in range(int(n_elements)):
            if rng.random() < 0.75:
                maps[e] += rng.uniform(0.3, 1.5) * part
    if rng.random() < 0.4:  # fibres
        fib = _polyline_mask(
            rng, shape, int(rng.integers(1, 6)), rng.uniform(0.5, 1.5) * size_px,
            (8 / pixel_size_nm, 40 / pixel_size_nm), 0.05,
        )
        fib = ndimage.gaussian_filter(fib, 0.5)
        for e in range(int(n_elements)):
            maps[e] += rng.uniform(0, 1.2) * fib
    if rng.random() < 0.5:  # pores: ellipses with no material
        pores = np.zeros(shape, np.float32)
        _paint_particles(rng, pores, int(rng.integers(2, 30)), pixel_size_nm, 1.0)
        keep = 1.0 - np.clip(pores * 4, 0, 1)
        maps *= keep
    if rng.random() < 0.4:  # cracks
        cr = _polyline_mask(
            rng, shape, int(rng.integers(1, 4)), rng.uniform(0.3, 1.0) * size_px,
            (1.0, 3.0), 0.25,
        )
        maps *= 1.0 - cr
    maps = np.clip(maps, 0, None)
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)


def projected_sample(
    size_px: int = 256,
    pixel_size_nm: float = DEFAULT_PIXEL_SIZE_NM,
    n_elements: int = 2,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """A projection of a thick 3-D sample: stacked slabs inside a pillar, air around.

    ``2..6`` independent :func:`microstructure_sample` slabs are summed (features
    overlap in depth, as in a tomographic projection) and, for most samples,
    multiplied by the chord length through a (slightly tilted) cylindrical pillar
    whose axis runs along the rows, so the map falls to zero in the air beside it.

    Returns
    -------
    ndarray, float32, shape (n_elements, size_px, size_px)
        Non-negative, each map scaled to a maximum of 1.
    """
    rng = _rng(seed)
    n = int(size_px)
    acc = np.zeros((int(n_elements), n, n), np.float32)
    for _ in range(int(rng.integers(2, 7))):
        acc += rng.uniform(0.3, 1.0) * microstructure_sample(n, pixel_size_nm, n_elements, rng)
    if rng.random() < 0.75:
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
        r = rng.uniform(0.25, 0.55) * n
        x0 = n / 2 + rng.uniform(-0.15, 0.15) * n
        dx = xx - x0 - rng.uniform(-0.1, 0.1) * yy
        chord = np.sqrt(np.clip(1 - (dx / r) ** 2, 0, None))
        acc *= chord[None]
    peak = acc.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, acc / np.where(peak > 0, peak, 1), 0).astype(np.float32)


def microstructure_maps(
    n_samples: int,
    size_px: int = 256,
    pixel_size_nm: float = DEFAULT_PIXEL_SIZE_NM,
    n_elements: int = 2,
    seed: int = 0,
    forbidden_seeds: Iterable[int] = (),
    projected_fraction: float = 0.0,
) -> list[np.ndarray]:
    """``n_samples`` microstructures, every element map as one 2-D training map.

    Sample ``k`` uses the stream ``[MICROSTRUCTURE_SALT, seed, k]``, so a validation
    set made with another ``seed`` shares no sample with the training set.

    Parameters
    ----------
    n_samples, size_px, pixel_size_nm, n_elements
        See :func:`microstructure_sample`.
    seed : int
        Set seed; refused if it is in ``forbidden_seeds``.
    forbidden_seeds : iterable of int
        Held-out seeds (validation, evaluation), see :func:`check_training_source`.
    projected_fraction : float
        Fraction of samples made by :func:`projected_sample` (thick sample in a
        pillar) instead of :func:`microstructure_sample` (one slab).

    Returns
    -------
    list of ndarray (size_px, size_px), float32
        ``n_samples * n_elements`` maps; all-zero maps are dropped.
    """
    check_training_source(microstructure_sample, [seed], forbidden_seeds)
    out = []
    for k in range(int(n_samples)):
        rng = np.random.default_rng([MICROSTRUCTURE_SALT, int(seed), k])
        pick = np.random.default_rng([MICROSTRUCTURE_SALT, int(seed), k, 1]).random()
        make = projected_sample if pick < projected_fraction else microstructure_sample
        for m in make(size_px, pixel_size_nm, n_elements, rng):
            if m.max() > 0:
                out.append(m)
    logger.info("microstructures: %d maps of %d px (seed %d)", len(out), size_px, seed)
    return out
