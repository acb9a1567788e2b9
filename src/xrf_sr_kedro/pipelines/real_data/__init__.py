"""The `real_data` pipeline: preparation + tomography (with enhancement) of a measured stack."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
