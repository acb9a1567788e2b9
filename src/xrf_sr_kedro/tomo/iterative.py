"""Iterative reconstruction: SIRT, MLEM/OSEM and OSPML with a quadratic penalty.

All algorithms work on a batch of slices at once (sinograms of shape
``(n_slices, n_angles, n_det)``), keep the estimate non-negative, show a
progress bar, and run unchanged on CPU or GPU: the device is the
projector's.  :func:`xrf_sr_kedro.tomo.recon.reconstruct` is the entry point
for whole projection stacks in Data Exchange order.

Memory: :func:`ospml_quad` updates the estimate in place, a chunk of slices at a
time (:data:`UPDATE_CHUNK_BYTES`), so an iteration holds two volumes of the batch
(the estimate and one back-projection) plus the projector's buffers; the ordered-
subset methods report progress per subset update (``iterations x subsets``), so a
long slab logs its progress with the time left every ``log_every_s`` seconds.

Ordered subsets are interleaved: subset ``k`` of ``n_subsets`` holds the angles
``k, k + n_subsets, k + 2 n_subsets, ...``, which keeps each subset spread over
the full angular range.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from xrf_sr_kedro.progress import Progress
from xrf_sr_kedro.progress import progress as _progress

from .projector import ParallelBeamProjector

logger = logging.getLogger(__name__)

__all__ = [
    "sirt",
    "osem",
    "ospml_quad",
    "penalised_objective",
    "check_n_iter",
    "check_nonnegative",
    "subset_indices",
    "ALGORITHMS",
    "DEFAULT_N_ITER",
    "DEFAULT_N_SUBSETS",
    "DEFAULT_REG_PAR",
]

ALGORITHMS = ("fbp", "sirt", "osem", "ospml_quad")
Algorithm = Literal["fbp", "sirt", "osem", "ospml_quad"]
DEFAULT_N_ITER = {"fbp": 0, "sirt": 100, "osem": 10, "ospml_quad": 10}
DEFAULT_N_SUBSETS = 10
# One source for the quadratic penalty weight: the pipeline's parameters file and
# ReconSettings use the same 0.01 (counts-scale data of the paper's maps).
DEFAULT_REG_PAR = 0.01

# Neighbour weights of TomoPy's ospml_quad for interior pixels: the 4 face
# neighbours weigh 1 and the 4 diagonal ones 1/sqrt(2), normalised to sum 1.
_W_TOTAL = 4.0 + 4.0 / math.sqrt(2.0)
_W_FACE = 1.0 / _W_TOTAL
_W_DIAG = 1.0 / math.sqrt(2.0) / _W_TOTAL


def _prepare(sino: Any, projector: ParallelBeamProjector) -> torch.Tensor:
    s = torch.as_tensor(sino)
    expected = (projector.n_angles, projector.n_det)
    if s.ndim != 3 or tuple(s.shape[1:]) != expected:
        raise ValueError(
            f"sino must have shape (n_slices, {expected[0]}, {expected[1]}) to match the "
            f"projector, got {tuple(s.shape)}"
        )
    return s.to(device=projector.device, dtype=projector.dtype)


def check_n_iter(n_iter: int) -> int:
    """``n_iter`` as an int; ValueError unless it is a non-negative integer."""
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    return int(n_iter)


def subset_indices(n_angles: int, n_subsets: int) -> list[np.ndarray]:
    """Interleaved angle indices of each ordered subset (ValueError for a bad count)."""
    if int(n_subsets) != n_subsets or not 1 <= n_subsets <= n_angles:
        raise ValueError(
            f"n_subsets must be an integer between 1 and n_angles={n_angles}, got {n_subsets!r}"
        )
    return [np.arange(k, n_angles, int(n_subsets)) for k in range(int(n_subsets))]


def check_nonnegative(s: torch.Tensor, algorithm: str) -> None:
    """ValueError naming ``algorithm`` when the data ``s`` has negative values."""
    if bool((s < 0).any()):
        n_neg = int((s < 0).sum())
        raise ValueError(
            f"{algorithm} is a maximum-likelihood (Poisson) method and needs non-negative "
            f"data, but the sinogram has {n_neg} negative value(s) (min {float(s.min()):.4g}); "
            "clip them (np.clip(data, 0, None), or clip_negative=True in tomo.recon.reconstruct) or use "
            "'sirt' / 'fbp'"
        )


def _bar(n_iter: int, desc: str, progress: bool):
    return _progress(range(n_iter), desc, unit="iteration", enabled=progress, quiet=True)


def _subset_bar(n_iter: int, n_subsets: int, desc: str, progress: bool) -> Progress:
    """Progress over subset updates (``n_iter * n_subsets`` of them), for ordered subsets.

    One iteration of a large slab can take minutes (1750 px, 16 slices: about 40 s
    on a free core); counting subsets lets the log report every ``log_every_s``.
    """
    desc = f"{desc}, {n_iter} iteration(s) x {n_subsets} subset(s)"
    return Progress(n_iter * n_subsets, desc, unit="subset", enabled=progress, quiet=True)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), 0.0)


def sirt(
    sino: Any,
    projector: ParallelBeamProjector,
    n_iter: int,
    x0: Any = None,
    nonneg: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Simultaneous iterative reconstruction technique (ASTRA's SIRT update).

    ``x <- max(0, x + C A^T R (y - A x))`` with ``R = 1 / (A 1)`` (inverse ray
    lengths) and ``C = 1 / (A^T 1)`` (inverse pixel sensitivities).

    Parameters
    ----------
    sino : array (n_slices, n_angles, n_det)
    projector : ParallelBeamProjector
    n_iter : int
    x0 : array (n_slices, N, N), optional
        Start (default zeros).
    nonneg : bool
        Clip negative voxels after every iteration.
    progress : bool
        Report progress (a bar on a terminal, periodic log lines otherwise).

    Returns
    -------
    Tensor (n_slices, N, N) on the projector's device.
    """
    y = _prepare(sino, projector)
    n_iter = check_n_iter(n_iter)
    n_slices, n = y.shape[0], projector.n
    one_img = torch.ones((1, n, n), device=y.device, dtype=y.dtype)
    row = _safe_div(torch.ones_like(y[:1]), projector.forward(one_img))
    col = _safe_div(one_img, projector.adjoint(torch.ones_like(y[:1])))
    x = (
        torch.zeros((n_slices, n, n), device=y.device, dtype=y.dtype)
        if x0 is None
        else torch.as_tensor(x0).to(device=y.device, dtype=y.dtype).clone()
    )
    for _ in _bar(n_iter, "SIRT", progress):
        x += col * projector.adjoint(row * (y - projector.forward(x)))
        if nonneg:
            x.clamp_(min=0)
    return x


