"""Torch datasets over :class:`~xrf_sr_kedro.types.PatchPairs` with dihedral augmentation.

Randomness is a pure function of ``(seed, epoch, index)``: the transform of a
patch does not depend on the order patches are drawn in, on the number of
processes, or on any global random state.  That is what makes resumed and
distributed runs reproduce single-process runs exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from xrf_sr_kedro.types import PatchPairs

N_DIHEDRAL = 8
#: The dihedral transforms that are flips (identity, both, along x, along y): the
#: only ones that commute with a fly-scan whose fast axis is x and whose probe is
#: mirror-symmetric.  Quarter turns swap the motion blur onto the slow axis.
FLIP_TRANSFORMS: tuple[int, ...] = (0, 2, 4, 6)
#: ``TrainConfig.augmentation`` name -> the dihedral indices it draws from.
AUGMENTATIONS: dict[str, tuple[int, ...]] = {
    "dihedral": tuple(range(N_DIHEDRAL)),
    "flips": FLIP_TRANSFORMS,
}


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Apply the ``k``-th of the 8 dihedral transforms to the last two axes.

    ``k % 4`` quarter turns (counter-clockwise), then a left-right flip if ``k >= 4``.
    ``k = 0`` is the identity.
    """
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"k must be in [0, 8), got {k}")
    y = np.rot90(x, k % 4, axes=(-2, -1))
    if k >= 4:
        y = y[..., ::-1]
    return y


class PatchPairDataset(Dataset):
    """``(lr, hr)`` float32 tensor pairs of shape ``(1, h, w)`` and ``(1, h*s, w*s)``.

    Parameters
    ----------
    pairs : PatchPairs
    augment : bool
        Apply a random dihedral transform (identical for LR and HR) per item.
    transforms : tuple of int
        The dihedral indices (:func:`dihedral`) drawn from, uniformly; default all
        8, :data:`FLIP_TRANSFORMS` for fly-scanned pairs.
    seed : int
        Seed of the augmentation; the transform of item ``i`` in epoch ``e`` is
        drawn from ``numpy.random.default_rng([seed, e, i])``.
    """

    def __init__(
        self, pairs: PatchPairs, augment: bool = True, seed: int = 0,
        transforms: tuple[int, ...] = AUGMENTATIONS["dihedral"],
    ) -> None:
        if not isinstance(pairs, PatchPairs):
            raise TypeError(f"pairs must be PatchPairs, got {type(pairs).__name__}")
        if len(pairs) == 0:
            raise ValueError("pairs is empty")
        self.pairs = pairs
        self.augment = augment
        self.transforms = tuple(int(k) for k in transforms)
        if not self.transforms or not all(0 <= k < N_DIHEDRAL for k in self.transforms):
            raise ValueError(f"transforms must be dihedral indices in [0, 8), got {transforms!r}")
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (call before each epoch)."""
        self.epoch = int(epoch)

    def transform_index(self, index: int) -> int:
        """Which dihedral transform item ``index`` gets in the current epoch."""
        if not self.augment:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return self.transforms[int(rng.integers(len(self.transforms)))]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.transform_index(index)
        lr = np.ascontiguousarray(dihedral(self.pairs.lr[index], k))
        hr = np.ascontiguousarray(dihedral(self.pairs.hr[index], k))
        return torch.from_numpy(lr), torch.from_numpy(hr)


def make_train_loader(
    dataset: PatchPairDataset,
    batch_size_per_rank: int,
    world_size: int = 1,
    rank: int = 0,
    seed: int = 0,
) -> tuple[DataLoader, DistributedSampler]:
    """A shuffling loader over this rank's shard of ``dataset``.

    The shard comes from :class:`torch.utils.data.DistributedSampler` (also with one
    process, so the shuffle order is the same for every world size: rank ``r``
    takes positions ``r, r + world_size, ...`` of one global permutation, and a
    global batch of ``world_size * batch_size_per_rank`` items equals the
    single-process batch).  Call ``sampler.set_epoch(e)`` each epoch.
    """
    if batch_size_per_rank < 1:
        raise ValueError(f"batch_size_per_rank must be >= 1, got {batch_size_per_rank}")
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False
    )
    loader = DataLoader(dataset, batch_size=batch_size_per_rank, sampler=sampler, num_workers=0)
    return loader, sampler
