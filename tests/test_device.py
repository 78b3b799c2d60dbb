"""qlib_ext.device: one device rule for ops and models; CUDA asked for without a GPU fails loudly."""

from __future__ import annotations

import pytest

from qlib_ext.device import cuda_available, resolve_device
from qlib_ext.ops.xp import NumpyBackend, TorchBackend, get_backend


def test_auto_follows_cuda_availability_in_ops_and_models():
    want = "cuda" if cuda_available() else "cpu"
    assert resolve_device("auto") == resolve_device(None) == want
    backend = get_backend("auto")
    assert isinstance(backend, TorchBackend) if want == "cuda" else type(backend) is NumpyBackend


@pytest.mark.skipif(cuda_available(), reason="a GPU is present")
def test_cuda_without_gpu_raises_in_both():
    with pytest.raises(RuntimeError, match="cuda.is_available"):
        resolve_device("cuda:0")
    with pytest.raises(RuntimeError, match="cuda.is_available"):
        get_backend("cuda")


def test_bad_device_names():
    assert resolve_device("CPU") == "cpu"
    for bad in ("gpu", "cuda:x", "tpu"):
        with pytest.raises(ValueError, match="expected auto, cpu, cuda"):
            resolve_device(bad)
