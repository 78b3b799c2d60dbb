"""One device helper for every torch user of the package (``qlib_ext.ops`` and ``qlib_ext.models``).

``auto`` means a CUDA GPU when ``torch.cuda.is_available()``, else the CPU.  Checking for a GPU is
made cheap first (an NVIDIA device node, or torch already imported), so a CPU-only NumPy path never
pays the seconds that ``import torch`` costs.
"""

from __future__ import annotations

import glob
import sys

__all__ = ["cuda_available", "may_have_gpu", "resolve_device"]


def may_have_gpu() -> bool:
    """Cheap pre-check before importing torch: an NVIDIA device node, WSL's /dev/dxg, or torch loaded."""
    return "torch" in sys.modules or bool(glob.glob("/dev/nvidia[0-9]*")) or bool(glob.glob("/dev/dxg"))


def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device."""
    if not may_have_gpu():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str | None = "auto") -> str:
    """``auto``/None -> ``cuda`` when a GPU is present else ``cpu``; ``cpu``; ``cuda`` / ``cuda:N`` (checked).

    Raises ``RuntimeError`` when CUDA is asked for on a machine without it (no silent CPU fallback)
    and ``ValueError`` for anything else.
    """
    dev = "auto" if device is None else str(device).strip().lower()
    if dev == "auto":
        return "cuda" if cuda_available() else "cpu"
    if dev == "cpu":
        return "cpu"
    if dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit()):
        if not cuda_available():
            raise RuntimeError(f"device={device!r}: torch.cuda.is_available() is False on this machine")
        return dev
    raise ValueError(f"device={device!r}: expected auto, cpu, cuda or cuda:N")
