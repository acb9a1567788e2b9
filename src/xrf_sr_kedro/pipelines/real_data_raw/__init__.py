"""The `real_data_raw` pipeline: preparation + the raw reconstruction of a measured stack."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
