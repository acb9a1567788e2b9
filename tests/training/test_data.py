"""Dihedral augmentation and sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrf_sr_kedro.training.data import PatchPairDataset, dihedral, make_train_loader
from xrf_sr_kedro.types import PatchPairs


def test_eight_distinct_dihedral_transforms():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    images = {dihedral(x, k).tobytes() + bytes(dihedral(x, k).shape) for k in range(8)}
    assert len(images) == 8
    np.testing.assert_array_equal(dihedral(x, 0), x)
    with pytest.raises(ValueError, match="k must be"):
        dihedral(x, 8)


def test_lr_and_hr_get_the_same_transform():
    rng = np.random.default_rng(0)
    lr = rng.random((6, 1, 4, 4)).astype(np.float32)
    hr = lr.repeat(4, axis=2).repeat(4, axis=3)  # nearest-neighbour x4
    ds = PatchPairDataset(PatchPairs(lr, hr, 120.0, 30.0), augment=True, seed=3)
    seen = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            a, b = ds[i]
            seen.add(ds.transform_index(i))
            torch.testing.assert_close(b, a.repeat_interleave(4, 1).repeat_interleave(4, 2))
    assert len(seen) > 4


def test_augmentation_is_a_function_of_seed_epoch_index():
    lr = np.zeros((20, 1, 2, 2), np.float32)
    pp = PatchPairs(lr, np.zeros((20, 1, 8, 8), np.float32), 1.0, 0.25)
    a, b = PatchPairDataset(pp, seed=1), PatchPairDataset(pp, seed=1)
    ks = [a.transform_index(i) for i in range(20)]
    assert ks == [b.transform_index(i) for i in range(20)]
    a.set_epoch(1)
    assert ks != [a.transform_index(i) for i in range(20)]
    assert [PatchPairDataset(pp, augment=False).transform_index(i) for i in range(20)] == [0] * 20


def test_rank_shards_make_up_the_single_process_batches():
    lr = np.arange(16, dtype=np.float32).reshape(16, 1, 1, 1)
    pp = PatchPairs(lr, np.repeat(np.repeat(lr, 2, 2), 2, 3), 1.0, 0.5)
    ds = PatchPairDataset(pp, augment=False)
    single, s0 = make_train_loader(ds, 4, 1, 0, seed=7)
    ranks = [make_train_loader(ds, 2, 2, r, seed=7) for r in range(2)]
    for epoch in range(2):
        s0.set_epoch(epoch)
        for _, s in ranks:
            s.set_epoch(epoch)
        batches = [b[0].flatten().tolist() for b in single]
        shard = [[b[0].flatten().tolist() for b in loader] for loader, _ in ranks]
        for step, batch in enumerate(batches):
            assert sorted(batch) == sorted(shard[0][step] + shard[1][step])
        assert sorted(sum(batches, [])) == list(range(16))
