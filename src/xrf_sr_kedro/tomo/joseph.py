"""Matrix-free Joseph projector and its exact adjoint for a batch of slices, in torch.

Same operator as the sparse matrix of :mod:`.projector` (geometry and conventions
are documented there), computed ray by ray on the fly: no system matrix is built,
so memory grows with the slice size (one padded copy of the batch, plus working
buffers of at most ``chunk_bytes``), not with slices x angles x pixels.

For each angle the ray is sampled once per image row (``|cos| >= |sin|``, "steep")
or once per column ("flat").  Along the sampled line ``k`` the interpolated
coordinate of detector pixel ``d`` is affine in ``d``::

    f(k, d) = a * d + b_k

and the ray picks up ``step * hat(f - j)`` of pixel ``j`` of that line, with
``hat(t) = max(0, 1 - |t|)`` (linear interpolation) and ``step = 1 / max(|cos|,
|sin|)`` the ray length per line.

* :func:`forward` gathers the two pixels each sample straddles (slices are the
  last, contiguous axis, so every gather moves a whole batch) and reduces over
  lines with one batched matrix product per chunk.
* :func:`adjoint` (slices first: it accumulates straight into the output) is
  also a gather, not a scatter: since ``|a| >= 1`` the samples
  of one line are at least one pixel apart, so pixel ``j`` of line ``k`` is
  reached by at most the two detector pixels ``floor((j - b_k) / a)`` and the
  next.  Their weights are computed with the *same* floating-point expression
  ``hat(a * d + b_k - j)`` as in :func:`forward`, so the pair is adjoint to
  rounding (``<A x, y> == <x, A^T y>``).

Both run multi-threaded through torch's own kernels (``index_select``, ``bmm``,
``addcmul_``) and work unchanged on a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["DEFAULT_CHUNK_BYTES", "adjoint", "forward", "working_bytes"]

#: Bytes of gathered values per working chunk (the kernels' scratch memory).
DEFAULT_CHUNK_BYTES = 32 * 1024**2


def _line_geometry(
    theta_rad: float, n: int, n_det: int, center_offset_px: float
) -> tuple[bool, float, np.ndarray, float]:
    """``(steep, a, b_k, step)`` of one angle: ``f(k, d) = a d + b_k`` (float64)."""
    c, s = math.cos(theta_rad), math.sin(theta_rad)
    steep = abs(c) >= abs(s)
    s0 = 0.5 - n_det / 2.0 - center_offset_px  # s_d = d + s0
    pos = np.arange(n, dtype=np.float64) + 0.5 - n / 2.0
    if steep:  # step over rows k = i, interpolate along j: Y = (s_d + X sin) / cos
        a, b = 1.0 / c, (s0 + pos * s) / c
    else:  # step over columns k = j, interpolate along i: X = (Y cos - s_d) / sin
        a, b = -1.0 / s, (pos * c - s0) / s
    return steep, a, b + (n / 2.0 - 0.5), 1.0 / max(abs(c), abs(s))


def working_bytes(n: int, n_det: int, n_slices: int, itemsize: int,
                  chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Peak scratch memory of one :func:`forward` or :func:`adjoint` call, in bytes.

    A padded copy (forward) or accumulator (adjoint) of the batch, the output,
    and the chunk buffers (gathered values, indices and weights): it grows with
    ``n**2 * n_slices``, not with the number of angles.
    """
    batch = (n + 3) ** 2 * n_slices * itemsize
    return 2 * batch + 3 * chunk_bytes + 2 * n_det * n_slices * itemsize


