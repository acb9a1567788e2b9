"""The `full` pipeline: the default run with pretraining."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
