"""The `preparation` pipeline."""

from .pipeline import create_pipeline, create_report_pipeline

__all__ = ["create_pipeline", "create_report_pipeline"]
