"""``TorchCheckpointDataset``: training checkpoints as versionable files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError, Version, get_filepath_str

from xrf_sr_kedro.datasets._base import FileDataset
from xrf_sr_kedro.io.provenance import read_only_error

logger = logging.getLogger(__name__)


class TorchCheckpointDataset(FileDataset[dict]):
    """A checkpoint dict saved and loaded by :mod:`xrf_sr_kedro.io.checkpoint`.

    The dict holds ``format_version``, ``config``, ``preset``, ``model_state``,
    ``optimizer_state``, ``scheduler_state``, ``epoch``, ``metrics``, ``history``,
    ``train_config``, ``rng_state``, ``training_data`` and ``parent``.  Saves are
    atomic; ``versioned: true`` keeps every training run.  Rebuilding the model
    (and checking its config against the expected one, field by field) is the
    caller's job: :func:`xrf_sr_kedro.io.checkpoint.model_from_checkpoint`.

    ``fallback_filepath`` (local file, or a list of them tried in order; optional) is
    loaded, with a logged warning, when ``filepath`` (or its latest version) does not
    exist yet, e.g. enhancing with the pre-trained network when no fine-tuned one has
    been trained.  ``exists()``
    still reports only ``filepath``, so ``--only-missing-outputs`` runs still train.

    ``read_only: true`` (the pretrained network shipped with the project) makes
    ``save`` raise, and the run guard refuses any run that would write it.

    Examples
    --------
    ::

        pretrained_model:
          type: xrf_sr_kedro.datasets.TorchCheckpointDataset
          filepath: data/06_models/pretrained.pt
          versioned: true

        fine_tuned_model:
          type: xrf_sr_kedro.datasets.TorchCheckpointDataset
          filepath: data/06_models/fine_tuned_model.pt
          fallback_filepath: data/06_models/pretrained_model.pt
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        fallback_filepath: str | os.PathLike | list[str | os.PathLike] | None = None,
        read_only: bool = False,
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
        self.read_only = bool(read_only)
        if fallback_filepath is None:
            self._fallback_filepaths: list[str] = []
        elif isinstance(fallback_filepath, (list, tuple)):
            self._fallback_filepaths = [str(f) for f in fallback_filepath]
        else:
            self._fallback_filepaths = [str(fallback_filepath)]

    @property
    def _fallback_filepath(self) -> str | None:
        """The first fallback file that exists (else the first one named, or None)."""
        existing = [f for f in self._fallback_filepaths if Path(f).is_file()]
        return (existing or self._fallback_filepaths or [None])[0]

    def _describe(self) -> dict[str, Any]:
        return {**self._base_describe(), "fallback_filepath": self._fallback_filepaths,
                "read_only": self.read_only}

    def load(self) -> dict:
        from xrf_sr_kedro.io.checkpoint import load_checkpoint

        if self._fallback_filepath is not None and not self._exists():
            if not Path(self._fallback_filepath).is_file():
                raise FileNotFoundError(
                    f"checkpoint {get_filepath_str(self._filepath, self._protocol)} and its "
                    f"fallback {' / '.join(self._fallback_filepaths)} do not exist"
                )
            logger.warning(
                "checkpoint %s does not exist; loading fallback %s",
                get_filepath_str(self._filepath, self._protocol),
                self._fallback_filepath,
            )
            return load_checkpoint(self._fallback_filepath)
        return self._load_with(load_checkpoint)

    def save(self, data: dict) -> None:
        from xrf_sr_kedro.io.checkpoint import save_checkpoint

        if self.read_only:
            raise read_only_error(type(self).__name__, self._filepath)
        if not isinstance(data, dict):
            raise DatasetError(f"TorchCheckpointDataset saves a dict, got {type(data).__name__}")
        self._save_with(lambda path: save_checkpoint(path, data))
