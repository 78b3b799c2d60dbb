"""Qlib processors for handler YAML (``module_path: qlib_ext.processors``)."""

from .neutralize import NEUTRALIZE_PRESETS, Neutralize
from .xsection import residualize_xsection

__all__ = ["NEUTRALIZE_PRESETS", "Neutralize", "residualize_xsection"]
