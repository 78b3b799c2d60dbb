"""Determinism of the generator and the minute stream."""

from __future__ import annotations

import hashlib

import numpy as np

from qlib_ext.data.bin_io import bin_path, read_bin
from qlib_ext.data.panel import read_calendar
from qlib_ext.data.synth import MinuteStream, build_market
from qlib_ext.data.synth.minute import MINUTE_FIELDS

from conftest import micro_config


def _digest(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.bin"))}


def test_same_seed_same_bytes_other_seed_differs(micro_market, tmp_path):
    again = build_market(micro_config(), tmp_path / "again", progress=False)
    assert _digest(again) == _digest(micro_market)
    other = build_market(micro_config(seed=7), tmp_path / "other", progress=False)
    a, b = _digest(other), _digest(micro_market)
    shared = a.keys() & b.keys()
    assert len(shared) > 0.5 * len(b)
    closes = [k for k in shared if k.endswith("close.day.bin")]
    assert closes and all(a[k] != b[k] for k in closes)


def test_minute_stream_regenerates_the_written_bins(micro_market):
    stream = MinuteStream(micro_market)
    days = read_calendar(micro_market)
    mdays = read_calendar(micro_market, "1min")
    d0 = len(days) - len(mdays) // 240
    syms = stream.instruments[:12]
    bars = stream.bars(syms, d0, len(days))
    for i, sym in enumerate(syms):
        for f in MINUTE_FIELDS:
            path = bin_path(micro_market, sym, f, "1min")
            if not path.exists():
                continue
            start, vals = read_bin(path)
            mine = bars[f][i].ravel().astype(np.float32)[start:]
            assert np.array_equal(mine, vals, equal_nan=True), (sym, f)


def test_minute_stream_covers_days_without_bins(micro_market):
    stream = MinuteStream(micro_market)
    sym = stream.instruments[0]
    bars = stream.bars([sym], 10, 20)
    start, close = read_bin(bin_path(micro_market, sym, "close"))
    traded = np.isfinite(close[10 - start : 20 - start])
    assert np.array_equal(bars["close"][0, :, -1].astype(np.float32)[traded], close[10 - start : 20 - start][traded])
    chunks = list(stream.iter_chunks(stocks_per_chunk=15, days_per_chunk=50, d0=0, d1=60))
    assert sum(len(c[0]) for c in chunks if c[1] == 0) == len(stream.instruments)
