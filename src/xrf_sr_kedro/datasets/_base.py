"""Shared plumbing for the file-backed datasets: fsspec paths, versions, local I/O.

The framework-free readers and writers in :mod:`xrf_sr_kedro.io` work on local
paths (h5py, tifffile and torch want real files, and the writers are atomic via a
rename beside the target).  For the local file system the dataset hands them the
(versioned) path directly; for other fsspec protocols (``s3://``, ``gcs://``, ...)
it copies the file to a local temporary folder first (load) or uploads a locally
written file (save; object stores replace objects atomically).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

_T = TypeVar("_T")


class FileDataset(AbstractVersionedDataset[_T, _T]):
    """Base for one-file datasets with optional Kedro versioning (not for catalogs)."""

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        _fs_args = deepcopy(fs_args) or {}
        _credentials = deepcopy(credentials) or {}
        protocol, path = get_protocol_and_path(str(filepath), version)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **_credentials, **_fs_args)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    # -- helpers -------------------------------------------------------------

    def _load_with(self, reader: Callable[[str], _T]) -> _T:
        """Call ``reader(local_path)`` on the (versioned) load path."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        if self._protocol == "file":
            return reader(load_path)
        with tempfile.TemporaryDirectory() as tmp:
            local = str(Path(tmp) / PurePosixPath(load_path).name)
            self._fs.get(load_path, local)
            return reader(local)

    def _save_with(self, writer: Callable[[str], None]) -> None:
        """Call ``writer(local_path)`` for the (versioned) save path."""
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":
            writer(save_path)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                local = str(Path(tmp) / PurePosixPath(save_path).name)
                writer(local)
                self._fs.put(local, save_path)
        self._invalidate_cache()

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        filepath = get_filepath_str(self._filepath, self._protocol)
        self._fs.invalidate_cache(filepath)

    def _base_describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}