def _ml_start(
    y: torch.Tensor, sens: list[torch.Tensor], n: int, x0: Any
) -> torch.Tensor:
    if x0 is not None:
        x = torch.as_tensor(x0).to(device=y.device, dtype=y.dtype).clone()
        if bool((x < 0).any()):
            raise ValueError("x0 must be non-negative for maximum-likelihood methods")
        return x
    # Uniform start whose projections carry the measured total per slice.
    total_sens = sum(float(s.sum()) for s in sens)
    level = y.sum(dim=(1, 2)) / max(total_sens, 1e-30)
    return level[:, None, None].expand(y.shape[0], n, n).clone()


def _os_setup(y, projector, n_subsets):
    subsets = subset_indices(projector.n_angles, n_subsets)
    subprojs = [projector.subset(idx) for idx in subsets]
    ys = [y[:, idx] for idx in subsets]
    sens = [
        p.adjoint(torch.ones((1, p.n_angles, p.n_det), device=y.device, dtype=y.dtype))
        for p in subprojs
    ]
    return subprojs, ys, sens


def osem(
    sino: Any,
    projector: ParallelBeamProjector,
    n_iter: int,
    n_subsets: int = 1,
    x0: Any = None,
    progress: bool = True,
) -> torch.Tensor:
    """Ordered-subset expectation maximisation (MLEM when ``n_subsets == 1``).

    ``x <- x / (A_S^T 1) * A_S^T (y_S / A_S x)`` for each subset ``S``; one
    iteration visits every subset once.  Needs non-negative data; the estimate
    stays non-negative.
    """
    y = _prepare(sino, projector)
    n_iter = check_n_iter(n_iter)
    check_nonnegative(y, "osem")
    subprojs, ys, sens = _os_setup(y, projector, n_subsets)
    x = _ml_start(y, sens, projector.n, x0)
    desc = f"{'OSEM' if n_subsets > 1 else 'MLEM'}, {y.shape[0]} slice(s) of {projector.n} px"
    with _subset_bar(n_iter, len(subprojs), desc, progress) as bar:
        for _ in range(n_iter):
            for p, ysub, s in zip(subprojs, ys, sens):
                ratio = _safe_div(ysub, p.forward(x))
                x = _safe_div(x * p.adjoint(ratio), s)
                bar.update()
    return x


