"""Qlib datasets: the binary writer, the synthetic market, checks and importers."""

from .bin_io import DatasetWriter, read_bin

__all__ = ["DatasetWriter", "read_bin"]
