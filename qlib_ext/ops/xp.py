"""The few array primitives the minute algebra needs, for NumPy and for PyTorch (CPU or GPU).

The algebra (``algebra.py``, ``library.py``) is written once against this shim: most operations
(``+ * / **``, comparisons, ``where``, ``sqrt``, ``abs``, ``log1p``, ``expm1``, ``isfinite``,
``.sum(-1)``) have the same spelling in ``numpy`` and ``torch`` and are reached through
:attr:`Backend.ns`; the ones that differ (row max, cumulative max, gather, k-th largest, dtype
casts) are methods here.  All reductions run along the last axis (the 240 minutes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..device import resolve_device

Array = Any  # numpy.ndarray or torch.Tensor


class NumpyBackend:
    """NumPy on the CPU (the default engine)."""

    name = "numpy"
    ns = np

    def __init__(self, dtype: str = "float32"):
        self.dtype = np.dtype(dtype)

    def asarray(self, x) -> Array:
        """Float array of the backend's dtype (no copy when it already is one)."""
        return np.asarray(x, dtype=self.dtype)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def cast(self, x: Array) -> Array:
        """Bool/int -> the float dtype (NumPy would otherwise promote float32 / int64 to float64)."""
        return x.astype(self.dtype)

    def arange(self, n: int) -> Array:
        return np.arange(n)

    def full(self, shape: tuple, value: float) -> Array:
        return np.full(shape, value, dtype=self.dtype)

    def rowmax(self, x: Array) -> Array:
        return x.max(-1)

    def dot(self, x: Array, y: Array) -> Array:
        """Row-wise ``sum(x * y)`` over the last axis, fused (no temporary; ~4x a where + sum)."""
        return np.vecdot(x, y)

    def cummax(self, x: Array) -> Array:
        return np.maximum.accumulate(x, axis=-1)

    def take(self, x: Array, idx: Array) -> Array:
        """``x[..., idx[..., j]]`` row by row."""
        return np.take_along_axis(x, idx, axis=-1)

    def kth_largest(self, x: Array, k: int) -> Array:
        """k-th largest value of each row (k >= 1), by partition rather than a full sort."""
        n = x.shape[-1]
        return np.partition(x, n - k, axis=-1)[..., n - k]

    def ceil(self, x: Array) -> Array:
        return np.ceil(x)

    def first_true(self, m: Array) -> Array:
        """Index of the first True of each row (0 for an all-False row)."""
        return m.argmax(-1)

    def unique(self, x: Array) -> list[int]:
        return [int(v) for v in np.unique(x)]

    def nonzero_rows(self, m: Array) -> Array:
        return np.flatnonzero(m)


class TorchBackend(NumpyBackend):
    """PyTorch on ``device`` (a GPU when one is present; ``cpu`` for parity checks)."""

    name = "torch"

    def __init__(self, device: str = "cuda", dtype: str = "float32"):
        import torch

        self.ns = torch
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)

    def asarray(self, x) -> Array:
        return self.ns.as_tensor(np.asarray(x), device=self.device).to(self.dtype)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.detach().cpu().numpy()

    def cast(self, x: Array) -> Array:
        return x.to(self.dtype)

    def arange(self, n: int) -> Array:
        return self.ns.arange(n, device=self.device)

    def full(self, shape: tuple, value: float) -> Array:
        return self.ns.full(tuple(shape), value, dtype=self.dtype, device=self.device)

    def rowmax(self, x: Array) -> Array:
        return x.amax(-1)

    def dot(self, x: Array, y: Array) -> Array:
        return self.ns.linalg.vecdot(x, y.to(x.dtype) if y.dtype != x.dtype else y, dim=-1)

    def cummax(self, x: Array) -> Array:
        return self.ns.cummax(x, dim=-1).values

    def take(self, x: Array, idx: Array) -> Array:
        return self.ns.gather(x, -1, idx)

    def kth_largest(self, x: Array, k: int) -> Array:
        return self.ns.kthvalue(x, x.shape[-1] - k + 1, dim=-1).values

    def ceil(self, x: Array) -> Array:
        return self.ns.ceil(x)

    def first_true(self, m: Array) -> Array:
        return m.to(self.ns.uint8).argmax(-1)

    def unique(self, x: Array) -> list[int]:
        return [int(v) for v in self.ns.unique(x).tolist()]

    def nonzero_rows(self, m: Array) -> Array:
        return self.ns.nonzero(m).flatten()


def backend_for(x: Array, dtype: str | None = None) -> NumpyBackend:
    """The backend an existing array lives on (its dtype unless ``dtype`` is given)."""
    if isinstance(x, np.ndarray):
        return NumpyBackend(dtype or str(x.dtype))
    return TorchBackend(str(x.device), dtype or str(x.dtype).replace("torch.", ""))


def get_backend(device: str = "auto", dtype: str = "float32") -> NumpyBackend:
    """``auto``: a CUDA GPU through torch when ``torch.cuda.is_available()``, else NumPy.

    ``cpu`` / ``numpy``: NumPy.  ``cuda`` / ``cuda:N``: torch on that GPU.  ``torch-cpu``: torch on
    the CPU (slower than NumPy; used to check the torch path where no GPU is present).
    """
    if device in ("cpu", "numpy"):
        return NumpyBackend(dtype)
    if device == "torch-cpu":
        return TorchBackend("cpu", dtype)
    if device == "auto":
        return TorchBackend("cuda", dtype) if resolve_device("auto") == "cuda" else NumpyBackend(dtype)
    if device.startswith("cuda"):
        return TorchBackend(resolve_device(device), dtype)
    raise ValueError(f"device={device!r}: expected auto, cpu, numpy, cuda, cuda:N or torch-cpu")
