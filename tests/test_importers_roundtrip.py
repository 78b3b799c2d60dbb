"""Round trip: the micro synthetic market exported as tushare files and imported again gives the market back;
tushare units are detected and converted; ``augment`` adds missing fields and leaves the rest byte-identical."""

from __future__ import annotations

import hashlib
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.check import STOCK_FIELDS, check_dataset
from qlib_ext.data.importers import import_dataset
from qlib_ext.data.importers.export import export_tushare
from qlib_ext.data.panel import read_instruments, read_panel

EXACT = ("open", "high", "low", "close", "volume", "factor", "total_shares", "float_shares", "industry", "paused")


@pytest.fixture(scope="module")
def exported(micro_market, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("imp_rt")
    export_tushare(micro_market, base / "tushare", units="tushare", weight_every=1,
                   weight_indexes=("csi300", "csi500", "csi1000"))
    export_tushare(micro_market, base / "fixture", units="fixture", weight_every=21, minute_stocks=1)
    return {"tushare": base / "tushare", "fixture": base / "fixture", "base": base}


@pytest.fixture(scope="module")
def imported(exported) -> Path:
    out = exported["base"] / "out"
    rep = import_dataset(exported["tushare"], out, progress=False)
    assert rep.ok and not rep.warnings, rep.render()
    return out


def _panels(root: Path, field: str, stocks: list[str]) -> np.ndarray:
    return np.array(read_panel(root, field, stocks), dtype=np.float64)


def test_import_reproduces_the_synthetic_market(micro_market, imported):
    stocks = sorted(read_instruments(micro_market)["instrument"].unique())
    assert sorted(read_instruments(imported)["instrument"].unique()) == stocks
    cal = read_panel(micro_market, "close", stocks[:1]).index
    first = cal.searchsorted(read_instruments(micro_market).groupby("instrument")["start"].min().reindex(stocks))
    first_row = np.zeros((len(cal), len(stocks)), bool)
    first_row[first, np.arange(len(stocks))] = True
    for f in STOCK_FIELDS:
        a, b = _panels(micro_market, f, stocks), _panels(imported, f, stocks)
        if f in ("change", "up_limit", "down_limit"):            # a stock's first row: no previous close exported
            a[first_row], b[first_row] = np.nan, np.nan
        absolute = f == "change" or f.endswith("_limit")
        tol = 0.0 if f in EXACT else 0.0101 if f.endswith("_limit") else 2e-6
        ok = np.isfinite(a) & np.isfinite(b)
        if f.endswith("_limit"):       # limits dropped where the synthetic's own rounding put the close outside ours
            assert (np.isfinite(a) != np.isfinite(b)).sum() <= 0.01 * np.isfinite(a).sum(), f
        else:
            assert (np.isfinite(a) == np.isfinite(b)).all(), f"{f}: NaN pattern differs"
        rel = np.abs(a[ok] - b[ok]) / (1.0 if absolute else np.maximum(np.abs(a[ok]), 1e-12))
        assert rel.max() <= tol, f"{f}: max relative difference {rel.max():.3g}"
    for m in ("all", "csi300", "csi500", "csi1000"):
        ours = read_instruments(imported, m).sort_values(["instrument", "start"]).reset_index(drop=True)
        theirs = read_instruments(micro_market, m).sort_values(["instrument", "start"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs)
    rep = check_dataset(imported)
    assert rep.ok, rep.render()


def test_limits_follow_the_exchange_rounding(imported):
    """Brute force with Decimal ROUND_HALF_UP on the previous raw close, main board 10% (no factors here)."""
    stocks = [s for s in sorted(read_instruments(imported)["instrument"].unique()) if s[2:5] in ("600", "000")][:8]
    close, up, dn = (_panels(imported, f, stocks) for f in ("close", "up_limit", "down_limit"))
    checked = 0
    for j in range(len(stocks)):
        prev = np.nan
        for t in range(close.shape[0]):
            if np.isfinite(close[t, j]):
                if np.isfinite(prev) and np.isfinite(up[t, j]):
                    p = Decimal(f"{prev:.2f}")
                    want_up = float((p * Decimal("1.1")).quantize(Decimal("0.01"), ROUND_HALF_UP))
                    want_dn = float((p * Decimal("0.9")).quantize(Decimal("0.01"), ROUND_HALF_UP))
                    assert abs(up[t, j] - want_up) < 1e-4 and abs(dn[t, j] - want_dn) < 1e-4, (stocks[j], t)
                    checked += 1
                prev = close[t, j]
    assert checked > 500


def test_tushare_and_fixture_units_give_the_same_dataset(exported, imported, tmp_path):
    rep = import_dataset(exported["fixture"], tmp_path / "out", progress=False)
    assert "vol in shares, amount in CNY (detected" in rep.units["daily.parquet"]
    assert "share counts in shares (detected" in rep.units["daily_basic.parquet"]
    stocks = sorted(read_instruments(imported)["instrument"].unique())
    for f in ("volume", "amount", "turnover", "float_shares", "mcap", "vwap"):
        a, b = _panels(imported, f, stocks), _panels(tmp_path / "out", f, stocks)
        np.testing.assert_allclose(b, a, rtol=1e-6, err_msg=f)
    tushare_daily = pd.read_parquet(exported["tushare"] / "daily.parquet")
    fixture_daily = pd.read_parquet(exported["fixture"] / "daily.parquet")
    np.testing.assert_allclose(tushare_daily["vol"] * 100, fixture_daily["vol"], rtol=1e-9)


def test_minute_bars_round_trip(micro_market, exported, tmp_path):
    out = tmp_path / "out"
    import_dataset(exported["fixture"], out, progress=False)
    sym = next(p.stem[len("minute_"):] for p in exported["fixture"].glob("minute_*.parquet"))
    sym = ("SH" if sym.startswith("6") else "SZ") + sym
    for f in ("close", "volume", "amount"):
        a = read_panel(micro_market, f, [sym], freq="1min")
        b = read_panel(out, f, [sym], freq="1min")
        assert (a.index == b.index).all()
        np.testing.assert_allclose(b.to_numpy()[:, 0], a.to_numpy()[:, 0], rtol=2e-6, err_msg=f)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_augment_adds_missing_fields_and_keeps_existing_bytes(micro_market, exported, tmp_path):
    target = tmp_path / "cn_data"
    shutil.copytree(micro_market, target)
    dropped = ("w_csi1000", "industry", "turnover", "up_limit", "vwap")
    for f in dropped:
        for p in (target / "features").glob(f"*/{f}.day.bin"):
            p.unlink()
    (target / "instruments" / "csi1000.txt").unlink()
    # one stock with a different adjustment base: prices x2, factor x2 (Qlib's cn_data has its own factors)
    sym = "sh600000"
    for f in ("open", "high", "low", "close", "factor"):
        p = target / "features" / sym / f"{f}.day.bin"
        x = np.fromfile(p, "<f4")
        x[1:] *= 2
        x.tofile(p)
    before = _digest(target)
    rep = import_dataset(exported["tushare"], augment=target, progress=False)
    after = _digest(target)
    assert all(after[k] == v for k, v in before.items()), "an existing file changed"
    added = sorted(set(after) - set(before))
    stocks = sorted(read_instruments(micro_market)["instrument"].unique())
    assert set(added) == {f"features/{s.lower()}/{f}.day.bin" for s in stocks for f in dropped} | {
        "instruments/csi1000.txt", "meta/import_report.json"}
    assert rep.stats["files added"] == len(added)
    for s in stocks:                                 # new bins are aligned with the existing ones
        assert (target / "features" / s.lower() / "turnover.day.bin").stat().st_size == \
               (target / "features" / s.lower() / "close.day.bin").stat().st_size
    for f in ("w_csi1000", "industry", "turnover", "vwap"):
        a, b = _panels(micro_market, f, stocks), _panels(target, f, stocks)
        j = stocks.index(sym.upper())
        scale = np.ones(len(stocks))
        scale[j] = 2.0 if f == "vwap" else 1.0       # price-like fields follow the target's factor
        np.testing.assert_allclose(b, a * scale, rtol=2e-6, err_msg=f)
    a, b = _panels(micro_market, "up_limit", stocks), _panels(target, "up_limit", stocks)
    assert np.nanmax(np.abs(b[:, stocks.index(sym.upper())] / 2 - a[:, stocks.index(sym.upper())])) <= 0.0101
    pd.testing.assert_frame_equal(read_instruments(target, "csi1000"), read_instruments(micro_market, "csi1000"))
    assert rep.stats["close mismatches"] == 0
    assert not (target / ".staging").exists()
    assert check_dataset(target).ok