def _neighbour_kernel(dtype, device) -> torch.Tensor:
    k = torch.tensor(
        [[_W_DIAG, _W_FACE, _W_DIAG], [_W_FACE, 0.0, _W_FACE], [_W_DIAG, _W_FACE, _W_DIAG]],
        dtype=dtype,
        device=device,
    )
    return k[None, None]


def _neighbour_sum(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``sum_k w_jk x_k`` over the 8-neighbourhood (neighbours outside are absent).

    Shifted in-place sums weighted as ``kernel``: the same as
    ``conv2d(x, kernel, padding=1)`` without its im2col buffer (9 volumes); one
    volume (the output) is allocated.
    """
    out = torch.zeros_like(x)
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
        w = kernel[0, 0, 1 + di, 1 + dj]
        # out[i, j] += w * x[i + di, j + dj] where the neighbour exists
        dst = out[:, max(0, -di):x.shape[1] - max(0, di), max(0, -dj):x.shape[2] - max(0, dj)]
        src = x[:, max(0, di):x.shape[1] - max(0, -di), max(0, dj):x.shape[2] - max(0, -dj)]
        dst.add_(src, alpha=float(w))
    return out


def _quadratic_penalty(x: torch.Tensor) -> torch.Tensor:
    """``sum over unordered neighbour pairs of w_jk (x_j - x_k)^2``, per slice."""
    face = (x[:, 1:, :] - x[:, :-1, :]).pow(2).sum(dim=(1, 2)) + (
        x[:, :, 1:] - x[:, :, :-1]
    ).pow(2).sum(dim=(1, 2))
    diag = (x[:, 1:, 1:] - x[:, :-1, :-1]).pow(2).sum(dim=(1, 2)) + (
        x[:, 1:, :-1] - x[:, :-1, 1:]
    ).pow(2).sum(dim=(1, 2))
    return _W_FACE * face + _W_DIAG * diag


def penalised_objective(
    x: Any, sino: Any, projector: ParallelBeamProjector, reg_par: float
) -> float:
    """Objective that :func:`ospml_quad` decreases (with one subset).

    ``sum_i [(A x)_i - y_i log (A x)_i] + reg_par * sum_{j~k} w_jk (x_j - x_k)^2``

    summed over slices: the negative Poisson log-likelihood (up to terms free of
    ``x``) plus the quadratic neighbour penalty, each unordered 8-neighbour pair
    counted once with weight ``w_jk`` (face ``1/(4 + 2 sqrt 2)``, diagonal that
    over ``sqrt 2``).  ``inf`` when a ray with counts has zero projection.
    """
    y = _prepare(sino, projector)
    xt = torch.as_tensor(x).to(device=y.device, dtype=y.dtype)
    ax = projector.forward(xt)
    pos = y > 0
    if bool((pos & (ax <= 0)).any()):
        return math.inf
    loglik = torch.where(pos, y * torch.log(torch.where(pos, ax, torch.ones_like(ax))), 0.0)
    nll = (ax - loglik).sum()
    return float(nll + float(reg_par) * _quadratic_penalty(xt).sum())


def ospml_quad(
    sino: Any,
    projector: ParallelBeamProjector,
    n_iter: int,
    n_subsets: int = 1,
    reg_par: float = DEFAULT_REG_PAR,
    x0: Any = None,
    progress: bool = True,
) -> torch.Tensor:
    """Ordered-subset penalised maximum likelihood with a quadratic penalty.

    Follows TomoPy's ``ospml_quad``: for each subset ``S`` every voxel solves the
    1-D quadratic of De Pierro's separable surrogate,

    ``2 F x^2 + G x + E = 0``  with
    ``E = -x_n A_S^T (y_S / A_S x_n)``,  ``F = 2 b sum_k w_jk``,
    ``G = A_S^T 1 - 2 b sum_k w_jk (x_n,j + x_n,k)``  (``b = reg_par``),

    taking the non-negative root.  As in TomoPy the full penalty weight is
    applied in every subset.  With ``n_subsets == 1`` each iteration decreases
    :func:`penalised_objective` monotonically; ``reg_par = 0`` gives OSEM.

    Notes
    -----
    TomoPy renormalises the neighbour weights of edge and corner voxels to sum
    to one; here every voxel uses the interior weights and missing neighbours
    are simply absent, which keeps the penalty symmetric so that the objective
    above is exactly the one minimised.  Interior voxels update identically.

    References
    ----------
    A. R. De Pierro (1995), IEEE Trans. Med. Imaging 14, 132-137.
    D. Gursoy et al. (2014), J. Synchrotron Rad. 21, 1188-1193 (TomoPy).
    """
    y = _prepare(sino, projector)
    n_iter = check_n_iter(n_iter)
    reg_par = float(reg_par)
    if not math.isfinite(reg_par) or reg_par < 0:
        raise ValueError(f"reg_par must be a non-negative finite number, got {reg_par!r}")
    check_nonnegative(y, "ospml_quad")
    subprojs, ys, sens = _os_setup(y, projector, n_subsets)
    x = _ml_start(y, sens, projector.n, x0)
    kernel = _neighbour_kernel(y.dtype, y.device)
    wsum = _neighbour_sum(torch.ones_like(x[:1]), kernel)  # sum_k w_jk per voxel
    f_coef = 2.0 * reg_par * wsum
    inv_4f = _safe_div(torch.ones_like(f_coef), 4.0 * f_coef)  # 0 where F = 0
    desc = f"OSPML, {y.shape[0]} slice(s) of {projector.n} px"
    with _subset_bar(n_iter, len(subprojs), desc, progress) as bar:
        for _ in range(n_iter):
            for p, ysub, s in zip(subprojs, ys, sens):
                e_coef = p.adjoint(_safe_div(ysub, p.forward(x))).mul_(x).neg_()
                _ospml_update_(x, e_coef, s, wsum, f_coef, inv_4f, kernel, reg_par,
                               chunk_bytes=UPDATE_CHUNK_BYTES)
                del e_coef
                bar.update()
    return x


#: Bytes of one work array of the OSPML voxel update (:func:`_ospml_update_`): the
#: update runs over chunks of this many bytes of slices, so its work arrays do not
#: grow with the slab.
UPDATE_CHUNK_BYTES = 16 * 1024**2


def _ospml_update_(
    x: torch.Tensor, e_coef: torch.Tensor, sens: torch.Tensor, wsum: torch.Tensor,
    f_coef: torch.Tensor, inv_4f: torch.Tensor, kernel: torch.Tensor, reg_par: float,
    chunk_bytes: int = UPDATE_CHUNK_BYTES,
) -> None:
    """De Pierro's voxel update of :func:`ospml_quad`, in place in ``x``, chunk of slices by chunk.

    Slices are independent (the neighbour sum is in-plane), so updating a chunk of
    slices in place reads no value another chunk has changed.  Besides ``x`` and
    ``e_coef`` (overwritten) only about four work arrays of one chunk are alive
    (``chunk_bytes`` each), not four of the whole slab: peak memory of an OSPML
    iteration is two slab volumes plus the projector's (``joseph.working_bytes``).
    The arithmetic is the same, element by element, as on the whole slab.
    """
    n_slices = x.shape[0]
    per_slice = max(1, x[:1].numel() * x.element_size())
    step = max(1, int(chunk_bytes) // per_slice)
    for c0 in range(0, n_slices, step):
        xc, ec = x[c0:c0 + step], e_coef[c0:c0 + step]
        g_coef = _neighbour_sum(xc, kernel).addcmul_(wsum, xc)
        g_coef.mul_(-2.0 * reg_par).add_(sens)
        disc = (ec * f_coef).mul_(-8.0).addcmul_(g_coef, g_coef)
        disc.clamp_(min=0).sqrt_()
        # Stable root: -2E / (G + sqrt(D)) when G > 0 avoids cancellation and
        # reduces to the EM update when F = 0.
        pos = g_coef > 0
        den = g_coef.add_(disc)  # G + sqrt(D), in G's storage
        direct = disc.mul_(2.0).sub_(den).mul_(inv_4f)  # (sqrt(D) - G) / 4F
        stable = ec.mul_(-2.0).div_(den.masked_fill_(~pos, 1.0))
        xc.copy_(torch.where(pos, stable, direct, out=stable).clamp_(min=0))
