"""Flip self-ensemble of a super-resolution network (issue 13).

The network's output is averaged over the input flipped along x, along y and both,
each output flipped back.  These flips commute with the fly-scan forward model: the
project's probe intensity is mirror-symmetric in x and y and the fly-scan integrates
a step that is symmetric about each LR pixel, so a flipped measurement is the
measurement of the flipped sample.  Transposes are *not* used: they would move the
motion blur from the fast axis x to the slow axis y.  Four forward passes (about 3x
the plain engine's CPU time); measured gain in docs/models.md.
"""

from __future__ import annotations

import torch
from torch import nn

#: Average the network over :data:`ENSEMBLE_FLIPS` (one source for the engine, the
#: pipelines' ``EngineSettings`` and the evaluation).
DEFAULT_SELF_ENSEMBLE = True
#: The flips of the self-ensemble as tensor dims of (N, C, y, x): none, x, y, both.
ENSEMBLE_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,), (2, 3))


def ensemble_forward(net: nn.Module, x: torch.Tensor, self_ensemble: bool) -> torch.Tensor:
    """``net(x)``, or its mean over :data:`ENSEMBLE_FLIPS` (each output flipped back).

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(N, C, h, w)`` to ``(N, C', h * s, w * s)``.
    x : torch.Tensor, shape (N, C, h, w)
    self_ensemble : bool
        False: the plain output.

    Returns
    -------
    torch.Tensor
        ``net``'s output (float32 when averaged).
    """
    if not self_ensemble:
        return net(x)
    total = None
    for dims in ENSEMBLE_FLIPS:
        xi = torch.flip(x, dims) if dims else x
        yi = net(xi)
        yi = torch.flip(yi, dims) if dims else yi
        total = yi.float() if total is None else total + yi.float()
    return total / len(ENSEMBLE_FLIPS)
