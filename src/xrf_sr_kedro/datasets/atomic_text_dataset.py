"""``AtomicTextDataset``: a text file (a Markdown report) written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from xrf_sr_kedro.io.atomic import atomic_path


class AtomicTextDataset(AbstractDataset[str, str]):
    """A UTF-8 text file, saved through :func:`xrf_sr_kedro.io.atomic.atomic_path`.

    Unlike ``text.TextDataset``, a run killed while saving leaves the previous file
    (or none), never half a report.

    Examples
    --------
    ::

        real_data_report:
          type: xrf_sr_kedro.datasets.AtomicTextDataset
          filepath: data/08_reporting/real_data_report.md
    """

    def __init__(self, *, filepath: str | os.PathLike,
                 metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def save(self, data: str) -> None:
        if not isinstance(data, str):
            raise DatasetError(f"AtomicTextDataset saves a str, got {type(data).__name__}")
        with atomic_path(self._filepath) as tmp:
            tmp.write_text(data, encoding="utf-8")

    def load(self) -> str:
        if not self._filepath.is_file():
            raise DatasetError(f"{self._filepath}: not found")
        return self._filepath.read_text(encoding="utf-8")
