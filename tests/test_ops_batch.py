"""Batch engine: chunking does not change a number; the stream and the bins give the same bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.panel import read_panel
from qlib_ext.ops.batch import compute_chunk, compute_factors, plan_chunks
from qlib_ext.ops.library import MF_FIELDS
from qlib_ext.ops.sources import BinSource, StreamSource


@pytest.fixture(scope="module")
def stream(micro_market):
    return StreamSource(micro_market)


def _assemble(source, chunks) -> dict[str, pd.DataFrame]:
    out = {f: pd.DataFrame(np.nan, index=source.days, columns=source.instruments, dtype=np.float32) for f in MF_FIELDS}
    for c in chunks:
        for f, frame in compute_chunk(source, c, device="cpu").items():
            out[f].loc[frame.index, frame.columns] = frame
    return out


def test_chunked_equals_unchunked(stream):
    n_days = len(stream.days)
    whole = plan_chunks(stream.spans, 0, n_days, 10_000, 10_000)
    small = plan_chunks(stream.spans, 0, n_days, 7, 13)
    assert len(whole) == 1 and len(small) > 50
    covered = {(s, d) for c in small for s in c.symbols for d in range(c.d0, c.d1)}
    listed = {(s, d) for s, (a, b) in stream.spans.iterrows() for d in range(a, b + 1)}
    assert listed <= covered                                       # every listed stock-day planned
    a, b = _assemble(stream, whole), _assemble(stream, small)
    for f in MF_FIELDS:
        np.testing.assert_array_equal(a[f].to_numpy(), b[f].to_numpy(), err_msg=f)
    assert np.isfinite(a["mf_corr_vr"].to_numpy()).mean() > 0.8


def test_row_blocks_do_not_change_results(stream):
    bars = stream.bars(stream.instruments[:9], 100, 140)
    ref = compute_factors(bars, device="cpu")
    for block in (1, 17, 360):
        got = compute_factors(bars, device="cpu", rows_per_block=block)
        for f in MF_FIELDS:
            np.testing.assert_array_equal(got[f], ref[f], err_msg=f"{f} block={block}")
    assert ref["mf_rvol"].shape == (9, 40)


def test_stream_and_bins_agree(micro_market, stream):
    bins = BinSource(micro_market)
    d = bins.layout.covered()
    assert len(d) == 5 and set(bins.instruments) <= set(stream.instruments)
    syms = bins.instruments[:12]
    x, y = bins.bars(syms, int(d[0]) - 2, int(d[-1]) + 1), stream.bars(syms, int(d[0]) - 2, int(d[-1]) + 1)
    for f in x:
        np.testing.assert_array_equal(x[f][:, 2:], y[f][:, 2:], err_msg=f)
    assert np.isnan(x["close"][:, :2]).all()                       # before the minute window: no bars


def test_suspended_rows_skipped_and_nan():
    bars = {f: np.full((3, 4, 240), np.nan, dtype=np.float32) for f in ("open", "high", "low", "close", "volume", "amount")}
    rng = np.random.default_rng(0)
    px = (10 + np.cumsum(rng.standard_normal((3, 4, 240)) * 0.01, axis=-1)).astype(np.float32)
    for f in ("open", "high", "low", "close"):
        bars[f][:] = px
    bars["volume"][:] = rng.uniform(50, 150, (3, 4, 240))
    bars["amount"][:] = bars["volume"] * px
    for f in bars:
        bars[f][1, 2] = np.nan
    got = compute_factors(bars, device="cpu")
    for f in MF_FIELDS:
        assert np.isnan(got[f][1, 2]), f
        assert np.isfinite(np.delete(got[f].reshape(-1), 6)).all(), f


def test_stream_source_equals_minute_stream(micro_market):
    """The throughput-arranged stream gives MinuteStream's bars exactly, across daily-block edges."""
    src = StreamSource(micro_market)
    src.DAILY_BLOCK = 7
    paused = read_panel(micro_market, "paused")
    sym = [s for s in src.instruments if (paused[s] == 1).any()][:2] + src.instruments[:3]
    a, b = src.bars(sym, 20, 45), src.stream.bars(sym, 20, 45)
    for f in a:
        np.testing.assert_array_equal(a[f], b[f].astype(np.float32), err_msg=f)
    assert np.isfinite(a["close"]).any()