def _rows_per_chunk(line_len: int, n_slices: int, itemsize: int, chunk_bytes: int) -> int:
    return max(1, int(chunk_bytes) // max(1, 2 * line_len * n_slices * itemsize))


def forward(
    vol: torch.Tensor,
    angles_rad: np.ndarray,
    n_det: int,
    center_offset_px: float,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """Project ``vol`` (n_slices, N, N) to a sinogram (n_slices, n_angles, n_det).

    Positions and weights are computed in ``vol``'s dtype.
    """
    n_slices, n = vol.shape[0], vol.shape[-1]
    dt, dev = vol.dtype, vol.device
    w_pad = n + 3  # one zero line before, two after: clamped taps read zeros
    vpad = torch.zeros((w_pad, w_pad, n_slices), dtype=dt, device=dev)
    vpad[1 : n + 1, 1 : n + 1] = vol.permute(1, 2, 0)
    flat_v = vpad.view(w_pad * w_pad, n_slices)
    d = torch.arange(n_det, dtype=dt, device=dev)[:, None]
    k_all = torch.arange(1, n + 1, device=dev)
    out = torch.empty((len(angles_rad), n_det, n_slices), dtype=dt, device=dev)
    kc = _rows_per_chunk(n_det, n_slices, vol.element_size(), chunk_bytes)
    for ai, theta in enumerate(angles_rad):
        steep, a, b_np, step = _line_geometry(float(theta), n, n_det, center_offset_px)
        b = torch.as_tensor(b_np, dtype=dt, device=dev)
        # pixel (line k, position fl) of the padded volume; tap 1 is the next along f
        line_stride, f_stride = (w_pad, 1) if steep else (1, w_pad)
        acc = torch.zeros((n_det, 1, n_slices), dtype=dt, device=dev)
        for k0 in range(0, n, kc):
            k1 = min(n, k0 + kc)
            # f clamped to [-1, n]: outside, both taps fall on zero padding or get weight 0
            f = torch.add(b[None, k0:k1], d, alpha=a).clamp_(-1.0, float(n))  # (n_det, kc)
            fl = torch.floor(f)
            w1 = f.sub_(fl)  # weight of pixel fl + 1
            w0 = torch.rsub(w1, 1.0)  # weight of pixel fl
            idx = torch.add(k_all[None, k0:k1] * line_stride + (f_stride + 0), fl.long(),
                            alpha=f_stride).view(-1)
            shape = (n_det, k1 - k0, n_slices)
            acc.baddbmm_(w0.view(n_det, 1, -1), flat_v.index_select(0, idx).view(shape))
            acc.baddbmm_(w1.view(n_det, 1, -1),
                         flat_v.index_select(0, idx + f_stride).view(shape))
        out[ai] = acc[:, 0].mul_(step)
    return out.permute(2, 0, 1).contiguous()


def adjoint(
    sino: torch.Tensor,
    angles_rad: np.ndarray,
    n: int,
    center_offset_px: float,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """Back-project ``sino`` (n_slices, n_angles, n_det) to (n_slices, N, N).

    The transpose of :func:`forward`: pixel ``j`` of line ``k`` gathers detector
    pixels ``d0 = floor((j - b_k) / a)`` and ``d0 + 1`` with the hat weights of
    their samples, ``1 - |a d + b_k - j|`` clipped at 0.
    """
    n_slices, n_angles, n_det = sino.shape
    dt, dev = sino.dtype, sino.device
    # slices first here: the accumulator is the output (no transposed copy)
    ypad = torch.zeros((n_angles, n_slices, n_det + 3), dtype=dt, device=dev)
    ypad[:, :, 1 : n_det + 1] = sino.permute(1, 0, 2)
    acc = torch.zeros((n_slices, n, n), dtype=dt, device=dev)
    flat_acc = acc.view(n_slices, n * n)
    pix = torch.arange(n, dtype=dt, device=dev)
    rc = _rows_per_chunk(n, n_slices, sino.element_size(), 2 * chunk_bytes)
    for ai, theta in enumerate(angles_rad):
        steep, a, b_np, step = _line_geometry(float(theta), n, n_det, center_offset_px)
        sgn, abs_a = math.copysign(1.0, a), abs(a)
        # q = t - (b_k - a) = a (d* + 1): d0 + 1 = floor(q / a) is the padded index of d0
        bq = torch.as_tensor(b_np - a, dtype=dt, device=dev)
        y = ypad[ai] * step  # (n_slices, n_det + 3)
        for r0 in range(0, n, rc):
            r1 = min(n, r0 + rc)
            # pixel (i, j) of rows r0:r1: its line k and its coordinate t along the line
            if steep:
                q = pix[None, :] - bq[r0:r1, None]
            else:
                q = pix[r0:r1, None] - bq[None, :]
            dp = torch.floor(q * (1.0 / a)).clamp_(0.0, float(n_det + 1))  # d0 + 1
            # hat weight of d0: 1 - sgn (t - f(d0)) = 1 - sgn q + |a| (d0 + 1)
            w0 = torch.rsub(q, 1.0, alpha=sgn).add_(dp, alpha=abs_a)
            w1 = torch.rsub(w0, 2.0 - abs_a).clamp_(min=0.0)  # of d0 + 1
            w0.clamp_(min=0.0)
            i0 = dp.long().view(-1)
            dst = flat_acc[:, r0 * n : r1 * n]
            dst.addcmul_(y.index_select(1, i0), w0.view(1, -1))
            dst.addcmul_(y.index_select(1, i0 + 1), w1.view(1, -1))
    return acc
