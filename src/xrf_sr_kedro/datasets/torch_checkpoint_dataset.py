"""``TorchCheckpointDataset``: training checkpoints as versionable files."""

from __future__ import annotations

import os
from typing import Any

from kedro.io.core import DatasetError, Version

from xrf_sr_kedro.datasets._base import FileDataset


class TorchCheckpointDataset(FileDataset[dict]):
    """A checkpoint dict saved and loaded by :mod:`xrf_sr_kedro.io.checkpoint`.

    The dict holds ``format_version``, ``config``, ``preset``, ``model_state``,
    ``optimizer_state``, ``scheduler_state``, ``epoch``, ``metrics``, ``history``,
    ``train_config``, ``rng_state``, ``training_data`` and ``parent``.  Saves are
    atomic; ``versioned: true`` keeps every training run.  Rebuilding the model
    (and checking its config against the expected one, field by field) is the
    caller's job: :func:`xrf_sr_kedro.io.checkpoint.model_from_checkpoint`.

    Examples
    --------
    ::

        pretrained_model:
          type: xrf_sr_kedro.datasets.TorchCheckpointDataset
          filepath: data/06_models/pretrained.pt
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See the class docstring."""
        super().__init__(
            filepath=filepath,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )

    def _describe(self) -> dict[str, Any]:
        return self._base_describe()

    def load(self) -> dict:
        from xrf_sr_kedro.io.checkpoint import load_checkpoint

        return self._load_with(load_checkpoint)

    def save(self, data: dict) -> None:
        from xrf_sr_kedro.io.checkpoint import save_checkpoint

        if not isinstance(data, dict):
            raise DatasetError(f"TorchCheckpointDataset saves a dict, got {type(data).__name__}")
        self._save_with(lambda path: save_checkpoint(path, data))
