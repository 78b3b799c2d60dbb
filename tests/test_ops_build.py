"""build_minute_factors: writes mf_* fields Qlib reads, resumes after an interruption, keeps old days."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.data.bin_io import bin_path
from qlib_ext.data.panel import read_panel
from qlib_ext.ops import build as build_mod
from qlib_ext.ops.batch import compute_factors
from qlib_ext.ops.build import build_minute_factors
from qlib_ext.ops.library import MF_FIELDS
from qlib_ext.ops.sources import StreamSource

CHUNKS = {"stocks_per_chunk": 15, "days_per_chunk": 60}


def _copy(src, tmp_path, name="ds"):
    root = tmp_path / name
    shutil.copytree(src, root)
    return root


def _bytes(root, insts, fields=MF_FIELDS):
    return {(i, f): bin_path(root, i, f).read_bytes() for i in insts for f in fields if bin_path(root, i, f).exists()}


@pytest.fixture(scope="module")
def built(micro_market, tmp_path_factory):
    root = _copy(micro_market, tmp_path_factory.mktemp("built"))
    fields = build_minute_factors(root, progress=False, **CHUNKS)
    return root, fields


def test_fields_written_and_read_by_qlib(built, tmp_path):
    from qlib.data import D

    root, fields = built
    assert fields == MF_FIELDS and not (root / ".staging").exists()
    src = StreamSource(root)
    syms = src.instruments[:8]
    want = compute_factors(src.bars(syms, 0, len(src.days)), device="cpu")
    qlib_ext.init(root, mlruns=tmp_path / "mlruns", kernels=1)
    got = D.features(syms, [f"${f}" for f in MF_FIELDS] + ["Mean($mf_corr_vr, 10)"])
    for f in MF_FIELDS:
        panel = got[f"${f}"].unstack(0).reindex(index=src.days, columns=syms)
        np.testing.assert_array_equal(panel.to_numpy(), want[f].T, err_msg=f)
    assert got["$mf_corr_vr"].notna().mean() > 0.8
    roll = pd.DataFrame(want["mf_corr_vr"].T, index=src.days, columns=syms).rolling(10, min_periods=1).mean()
    np.testing.assert_allclose(got["Mean($mf_corr_vr, 10)"].unstack(0).reindex(index=src.days, columns=syms),
                               roll, rtol=1e-5, atol=1e-7)


def test_resumes_after_interruption(micro_market, built, tmp_path, monkeypatch):
    root = _copy(micro_market, tmp_path)
    real = build_mod.compute_chunk
    calls = []

    def dies_after_three(source, chunk, *a, **k):
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated interruption")
        calls.append(chunk.key)
        return real(source, chunk, *a, **k)

    monkeypatch.setattr(build_mod, "compute_chunk", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        build_minute_factors(root, progress=False, **CHUNKS)
    staged = list((root / ".staging").glob("minute_factors-*/*.done"))
    assert sorted(p.stem for p in staged) == sorted(calls)
    assert not bin_path(root, "SH600000", "mf_rvol").exists()          # nothing half-written into features/

    resumed = []

    def counting(source, chunk, *a, **k):
        resumed.append(chunk.key)
        return real(source, chunk, *a, **k)

    monkeypatch.setattr(build_mod, "compute_chunk", counting)
    build_minute_factors(root, progress=False, **CHUNKS)
    assert not set(resumed) & set(calls) and len(resumed) > 0            # finished chunks were not redone
    insts = StreamSource(root).instruments
    assert _bytes(root, insts) == _bytes(built[0], insts)                # same files as an uninterrupted build


def test_partial_rebuild_keeps_other_days(micro_market, built, tmp_path):
    root = _copy(built[0], tmp_path)
    days = StreamSource(root).days
    before = read_panel(root, "mf_rskew")
    for p in root.glob("features/*/mf_rskew.day.bin"):                   # damage the tail, then rebuild it
        vals = np.fromfile(p, dtype="<f4")
        vals[-20:] = 99.0
        vals.tofile(p)
    build_minute_factors(root, start=days[-30], progress=False, names=["rskew", "corr_vr"])
    after = read_panel(root, "mf_rskew")
    np.testing.assert_array_equal(after.to_numpy(), before.to_numpy())
    np.testing.assert_array_equal(read_panel(root, "mf_corr_vr").to_numpy(), read_panel(built[0], "mf_corr_vr").to_numpy())


def test_two_workers_same_files(micro_market, built, tmp_path):
    root = _copy(micro_market, tmp_path)
    build_minute_factors(root, progress=False, workers=2, **CHUNKS)
    insts = StreamSource(root).instruments
    assert _bytes(root, insts) == _bytes(built[0], insts)


def test_bins_source_covers_minute_window_only(micro_market, tmp_path):
    root = _copy(micro_market, tmp_path)
    build_minute_factors(root, source="bins", progress=False, names=["rvol"])
    panel = read_panel(root, "mf_rvol")
    has = panel.notna().any(axis=1)
    assert has.sum() == 5 and has.iloc[-5:].all()


def test_empty_range_is_an_error(micro_market, tmp_path):
    root = _copy(micro_market, tmp_path)
    with pytest.raises(ValueError, match="no session"):
        build_minute_factors(root, start="2030-01-01", progress=False)
